"""The circuit breaker's and the shadow book's persistence, and what a cycle reports to the breaker."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from application.cycle.fills import ClosedTrade
from domain import breaker as brk
from domain.event_factories import breaker_tripped
from domain.events import Event
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


def book_breaker(state: brk.BreakerState, closed: Sequence[ClosedTrade], *, equity: Decimal,
                 day_start_equity: Decimal, as_of: datetime, settings: BreakerSettings,
                 error: bool | None, flow: Decimal = Decimal(0)) -> tuple[brk.BreakerState, list[brk.Trip | None]]:
    """What a cycle or a reconciliation reports to the breaker: the trades closed, the equity against the day's
    start, the money moved in (`flow`, withdrawals negative) since it last saw the equity, and (for a cycle,
    `error` not None) the cycle's outcome. Returns the new state and any trips."""
    state, trips = count_closed_trades(state, closed, as_of=as_of, settings=settings)
    state, trip = brk.record_equity(state, equity=equity, day_start_equity=day_start_equity, as_of=as_of,
                                    settings=settings, flow=flow)
    outcome_trip = None
    if error is not None:
        state, outcome_trip = brk.record_cycle_outcome(state, error=error, as_of=as_of, settings=settings)
    return state, [*trips, trip, outcome_trip]


def trip_events(trips: Iterable[brk.Trip | None], cycle_id: str | None, scope: str) -> tuple[Event, ...]:
    """One CRITICAL BREAKER_TRIPPED event per trip."""
    return tuple(breaker_tripped(trip=t, scope=scope, cycle_id=cycle_id) for t in trips if t is not None)
