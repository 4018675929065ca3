"""RedisLock: a lock held in Redis (SET NX PX with a random token, released by compare-and-delete, kept alive
by compare-and-PEXPIRE while held), so that two workers on two machines never run the same critical section
at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import structlog
from redis.exceptions import RedisError

from domain.errors import QuorumError

RELEASE_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
EXTEND_SCRIPT = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
                 "else return 0 end")
Sleep = Callable[[float], Awaitable[None]]
log = structlog.get_logger(__name__)


class LockNotAcquiredError(QuorumError):
    """Another holder kept the lock for longer than we were willing to wait."""


class RedisLock:
    """A non-reentrant lock on one Redis key.

    The key expires after `ttl`, so a holder that dies does not block everyone forever. While `hold()` is
    held, a background task pushes the expiry a full `ttl` ahead every `renew_every` (a third of `ttl` by
    default), only if the key still holds this holder's token; so a critical section may outlast `ttl`, and a
    holder stalled for longer than `ttl` (or whose key was deleted) loses the lock, which `lost` then says.
    Only the holder's token can release or extend it, so a holder whose lock expired and was taken by someone
    else cannot release or extend the new holder's lock.

    Args:
        redis: a `redis.asyncio.Redis` client (an arq pool is one).
        key: the Redis key.
        ttl: how long the lock lives without being released or renewed.
        poll_interval: seconds between two tries while waiting.
        sleep: how to wait between tries and between renewals (tests pass a fake).
        renew_every: time between two renewals while held (default: a third of `ttl`).
    """

    def __init__(self, redis: Any, key: str, *, ttl: timedelta, poll_interval: float = 0.1,
                 sleep: Sleep = asyncio.sleep, renew_every: timedelta | None = None) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"lock ttl must be positive, got {ttl}")
        renew_every = ttl / 3 if renew_every is None else renew_every
        if not timedelta(0) < renew_every < ttl:
            raise ValueError(f"renew_every must be positive and shorter than the ttl {ttl}, got {renew_every}")
        self._redis, self.key = redis, key
        self._ttl_ms = int(ttl.total_seconds() * 1000)
        self._renew_s = renew_every.total_seconds()
        self._poll, self._sleep = poll_interval, sleep
        self._token: str | None = None
        self._lost = False
        self.renewals = 0
        """How many times the expiry was pushed ahead since the lock was last taken."""

    @property
    def held(self) -> bool:
        """Whether this object holds the lock (as far as it knows: the key may have expired)."""
        return self._token is not None

    @property
    def lost(self) -> bool:
        """Whether a renewal found the key no longer ours (expired or taken over) since the lock was last taken.

        Stays set after release, so the holder can check it once out of the critical section.
        """
        return self._lost

    async def try_acquire(self) -> bool:
        """Take the lock if it is free. Returns whether it was taken."""
        if self._token is not None:
            raise RuntimeError(f"lock {self.key} is already held by this object")
        token = uuid.uuid4().hex
        if await self._redis.set(self.key, token, nx=True, px=self._ttl_ms):
            self._token, self._lost, self.renewals = token, False, 0
            return True
        return False

    async def acquire(self, *, wait: float) -> bool:
        """Take the lock, trying every `poll_interval` seconds for up to `wait` seconds. Returns whether taken."""
        waited = 0.0
        while not await self.try_acquire():
            if waited >= wait:
                return False
            await self._sleep(self._poll)
            waited += self._poll
        return True

    async def release(self) -> bool:
        """Release the lock if this object still holds it. Returns whether a key was deleted."""
        token, self._token = self._token, None
        if token is None:
            return False
        return bool(await self._redis.eval(RELEASE_SCRIPT, 1, self.key, token))

    async def renew(self) -> bool:
        """Push the key's expiry a full `ttl` ahead if the key still holds our token.

        Returns:
            Whether it did; False when this object does not hold the lock, or when the key expired or was taken
            over (then `lost` is set and an error logged).
        """
        token = self._token
        if token is None:
            return False
        if await self._redis.eval(EXTEND_SCRIPT, 1, self.key, token, self._ttl_ms):
            self.renewals += 1
            return True
        self._lost = True
        log.error("redis_lock_lost", key=self.key, ttl_ms=self._ttl_ms,
                  reason="the key expired or another holder took it while this one still held it")
        return False

    async def _keep_alive(self) -> None:
        """Renew every `renew_every` until cancelled or until the lock is found lost."""
        while True:
            await self._sleep(self._renew_s)
            try:
                if not await self.renew():
                    return
            except (RedisError, OSError) as exc:  # Redis unreachable for now: the key lives until its ttl, try again
                log.warning("redis_lock_renewal_failed", key=self.key, error=f"{type(exc).__name__}: {exc}")

    @asynccontextmanager
    async def hold(self, *, wait: float) -> AsyncIterator[RedisLock]:
        """`async with lock.hold(wait=...) as held`: acquire or raise `LockNotAcquiredError`, keep the lock alive
        while inside (see the class docstring), stop renewing and release on exit. `held.lost` tells whether it
        was lost meanwhile."""
        if not await self.acquire(wait=wait):
            raise LockNotAcquiredError(f"lock {self.key} still held by another worker after {wait:.0f} s")
        renewer = asyncio.create_task(self._keep_alive(), name=f"renew {self.key}")
        try:
            yield self
        finally:
            renewer.cancel()
            try:
                await asyncio.wait([renewer])
            finally:
                await self.release()
