"""The circuit breaker's history over a simulation, for backtest and rehearsal reports: every trip, every
resume (and who approved it), and the shadow periods in between, so a report says when its figures
measured a halted account rather than the strategy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from domain.events import EventType
from domain.ports.repositories import EventQuery
from domain.ports.uow import UnitOfWork

ResumePolicy = Literal["approve-when-eligible", "never"]
RESUME_POLICIES: tuple[str, ...] = ("approve-when-eligible", "never")
_TYPES = (EventType.BREAKER_TRIPPED, EventType.BREAKER_ELIGIBLE, EventType.BREAKER_RESUMED)


@dataclass(frozen=True)
class BreakerTrip:
    """A trip: when, its trigger ("drawdown", "system_errors", ...) and the stated reason."""

    at: datetime
    trigger: str | None
    reason: str | None


@dataclass(frozen=True)
class BreakerResume:
    """A resume: when, who approved it and their note."""

    at: datetime
    by: str | None
    note: str | None


@dataclass(frozen=True)
class ShadowPeriod:
    """Sessions from a trip to its resume (both days included), or to the end of the run when `open`."""

    first: date
    last: date
    sessions: int
    open: bool = False


@dataclass(frozen=True)
class BreakerHistory:
    """Trips, resumes and shadow periods of a simulation.

    Attributes:
        resume_policy: what the simulation did when the breaker could resume.
        trips: oldest first.
        eligible: when the breaker became eligible to resume, oldest first.
        resumes: oldest first.
        shadow_periods: oldest first; the last is `open` when the run ended halted.
        shadow_sessions: sessions spent halted.
        halted_share: shadow_sessions / sessions of the run (4 decimals; 0.0 without sessions).
    """

    resume_policy: str
    trips: tuple[BreakerTrip, ...]
    eligible: tuple[datetime, ...]
    resumes: tuple[BreakerResume, ...]
    shadow_periods: tuple[ShadowPeriod, ...]
    shadow_sessions: int
    halted_share: float


async def breaker_history(uow: UnitOfWork, scope: str, sessions: Sequence[date], *, policy: str) -> BreakerHistory:
    """Trips, resumes and shadow periods of `scope` over `sessions` (oldest first), from the event log."""
    events = await uow.events.query(EventQuery(scope, types=_TYPES, limit=100_000))
    events.sort(key=lambda e: (e.at, e.id or 0))
    trips = tuple(BreakerTrip(e.at, e.payload.get("trigger"), e.payload.get("reason"))
                  for e in events if e.type is EventType.BREAKER_TRIPPED)
    resumes = tuple(BreakerResume(e.at, e.payload.get("approved_by"), e.payload.get("note"))
                    for e in events if e.type is EventType.BREAKER_RESUMED)
    periods: list[ShadowPeriod] = []
    start: date | None = None
    for e in events:
        day = e.at.date()
        if e.type is EventType.BREAKER_TRIPPED and start is None:
            start = day
        elif e.type is EventType.BREAKER_RESUMED and start is not None:
            periods.append(_period(start, day, sessions))
            start = None
    if start is not None and sessions:
        periods.append(_period(start, sessions[-1], sessions, still_open=True))
    shadow = sum(p.sessions for p in periods)
    return BreakerHistory(policy, trips, tuple(e.at for e in events if e.type is EventType.BREAKER_ELIGIBLE),
                          resumes, tuple(periods), shadow,
                          round(shadow / len(sessions), 4) if sessions else 0.0)


def _period(first: date, last: date, sessions: Sequence[date], *, still_open: bool = False) -> ShadowPeriod:
    return ShadowPeriod(first, last, sum(1 for d in sessions if first <= d <= last), still_open)
