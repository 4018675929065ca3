"""Reconciliation: the broker is the truth. Before every cycle (and at start-up) Quorum reads positions,
open orders and fills from the broker, explains what it can (fills since the last sync), records orders
it did not know about (e.g. submitted by a cycle that crashed before committing), and writes every
unexplained difference to the event log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from application.cycle.execute import OPEN_TRADES_DOC, ExecutionResult, sync_fills
from domain.events import Event, EventType, Severity
from domain.models.trading import Order, OrderStatus, Position, Side
from domain.ports.broker import Broker
from domain.ports.repositories import OrderRecord
from domain.ports.uow import UnitOfWork

log = structlog.get_logger(__name__)
OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


@dataclass(frozen=True)
class Difference:
    """Something the database did not know or got wrong."""

    kind: str
    detail: str
    symbol: str | None = None
    client_order_id: str | None = None

    def payload(self) -> dict[str, Any]:
        """JSON-safe form for the event log."""
        return {"kind": self.kind, "detail": self.detail, "client_order_id": self.client_order_id}


async def store_positions(uow: UnitOfWork, scope: str, positions: list[Position]) -> None:
    """Store the broker's positions, adding the stops Quorum keeps itself (fractional positions)."""
    trades = await uow.state.load(scope, OPEN_TRADES_DOC) or {}
    await uow.positions.replace_all(scope, [
        p if p.stop_price is not None or not trades.get(p.symbol, {}).get("stop_price") else
        Position(p.symbol, p.qty, p.avg_entry_price, Decimal(trades[p.symbol]["stop_price"]), p.opened_at,
                 p.fractional) for p in positions])


def _is_leg(client_order_id: str) -> bool:
    return client_order_id.endswith(("-sl", "-tp"))


async def _recover_order(uow: UnitOfWork, broker: Broker, cid: str, scope: str, known: Order | None,
                         diffs: list[Difference]) -> None:
    order = known or await broker.get_by_client_id(cid)
    if order is None:
        diffs.append(Difference("fill_without_order", f"fill for unknown order {cid}", None, cid))
        return
    await uow.orders.upsert(OrderRecord(order, scope, None))
    diffs.append(Difference("order_recovered", f"{order.request.side.value} {order.request.qty} {order.symbol} "
                            f"({order.status.value}) was at the broker but not in the database — recorded",
                            order.symbol, cid))


async def reconcile(uow: UnitOfWork, broker: Broker, *, scope: str, as_of: datetime, cycle_id: str | None,
                    equity: Decimal, large_change_pct: float) -> list[Difference]:
    """Bring the database in line with the broker and return the differences found.

    Order: record fills since the last sync (they explain most changes), record unknown orders,
    refresh the status of orders the database thinks are open, then compare positions and replace
    the stored ones with the broker's.
    """
    diffs: list[Difference] = []
    broker_open = {o.client_order_id: o for o in await broker.open_orders() if not _is_leg(o.client_order_id)}
    before = {p.symbol: p.qty for p in await uow.positions.list(scope)}
    res = ExecutionResult()
    await sync_fills(uow, broker, res, as_of=as_of, cycle_id=cycle_id, scope=scope, reasons={}, equity=equity,
                     large_change_pct=large_change_pct)
    for cid in sorted({f.client_order_id for f in res.fills} | set(broker_open)):
        if _is_leg(cid) or await uow.orders.get(cid) is not None:
            continue
        await _recover_order(uow, broker, cid, scope, broker_open.get(cid), diffs)
    for rec in await uow.orders.list(scope, status=OPEN_STATUSES):
        if rec.shadow or rec.order.client_order_id in broker_open:
            continue
        fresh = await broker.get_by_client_id(rec.order.client_order_id)
        if fresh is not None and fresh.status != rec.order.status:
            await uow.orders.upsert(OrderRecord(fresh, scope, rec.cycle_id))
    expected = dict(before)
    for f in res.fills:
        expected[f.symbol] = expected.get(f.symbol, Decimal(0)) + (f.qty if f.side is Side.BUY else -f.qty)
    actual = await broker.positions()
    held = {p.symbol: p.qty for p in actual}
    if before or res.fills:
        for sym in sorted(set(expected) | set(held)):
            want, got = expected.get(sym, Decimal(0)), held.get(sym, Decimal(0))
            if want != got:
                diffs.append(Difference("position_mismatch", f"{sym}: database expected {want}, broker holds {got} "
                                        "— using the broker's", sym))
    await store_positions(uow, scope, actual)
    if diffs:
        await uow.events.add([Event(EventType.RECONCILIATION_DIFF, as_of, d.detail, Severity.WARNING, cycle_id,
                                    d.symbol, d.payload(), scope) for d in diffs])
        log.warning("reconciliation_differences", count=len(diffs), kinds=sorted({d.kind for d in diffs}))
    return diffs
