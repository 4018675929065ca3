"""`RedisLock` renewal against the real Redis of this machine (database 5, flushed before and after each test).

Renewals wait on an injected sleep that the test advances one call at a time, so nothing waits for a
renewal interval; expiry is Redis's own clock.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from adapters.queue import RedisLock, WorkerDeps

pytestmark = [pytest.mark.integration]
KEY = "quorum:lock:test"


class Ticker:
    """An injected sleep: each call records its duration and waits until the test lets it return."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self._asleep, self._go = asyncio.Event(), asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.calls.append(seconds)
        self._asleep.set()
        await self._go.wait()
        self._go.clear()

    async def wake(self) -> None:
        """Let the sleeper return (once it sleeps)."""
        await self._asleep.wait()
        self._asleep.clear()
        self._go.set()

    async def tick(self) -> None:
        """Let the sleeper return, and come back once it sleeps again (one renewal done)."""
        await self.wake()
        await self._asleep.wait()


def renewer(key: str = KEY) -> asyncio.Task[Any] | None:
    found = [t for t in asyncio.all_tasks() if t.get_name() == f"renew {key}" and not t.done()]
    assert len(found) <= 1
    return found[0] if found else None


async def test_a_held_lock_outlives_its_ttl_and_is_released_on_exit(redis: Any) -> None:
    ticker = Ticker()
    lock = RedisLock(redis, KEY, ttl=timedelta(milliseconds=500), sleep=ticker.sleep)
    async with lock.hold(wait=0) as held:
        token = await redis.get(KEY)
        await redis.set("quorum:test:witness", "x", px=500)    # set after the lock: it expires after it would have
        for _ in range(100_000):                              # Redis round trips, no sleeps
            await ticker.tick()
            if not await redis.exists("quorum:test:witness"):
                break
        else:
            raise AssertionError("the witness key never expired")
        assert await redis.get(KEY) == token                  # still ours, well past the original ttl
        assert held is lock and not lock.lost and lock.renewals >= 1
        assert 0 < await redis.pttl(KEY) <= 500
    assert ticker.calls == pytest.approx([0.5 / 3] * len(ticker.calls), abs=1e-6)   # every third of the ttl
    assert await redis.get(KEY) is None and not lock.held
    assert renewer() is None                                   # the renewal task is gone with the lock


async def test_each_renewal_pushes_the_expiry_a_full_ttl_ahead(redis: Any) -> None:
    ticker = Ticker()
    lock = RedisLock(redis, KEY, ttl=timedelta(minutes=10), sleep=ticker.sleep, renew_every=timedelta(minutes=1))
    async with lock.hold(wait=0):
        for n in range(1, 4):
            await redis.pexpire(KEY, 5_000)                   # as if 9m55s had gone by
            await ticker.tick()
            assert await redis.pttl(KEY) > 590_000
            assert lock.renewals == n
    assert ticker.calls == [60.0] * 4


async def test_a_lock_taken_over_while_held_is_reported_lost(redis: Any) -> None:
    ticker = Ticker()
    lock = RedisLock(redis, KEY, ttl=timedelta(minutes=10), sleep=ticker.sleep)
    with capture_logs() as logs:
        async with lock.hold(wait=0):
            await redis.set(KEY, "someone-else", px=60_000)   # as if it had expired and been taken
            task = renewer()
            await ticker.wake()
            assert task is not None
            await task                                        # the renewal task ends on finding the lock lost
            assert lock.lost
            assert await redis.pttl(KEY) <= 60_000            # the new holder's expiry was not touched
    assert lock.lost                                          # still readable once out of the block
    assert await redis.get(KEY) == b"someone-else"            # and its key was not released either
    assert len(ticker.calls) == 1
    assert [e["log_level"] for e in logs if e["event"] == "redis_lock_lost"] == ["error"]


async def test_a_lock_whose_key_vanished_is_reported_lost_and_taking_it_again_clears_that(redis: Any) -> None:
    ticker = Ticker()
    lock = RedisLock(redis, KEY, ttl=timedelta(minutes=10), sleep=ticker.sleep)
    async with lock.hold(wait=0):
        await redis.delete(KEY)                               # expired while the holder was stalled
        task = renewer()
        await ticker.wake()
        assert task is not None
        await task
        assert lock.lost and await redis.get(KEY) is None
    async with lock.hold(wait=0):
        assert not lock.lost and lock.renewals == 0


async def test_a_failed_renewal_is_retried_at_the_next_interval(redis: Any) -> None:
    class FlakyRedis:
        """The real client, whose next `eval` fails as if the connection had dropped."""

        fail_next = False

        def __getattr__(self, name: str) -> Any:
            return getattr(redis, name)

        async def eval(self, *args: Any) -> Any:
            if self.fail_next:
                self.fail_next = False
                raise RedisConnectionError("connection reset by peer")
            return await redis.eval(*args)

    flaky, ticker = FlakyRedis(), Ticker()
    lock = RedisLock(flaky, KEY, ttl=timedelta(minutes=10), sleep=ticker.sleep)
    with capture_logs() as logs:
        async with lock.hold(wait=0):
            flaky.fail_next = True
            await ticker.tick()
            assert (lock.renewals, lock.lost) == (0, False)
            await redis.pexpire(KEY, 5_000)
            await ticker.tick()
            assert (lock.renewals, lock.lost) == (1, False) and await redis.pttl(KEY) > 590_000
    assert [e["event"] for e in logs] == ["redis_lock_renewal_failed"]
    assert await redis.get(KEY) is None


def test_renewals_must_come_before_the_key_expires() -> None:
    for every in (timedelta(minutes=10), timedelta(minutes=11), timedelta(0)):
        with pytest.raises(ValueError, match="renew_every"):
            RedisLock(None, KEY, ttl=timedelta(minutes=10), renew_every=every)


async def test_the_cycle_lock_outlives_the_longest_cycle_job_without_any_renewal(redis: Any) -> None:
    deps = WorkerDeps(runner=None, uow_factory=None, calendar=None, clock=None,  # type: ignore[arg-type]
                      cycle_timeout=timedelta(minutes=10), lock_wait=timedelta(minutes=10))
    lock = deps.cycle_lock(redis)
    assert await lock.try_acquire()
    longest_job_ms = (deps.cycle_timeout + deps.lock_wait).total_seconds() * 1000   # the run_cycle time limit
    assert await redis.pttl(lock.key) > longest_job_ms
    await lock.release()
