"""The checks behind GET /ready, each with a timeout and, when asked, a cache of its last answer.

/ready is open to anyone who can reach the API, so a check that costs a call to another service (the broker) keeps
its last answer for `cache_s` seconds: however many requests come in, the service is asked at most once per period
(concurrent requests wait for the one probe in flight). A failure is kept as long as a success.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger(__name__)


@dataclass
class _LastAnswer:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    at: float | None = None
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadinessCheck:
    """One dependency /ready checks: `probe` returns when healthy and raises otherwise.

    Attributes:
        name: the key of the check in /ready's answer.
        probe: the check itself.
        timeout_s: how long the probe may take before it counts as failed.
        cache_s: how long an answer is reused (0: the probe runs on every request).
        monotonic: the time source of the cache (seconds, never going back).
    """

    name: str
    probe: Callable[[], Awaitable[object]]
    timeout_s: float = 3.0
    cache_s: float = 0.0
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    _last: _LastAnswer = field(default_factory=_LastAnswer, init=False, repr=False, compare=False)

    async def result(self) -> dict[str, Any]:
        """{"ok", "ms", "error"}; a cached check also says how old its answer is ("age_s")."""
        if self.cache_s <= 0:
            return await self._probe_once()
        last = self._last
        async with last.lock:
            if last.at is None or self.monotonic() - last.at >= self.cache_s:
                last.result = await self._probe_once()
                last.at = self.monotonic()
            return {**last.result, "age_s": round(max(self.monotonic() - last.at, 0.0), 1)}

    async def _probe_once(self) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            await asyncio.wait_for(self.probe(), timeout=self.timeout_s)
        except TimeoutError:
            error: str | None = f"no answer within {self.timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 - a failing dependency is the answer, not an endpoint error
            error = type(exc).__name__
            log.warning("readiness_check_failed", check=self.name, error=f"{type(exc).__name__}: {exc}")
        else:
            error = None
        return {"ok": error is None, "ms": round((time.perf_counter() - start) * 1000, 1), "error": error}
