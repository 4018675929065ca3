"""The arq worker against the real Redis of this machine (database 5, flushed before and after each test).

Jobs run against a fake cycle runner on in-memory repositories; what is asserted is what Redis and arq
do: de-duplication by cycle id, retries with back-off then the final-failure event, the cycle lock
across two workers, the schedule tick enqueuing what is due exactly once, and the alerts job (once per
minute, under a lock of its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dependency_injector import providers

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.clock import SimClock
from adapters.queue import (
    ALERTS_LOCKED,
    ArqCycleQueue,
    RedisLock,
    WorkerDeps,
    job_id,
    redis_settings,
    worker_settings,
)
from application import jobs
from application.cycle.trading_cycle import CycleResult
from domain.events import Event, EventType
from domain.ports.queue import CycleJob
from domain.ports.repositories import CycleRecord, EventQuery
from entrypoints.container import build_container
from entrypoints.settings import load_settings
from tests.conftest import TEST_REDIS_URL as REDIS_URL

pytestmark = [pytest.mark.integration]

CAL = NyseCalendar()
NY = ZoneInfo("America/New_York")
SCOPE = "live"
TUE = date(2024, 3, 5)


def ny(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), NY).astimezone(UTC)




@pytest.fixture
async def queue(redis: Any) -> AsyncIterator[ArqCycleQueue]:
    q = await ArqCycleQueue.connect(REDIS_URL)
    yield q
    await q.close()


class Runner:
    """A cycle runner that records overlapping runs and can fail on purpose."""

    def __init__(self, uow_factory: Any, *, fail: bool = False, redis: Any = None) -> None:
        self.uow_factory, self.fail, self.redis = uow_factory, fail, redis
        self.calls: list[str] = []
        self.active = 0
        self.max_active = 0

    async def run_cycle(self, *, kind: str = "scheduled", symbol: str | None = None, as_of: datetime | None = None,
                        cycle_id: str | None = None) -> CycleResult:
        assert as_of is not None and cycle_id is not None
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            self.calls.append(cycle_id)
            for _ in range(20):     # a cycle does I/O: the other jobs' Redis round trips progress meanwhile
                await (self.redis.incr("quorum:test:io") if self.redis is not None else asyncio.sleep(0))
            if self.fail:
                raise ConnectionError("broker unreachable")
            async with self.uow_factory() as uow:
                await uow.cycles.upsert(CycleRecord(cycle_id, SCOPE, kind, as_of, "completed", symbol))
                await uow.commit()
            return CycleResult(cycle_id, as_of, "completed")
        finally:
            self.active -= 1


def make_deps(runner: Runner, uow_factory: Any, clock: SimClock, **kw: Any) -> WorkerDeps:
    defaults: dict[str, Any] = {"cycle_max_delay": None, "lock_poll": 0.005,
                                "policy": jobs.JobPolicy(max_tries=3, backoff_base=0.01, backoff_max=0.05)}
    return WorkerDeps(runner=runner, uow_factory=uow_factory, calendar=CAL, clock=clock, scope=SCOPE,
                      **{**defaults, **kw})


def make_worker(deps: WorkerDeps, *, schedule: bool = False, max_jobs: int = 10) -> Any:
    from arq.worker import Worker

    return Worker(**worker_settings(deps, redis_settings=redis_settings(REDIS_URL), schedule=schedule, burst=True,
                                    poll_delay=0.01, handle_signals=False, max_jobs=max_jobs))


def cycle_job(minute: int) -> CycleJob:
    return jobs.scheduled_cycle(SCOPE, ny(TUE, 10) + timedelta(minutes=minute), NY)


@pytest.fixture
def uow_factory() -> Any:
    return build_container(load_settings(env="test"), "test").uow_factory()


async def test_the_queue_accepts_a_cycle_id_once(queue: ArqCycleQueue) -> None:
    first, second = cycle_job(0), cycle_job(1)
    assert await queue.enqueue(first)
    assert not await queue.enqueue(first)
    assert not await queue.enqueue(CycleJob(first.cycle_id, "manual", None, first.requested_at))
    assert await queue.enqueue(second)
    assert await queue.queued() == 2
    assert await queue.ping()


async def test_burst_worker_runs_each_queued_cycle_once(queue: ArqCycleQueue, uow_factory: Any) -> None:
    runner = Runner(uow_factory)
    queued = [cycle_job(m) for m in range(6)]
    accepted = [await queue.enqueue(j) for j in [*queued, queued[0], queued[3]]]
    assert accepted == [True] * 6 + [False, False]
    worker = make_worker(make_deps(runner, uow_factory, SimClock(ny(TUE, 11))))
    await worker.async_run()
    await worker.close()
    assert sorted(runner.calls) == sorted(j.cycle_id for j in queued)
    assert worker.jobs_complete == 6 and worker.jobs_failed == 0
    async with uow_factory() as uow:
        assert {(await uow.cycles.get(j.cycle_id)).status for j in queued} == {"completed"}  # type: ignore[union-attr]
    assert not await queue.enqueue(queued[0])  # still refused once done


async def test_a_failing_job_is_retried_with_backoff_then_alerted(queue: ArqCycleQueue, uow_factory: Any) -> None:
    runner = Runner(uow_factory, fail=True)
    alerted: list[Event] = []

    async def notify(event: Event) -> None:
        alerted.append(event)

    job = cycle_job(0)
    await queue.enqueue(job)
    worker = make_worker(make_deps(runner, uow_factory, SimClock(ny(TUE, 10, 1)), on_failure=notify))
    await worker.async_run()
    await worker.close()
    assert runner.calls == [job.cycle_id] * 3
    assert (worker.jobs_retried, worker.jobs_failed) == (2, 1)
    async with uow_factory() as uow:
        [event] = await uow.events.query(EventQuery(SCOPE, types=(EventType.SYSTEM_ERROR,)))
        record = await uow.cycles.get(job.cycle_id)
    assert event.payload["tries"] == 3 and "broker unreachable" in event.payload["error"]
    assert alerted == [event]
    assert record is not None and record.status == "failed"


async def test_the_redis_lock_lets_one_holder_in_at_a_time(redis: Any) -> None:
    log: list[str] = []
    inside = 0
    a_inside, gate, b_waiting = asyncio.Event(), asyncio.Event(), asyncio.Event()
    b_tries = 0

    async def b_sleep(_: float) -> None:
        nonlocal b_tries
        b_tries += 1
        if b_tries == 3:
            b_waiting.set()
        await asyncio.sleep(0)

    async def holder(name: str, lock: RedisLock, wait_for: asyncio.Event | None) -> None:
        nonlocal inside
        async with lock.hold(wait=3600):
            inside += 1
            log.append(f"{name} in ({inside} inside)")
            if name == "A":
                a_inside.set()
            if wait_for is not None:
                await wait_for.wait()
            inside -= 1
            log.append(f"{name} out")

    key, ttl = "quorum:lock:test", timedelta(minutes=1)
    task_a = asyncio.create_task(holder("A", RedisLock(redis, key, ttl=ttl), gate))
    await a_inside.wait()
    task_b = asyncio.create_task(holder("B", RedisLock(redis, key, ttl=ttl, poll_interval=0.0, sleep=b_sleep), None))
    await b_waiting.wait()
    assert log == ["A in (1 inside)"]     # B has tried three times and is still outside
    gate.set()
    await asyncio.gather(task_a, task_b)
    assert log == ["A in (1 inside)", "A out", "B in (1 inside)", "B out"]
    assert await redis.get(key) is None


async def test_a_holder_whose_lock_was_taken_over_cannot_release_it(redis: Any) -> None:
    lock = RedisLock(redis, "quorum:lock:test", ttl=timedelta(minutes=1))
    assert await lock.try_acquire()
    await redis.set("quorum:lock:test", "someone-else")   # as if it had expired and been taken
    assert not await lock.release()
    assert await redis.get("quorum:lock:test") == b"someone-else"
    assert not await RedisLock(redis, "quorum:lock:test", ttl=timedelta(minutes=1)).acquire(wait=0)


async def test_two_workers_never_run_two_cycles_at_once(queue: ArqCycleQueue, uow_factory: Any, redis: Any) -> None:
    runner = Runner(uow_factory, redis=redis)
    queued = [cycle_job(m) for m in range(8)]
    for j in queued:
        assert await queue.enqueue(j)
    deps = make_deps(runner, uow_factory, SimClock(ny(TUE, 11)))
    w1, w2 = make_worker(deps, max_jobs=2), make_worker(deps, max_jobs=2)   # both must take jobs
    await asyncio.gather(w1.async_run(), w2.async_run())
    await asyncio.gather(w1.close(), w2.close())
    assert sorted(runner.calls) == sorted(j.cycle_id for j in queued)
    assert runner.max_active == 1
    assert w1.jobs_complete + w2.jobs_complete == 8 and w1.jobs_complete and w2.jobs_complete


async def test_the_schedule_tick_enqueues_due_jobs_once(redis: Any, uow_factory: Any) -> None:
    runner = Runner(uow_factory)
    calls: list[tuple[str, datetime]] = []

    class Discovery:
        async def run(self, as_of: datetime) -> None:
            calls.append(("discovery", as_of))

        async def update_forward_returns(self, as_of: datetime) -> None:
            calls.append(("forward_returns", as_of))

    async def backup(at: datetime) -> str:
        calls.append(("backup", at))
        return "/backups/x.dump"

    clock = SimClock(ny(TUE, 9, 35, 20))
    deps = make_deps(runner, uow_factory, clock, discovery=Discovery(), backup=backup, cycle_max_delay=None)
    for _ in range(2):      # a second worker start at the same time finds nothing new to do
        worker = make_worker(deps, schedule=True)
        await worker.async_run()
        await worker.close()
    assert runner.calls == [jobs.scheduled_cycle(SCOPE, ny(TUE, 9, 35), NY).cycle_id]
    monday = TUE - timedelta(days=1)        # its after-close jobs are caught up on the first tick
    assert sorted(calls) == [("backup", ny(TUE, 2)), ("discovery", ny(TUE, 9, 30)),
                             ("forward_returns", ny(monday, 16, 15))]
    clock.set(ny(TUE, 16, 15, 3))
    worker = make_worker(deps, schedule=True)
    await worker.async_run()
    await worker.close()
    assert ("forward_returns", ny(TUE, 16, 15)) in calls
    async with uow_factory() as uow:
        summaries = await uow.events.query(EventQuery(SCOPE, types=(EventType.DAILY_SUMMARY,)))
    assert sorted(e.payload["day"] for e in summaries) == ["2024-03-04", "2024-03-05"]


class FakeAlerts:
    """An alert service that records its calls; `dispatch_new_events` runs `during_dispatch` when set."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.active = 0
        self.max_active = 0
        self.during_dispatch: Any = None

    async def dispatch_new_events(self) -> list[Any]:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.calls.append("dispatch")
        try:
            if self.during_dispatch is not None:
                await self.during_dispatch()
        finally:
            self.active -= 1
        return []

    async def retry_undelivered(self) -> list[Any]:
        self.calls.append("retry")
        return []


