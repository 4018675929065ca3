"""RedisLock: a lock held in Redis (SET NX PX with a random token, released by compare-and-delete),
so that two workers on two machines never run the same critical section at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from domain.errors import QuorumError

RELEASE_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
Sleep = Callable[[float], Awaitable[None]]


class LockNotAcquiredError(QuorumError):
    """Another holder kept the lock for longer than we were willing to wait."""


class RedisLock:
    """A non-reentrant lock on one Redis key.

    The key expires after `ttl`, so a holder that dies does not block everyone forever: `ttl` must be
    longer than the longest critical section. Only the holder's token can release it, so a holder whose
    lock expired and was taken by someone else cannot release the new holder's lock.

    Args:
        redis: a `redis.asyncio.Redis` client (an arq pool is one).
        key: the Redis key.
        ttl: how long the lock lives without being released.
        poll_interval: seconds between two tries while waiting.
        sleep: how to wait between tries (tests pass a fake).
    """

    def __init__(self, redis: Any, key: str, *, ttl: timedelta, poll_interval: float = 0.1,
                 sleep: Sleep = asyncio.sleep) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"lock ttl must be positive, got {ttl}")
        self._redis, self.key = redis, key
        self._ttl_ms = int(ttl.total_seconds() * 1000)
        self._poll, self._sleep = poll_interval, sleep
        self._token: str | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock (as far as it knows: the key may have expired)."""
        return self._token is not None

    async def try_acquire(self) -> bool:
        """Take the lock if it is free. Returns whether it was taken."""
        if self._token is not None:
            raise RuntimeError(f"lock {self.key} is already held by this object")
        token = uuid.uuid4().hex
        if await self._redis.set(self.key, token, nx=True, px=self._ttl_ms):
            self._token = token
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

    @asynccontextmanager
    async def hold(self, *, wait: float) -> AsyncIterator[None]:
        """`async with lock.hold(wait=...)`: acquire or raise `LockNotAcquiredError`, release on exit."""
        if not await self.acquire(wait=wait):
            raise LockNotAcquiredError(f"lock {self.key} still held by another worker after {wait:.0f} s")
        try:
            yield
        finally:
            await self.release()
