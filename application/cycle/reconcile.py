"""Reconciliation: the broker is the truth. Before every cycle (and at start-up) Quorum books the fills
since its cursor (they explain most changes), records orders it did not know about (e.g. submitted by a
cycle that crashed before committing), refreshes the orders it thinks are open, drops entries whose
order ended unfilled, lines its open trades up with the broker's positions, and writes every unexplained
difference to the event log."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

import structlog

from application.cycle.fills import Booking, book_fills
from domain.event_factories import reconciliation_difference
from domain.events import Event
from domain.models.trading import Order, OrderStatus, Position, Side
from domain.ports.broker import Broker
from domain.ports.repositories import OrderRecord
from domain.ports.uow import UnitOfWork
from domain.trading_state import TradingState

log = structlog.get_logger(__name__)
OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
ENDED_UNFILLED = (OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)


@dataclass(frozen=True)
class Difference:
    """Something the database did not know or got wrong."""

    kind: str
    detail: str
    symbol: str | None = None
    client_order_id: str | None = None


@dataclass(frozen=True)
class Reconciliation:
    """What reconciling did: the booked fills (and the trades they closed), the differences, the events."""

    booking: Booking
    open_orders: list[Order]
    positions: list[Position]
    differences: tuple[Difference, ...] = ()

    @property
    def state(self) -> TradingState:
        """The trading state after reconciling."""
        return self.booking.state

    def events(self, *, as_of: datetime, cycle_id: str | None, scope: str) -> tuple[Event, ...]:
        """The booking's events and one RECONCILIATION_DIFF event per difference."""
        return self.booking.events + tuple(
            reconciliation_difference(at=as_of, scope=scope, cycle_id=cycle_id, kind=d.kind, detail=d.detail,
                                      symbol=d.symbol, client_order_id=d.client_order_id) for d in self.differences)


def merged_positions(positions: list[Position], state: TradingState) -> list[Position]:
    """The broker's positions with what only Quorum knows: the stop it keeps and when it opened each one."""
    out = []
    for p in positions:
        trade = state.open_trades.get(p.symbol)
        if trade is not None:
            p = replace(p, stop_price=trade.stop_price, opened_at=trade.opened_at)
        out.append(p)
    return out


async def store_positions(uow: UnitOfWork, scope: str, positions: list[Position], state: TradingState) -> None:
    """Store the broker's positions with Quorum's stops and opening times."""
    await uow.positions.replace_all(scope, merged_positions(positions, state))


async def _recover_orders(uow: UnitOfWork, broker: Broker, scope: str, cids: set[str],
                          known_open: dict[str, Order], diffs: list[Difference]) -> None:
    for cid in sorted(cids):
        if await uow.orders.get(cid) is not None:
            continue
        order = known_open.get(cid) or await broker.get_by_client_id(cid)
        if order is None:
            diffs.append(Difference("fill_without_order", f"fill for unknown order {cid}", None, cid))
            continue
        if order.is_leg:
            continue
        await uow.orders.upsert(OrderRecord(order, scope, None))
        diffs.append(Difference("order_recovered", f"{order.request.side.value} {order.request.qty} {order.symbol} "
                                f"({order.status.value}) was at the broker but not in the database — recorded",
                                order.symbol, cid))


async def _refresh_orders(uow: UnitOfWork, broker: Broker, scope: str, known_open: dict[str, Order]) -> None:
    for rec in await uow.orders.list(scope, status=OPEN_STATUSES):
        if rec.shadow or rec.order.client_order_id in known_open:
            continue
        fresh = await broker.get_by_client_id(rec.order.client_order_id)
        if fresh is not None and fresh.status != rec.order.status:
            await uow.orders.upsert(OrderRecord(fresh, scope, rec.cycle_id))


async def _settle_pending(broker: Broker, state: TradingState, known_open: dict[str, Order],
                          diffs: list[Difference]) -> TradingState:
    """Drop pending entries whose order ended without (completely) filling."""
    for cid, entry in sorted(state.pending_entries.items()):
        if cid in known_open:
            continue
        order = await broker.get_by_client_id(cid)
        if order is None or order.status in ENDED_UNFILLED:
            status = "unknown to the broker" if order is None else order.status.value
            state = state.without_pending(cid)
            diffs.append(Difference("entry_ended_unfilled", f"entry {cid} for {entry.qty} {entry.symbol} ended "
                                    f"unfilled ({status}); nothing more will fill", entry.symbol, cid))
    return state


def _line_up_trades(state: TradingState, held: dict[str, Decimal], diffs: list[Difference]) -> TradingState:
    for sym, trade in sorted(state.open_trades.items()):
        qty = held.get(sym, Decimal(0))
        if qty <= 0:
            state = state.without_trade(sym)
            diffs.append(Difference("trade_without_position", f"{sym}: Quorum had an open trade of {trade.qty} but "
                                    "the broker holds none and no fill explains it — trade closed", sym))
        elif qty != trade.qty:
            state = state.with_trade(replace(trade, qty=qty))
            diffs.append(Difference("trade_qty_mismatch", f"{sym}: Quorum's trade was {trade.qty}, the broker holds "
                                    f"{qty} — using the broker's", sym))
    return state


async def reconcile(uow: UnitOfWork, broker: Broker, state: TradingState, *, scope: str, as_of: datetime,
                    cycle_id: str | None, equity: Decimal, large_change_pct: float,
                    cooldown: timedelta = timedelta(0)) -> Reconciliation:
    """Bring the database and the trading state in line with the broker.

    Order: book fills since the cursor, record unknown orders (legs excepted: they are the broker's),
    refresh the status of orders the database thinks are open, drop entries that ended unfilled, compare
    positions, line open trades up with the broker's positions, store the positions.
    """
    diffs: list[Difference] = []
    broker_open = await broker.open_orders()
    quorum_open = {o.client_order_id: o for o in broker_open if not o.is_leg}
    before = {p.symbol: p.qty for p in await uow.positions.list(scope)}
    booking = await book_fills(uow, broker, state, as_of=as_of, cycle_id=cycle_id, scope=scope, equity=equity,
                               large_change_pct=large_change_pct, cooldown=cooldown)
    await _recover_orders(uow, broker, scope, {f.client_order_id for f in booking.fills} | set(quorum_open),
                          quorum_open, diffs)
    await _refresh_orders(uow, broker, scope, quorum_open)
    state = await _settle_pending(broker, booking.state, quorum_open, diffs)
    expected = dict(before)
    for f in booking.fills:
        expected[f.symbol] = expected.get(f.symbol, Decimal(0)) + (f.qty if f.side is Side.BUY else -f.qty)
    actual = await broker.positions()
    held = {p.symbol: p.qty for p in actual}
    if before or booking.fills:
        for sym in sorted(set(expected) | set(held)):
            want, got = expected.get(sym, Decimal(0)), held.get(sym, Decimal(0))
            if want != got:
                diffs.append(Difference("position_mismatch", f"{sym}: database expected {want}, broker holds {got} "
                                        "— using the broker's", sym))
    state = _line_up_trades(state, held, diffs)
    await store_positions(uow, scope, actual, state)
    if diffs:
        log.warning("reconciliation_differences", count=len(diffs), kinds=sorted({d.kind for d in diffs}))
    return Reconciliation(replace(booking, state=state), broker_open, actual, tuple(diffs))