async def result_of(queue: ArqCycleQueue, job: str) -> Any:
    from arq.jobs import Job

    info = await Job(job, queue.pool, _deserializer=queue.pool.job_deserializer).result_info()
    return None if info is None else info.result


async def test_each_schedule_tick_runs_the_alerts_job_once_and_skips_it_while_the_lock_is_held(
        queue: ArqCycleQueue, redis: Any, uow_factory: Any) -> None:
    alerts = FakeAlerts()
    clock = SimClock(ny(TUE, 20, 4, 20))        # evening: the market is closed, alerts still go out
    deps = make_deps(Runner(uow_factory), uow_factory, clock, alerts=alerts)

    async def tick_at(at: datetime) -> None:
        clock.set(at)
        worker = make_worker(deps, schedule=True)
        await worker.async_run()
        await worker.close()

    await tick_at(ny(TUE, 20, 4, 20))
    await tick_at(ny(TUE, 20, 4, 40))          # a second worker start in the same minute finds nothing to do
    assert alerts.calls == ["dispatch"]
    await tick_at(ny(TUE, 20, 5, 1))
    assert alerts.calls == ["dispatch", "dispatch", "retry"]     # 20:05: undelivered alerts are retried too

    other = deps.alerts_lock(redis)                             # another worker is dispatching
    assert await other.try_acquire()
    await tick_at(ny(TUE, 20, 6, 1))
    assert alerts.calls == ["dispatch", "dispatch", "retry"]
    assert await result_of(queue, job_id("alerts", ny(TUE, 20, 6))) == repr(ALERTS_LOCKED)
    await other.release()
    await tick_at(ny(TUE, 20, 7, 1))
    assert alerts.calls == ["dispatch", "dispatch", "retry", "dispatch"]
    assert await redis.get(other.key) is None


