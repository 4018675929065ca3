"""What the container opened and must close: network clients, the emulator's server."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)
Closer = Callable[[], Awaitable[None] | None]


class Closing:
    """Closers registered by the builders, run newest first by `aclose`."""

    def __init__(self) -> None:
        self._closers: list[Closer] = []

    def add(self, closer: Closer) -> None:
        """Register a closer (sync or async)."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        """Run every closer once, newest first; a failing one is logged and the others still run."""
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            try:
                done = closer()
                if inspect.isawaitable(done):
                    await done
            except Exception as exc:  # noqa: BLE001 - closing goes on; the failure is logged
                log.warning("close_failed", error=f"{type(exc).__name__}: {exc}")
