"""The circuit breaker's and the shadow book's persistence, and what a cycle reports to the breaker."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from application.cycle.bookkeeping import ClosedTrade
from domain import breaker as brk
from domain.events import Event, EventType, Severity
from domain.models.trading import Portfolio
from domain.ports.uow import UnitOfWork
from domain.risk.config import BreakerSettings
from domain.shadow import portfolio_from_dict, portfolio_to_dict

BREAKER_DOC, SHADOW_DOC = "breaker", "shadow_book"


async def load_breaker(uow: UnitOfWork, scope: str, equity: Decimal) -> brk.BreakerState:
    """The stored breaker state, or a fresh ACTIVE one peaking at `equity`."""
    doc = await uow.state.load(scope, BREAKER_DOC)
    return brk.BreakerState.from_dict(doc) if doc is not None else brk.initial_state(equity)


async def save_breaker(uow: UnitOfWork, scope: str, state: brk.BreakerState, *, at: datetime) -> None:
    """Store the breaker state."""
    await uow.state.save(scope, BREAKER_DOC, state.to_dict(), at=at)


async def load_shadow_book(uow: UnitOfWork, scope: str) -> Portfolio | None:
    """The shadow book, or None when there is none (never tripped, or cleared on resume)."""
    doc = await uow.state.load(scope, SHADOW_DOC)
    return portfolio_from_dict(doc) if doc else None


async def save_shadow_book(uow: UnitOfWork, scope: str, book: Portfolio | None, *, at: datetime) -> None:
    """Store the shadow book; None clears it (a resumed breaker starts the next trip with a fresh book)."""
    await uow.state.save(scope, SHADOW_DOC, portfolio_to_dict(book) if book is not None else {}, at=at)


def count_closed_trades(state: brk.BreakerState, closed: Sequence[ClosedTrade], *, as_of: datetime,
                        settings: BreakerSettings) -> tuple[brk.BreakerState, list[brk.Trip]]:
    """Record each closed real trade with the breaker, in the order they closed."""
    trips = []
    for t in sorted(closed, key=lambda t: t.closed_at):
        state, trip = brk.record_trade_result(state, return_pct=t.return_pct, as_of=as_of, settings=settings)
        if trip is not None:
            trips.append(trip)
    return state, trips


def trip_events(trips: Iterable[brk.Trip | None], cycle_id: str | None, scope: str) -> list[Event]:
    """One CRITICAL BREAKER_TRIPPED event per trip."""
    return [Event(EventType.BREAKER_TRIPPED, t.at, f"circuit breaker tripped ({t.trigger}): {t.reason}; new entries "
                  "blocked, exits and stops still run, decisions continue in shadow mode", Severity.CRITICAL,
                  cycle_id, None, {"trigger": t.trigger, "reason": t.reason}, scope) for t in trips if t is not None]