async def test_two_alerts_jobs_on_two_workers_never_dispatch_at_the_same_time(
        queue: ArqCycleQueue, redis: Any, uow_factory: Any) -> None:
    """A slow run (the 20:01 slot) still dispatching when the next one (20:02) starts on another worker."""
    alerts = FakeAlerts()
    slots = [ny(TUE, 20, 1), ny(TUE, 20, 2)]
    ids = [job_id("alerts", s) for s in slots]

    async def until_the_other_run_is_over() -> None:
        for _ in range(5000):   # Redis round trips, not sleeps; without the lock both runs would wait here
            if any([await redis.exists(f"arq:result:{i}") for i in ids]):
                return

    alerts.during_dispatch = until_the_other_run_is_over
    for slot, jid in zip(slots, ids, strict=True):
        assert await queue.pool.enqueue_job("alerts", slot.isoformat(), _job_id=jid) is not None
    deps = make_deps(Runner(uow_factory), uow_factory, SimClock(ny(TUE, 20, 2, 1)), alerts=alerts)
    w1, w2 = make_worker(deps, max_jobs=2), make_worker(deps, max_jobs=2)
    await asyncio.gather(w1.async_run(), w2.async_run())
    await asyncio.gather(w1.close(), w2.close())
    assert alerts.calls == ["dispatch"] and alerts.max_active == 1
    assert sorted([await result_of(queue, i) for i in ids]).count(repr(ALERTS_LOCKED)) == 1
    assert w1.jobs_complete + w2.jobs_complete == 2 and w1.jobs_failed + w2.jobs_failed == 0
    assert await redis.get(deps.alerts_lock(redis).key) is None


