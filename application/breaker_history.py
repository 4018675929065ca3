"""The circuit breaker's history over a simulation, for backtest and rehearsal reports: every trip, every
resume (and who approved it), and the shadow periods in between, so a report says when its figures
measured a halted account rather than the strategy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

from domain.events import EventType
from domain.ports.repositories import EventQuery
from domain.ports.uow import UnitOfWork

ResumePolicy = Literal["approve-when-eligible", "never"]
RESUME_POLICIES: tuple[str, ...] = ("approve-when-eligible", "never")
_TYPES = (EventType.BREAKER_TRIPPED, EventType.BREAKER_ELIGIBLE, EventType.BREAKER_RESUMED)


async def breaker_history(uow: UnitOfWork, scope: str, sessions: Sequence[date], *, policy: str) -> dict[str, Any]:
    """Trips, resumes and shadow periods of `scope` over `sessions` (oldest first).

    Returns:
        {"resume_policy", "trips": [{at, trigger, reason}], "eligible": [at...], "resumes": [{at, by, note}],
        "shadow_periods": [{from, to, sessions}], "shadow_sessions": n, "halted_share": fraction of sessions}.
    """
    events = await uow.events.query(EventQuery(scope, types=_TYPES, limit=100_000))
    events.sort(key=lambda e: (e.at, e.id or 0))
    trips = [{"at": e.at.isoformat(), "trigger": e.payload.get("trigger"), "reason": e.payload.get("reason")}
             for e in events if e.type is EventType.BREAKER_TRIPPED]
    resumes = [{"at": e.at.isoformat(), "by": e.payload.get("approved_by"), "note": e.payload.get("note")}
               for e in events if e.type is EventType.BREAKER_RESUMED]
    periods: list[dict[str, Any]] = []
    start: date | None = None
    for e in events:
        day = e.at.date()
        if e.type is EventType.BREAKER_TRIPPED and start is None:
            start = day
        elif e.type is EventType.BREAKER_RESUMED and start is not None:
            periods.append(_period(start, day, sessions))
            start = None
    if start is not None and sessions:
        periods.append({**_period(start, sessions[-1], sessions), "open": True})
    shadow = sum(p["sessions"] for p in periods)
    return {"resume_policy": policy, "trips": trips,
            "eligible": [e.at.isoformat() for e in events if e.type is EventType.BREAKER_ELIGIBLE],
            "resumes": resumes, "shadow_periods": periods, "shadow_sessions": shadow,
            "halted_share": round(shadow / len(sessions), 4) if sessions else 0.0}


def _period(first: date, last: date, sessions: Sequence[date]) -> dict[str, Any]:
    return {"from": first.isoformat(), "to": last.isoformat(),
            "sessions": sum(1 for d in sessions if first <= d <= last)}
