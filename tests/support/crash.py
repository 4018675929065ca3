"""Crash injection shared by the crash-recovery tests: a broker proxy that dies at a chosen submission and a
unit-of-work factory whose next transaction dies at commit (after its orders went out)."""

from __future__ import annotations

from typing import Any


class Crash(RuntimeError):
    """The injected failure."""


class CrashingBroker:
    """Delegates to the real broker but dies at a chosen point of the next cycle's submissions.

    Attributes:
        point: "before_first_submit", "between_submits" or None (no crash).
    """

    def __init__(self, inner: Any, point: str | None = None) -> None:
        self.inner = inner
        self.point = point
        self.submits = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def submit(self, request: Any) -> Any:
        self.submits += 1
        if self.point == "before_first_submit":
            self.point = None
            raise Crash("killed before the first order left")
        if self.point == "between_submits" and self.submits == 2:
            self.point = None
            raise Crash("killed between two orders")
        return await self.inner.submit(request)


class CrashingCommit:
    """Wraps a unit-of-work factory; when `armed`, the next unit of work fails at commit."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.armed = False

    def __call__(self) -> Any:
        uow = self.inner()
        if self.armed:
            self.armed = False

            async def boom() -> None:
                raise Crash("killed after submitting, before committing")

            uow.commit = boom
        return uow