async def test_quorum_worker_reconciles_at_start_up_and_keeps_going_when_the_broker_is_down(
        redis: Any, uow_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`quorum worker` (its `_run_worker`, burst mode) with a broker that cannot be read at start-up."""
    from domain.errors import BrokerUnavailableError
    from entrypoints.commands import worker as worker_command

    order: list[str] = []
    clock = SimClock(ny(TUE, 20, 4, 20))
    alerts = FakeAlerts()

    class UnreachableBroker:
        async def reconcile_now(self) -> int:
            order.append("reconcile")
            raise BrokerUnavailableError("could not connect to Alpaca for account: ConnectError")

    def deps() -> WorkerDeps:
        order.append("deps")
        return make_deps(Runner(uow_factory), uow_factory, clock, alerts=alerts)

    settings = load_settings(env="test")
    container = build_container(settings, "test", scope=SCOPE)
    container.runner.override(providers.Object(UnreachableBroker()))
    container.uow_factory.override(providers.Object(uow_factory))
    container.clock.override(providers.Object(clock))
    container.job_deps.override(providers.Callable(deps))
    container.closing().add(lambda: order.append("closed"))
    await worker_command._run_worker(settings, container, REDIS_URL, burst=True, max_jobs=2)
    assert order == ["reconcile", "deps", "closed"] and alerts.calls == ["dispatch"]
    async with uow_factory() as uow:
        [event] = await uow.events.query(EventQuery(SCOPE, types=(EventType.SYSTEM_ERROR,)))
    assert event.payload["job"] == "startup_reconcile" and "could not connect to Alpaca" in event.message
