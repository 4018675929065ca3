"""Execution: real orders (or shadow fills while the breaker is tripped), then fills, trade memory, outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from application.cycle.decide import ProposalOutcome
from application.cycle.snapshot import Snapshot
from domain.alerts import large_position_change_event
from domain.errors import InsufficientBuyingPowerError, OrderRejectedError
from domain.events import Event, EventType, Severity
from domain.memory import MemoryKind, MemoryRecord
from domain.models.trading import Fill, Order, OrderStatus, Portfolio, Side
from domain.ports.broker import Broker
from domain.ports.repositories import FillRecord, OrderRecord
from domain.ports.uow import UnitOfWork
from domain.risk.config import FeeSettings
from domain.shadow import closed_return, simulate_fill

log = structlog.get_logger(__name__)
OPEN_TRADES_DOC = "open_trades"
FILL_SYNC_DOC = "fill_sync"


@dataclass
class ExecutionResult:
    """What execution did."""

    submitted: list[Order] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    shadow_fills: list[Fill] = field(default_factory=list)
    shadow_closed_returns: list[float] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    closed_returns: list[float] = field(default_factory=list)


def _fill_key(f: Fill) -> str:
    return f"{f.client_order_id}|{f.at.isoformat()}|{f.qty}|{f.price}"


def _event(t: EventType, at: datetime, msg: str, *, cycle_id: str | None, scope: str, symbol: str | None = None,
           severity: Severity = Severity.INFO, **payload: Any) -> Event:
    return Event(t, at, msg, severity, cycle_id, symbol, payload, scope)


async def submit_orders(uow: UnitOfWork, broker: Broker, outcomes: list[ProposalOutcome], *, as_of: datetime,
                        cycle_id: str, scope: str, shadow: bool, book: Portfolio, snap: Snapshot,
                        fees: FeeSettings) -> tuple[ExecutionResult, Portfolio]:
    """Send approved orders. In shadow mode entries fill on the shadow book instead; exits stay real."""
    res = ExecutionResult()
    events: list[Event] = []
    for o in outcomes:
        if o.final == "SHADOW_EXIT" and o.symbol in book.positions:
            held = book.positions[o.symbol]
            book, fill = simulate_fill(book, symbol=o.symbol, side=Side.SELL, qty=held.qty,
                                       reference=snap.prices.get(o.symbol, held.avg_entry_price), fees=fees,
                                       at=as_of, client_order_id=f"shadow-{cycle_id}-{o.symbol}",
                                       reason="shadow exit: " + o.signal.reasoning)
            res.shadow_fills.append(fill)
            res.shadow_closed_returns.append(closed_return(held.avg_entry_price, fill))
            await uow.fills.add([FillRecord(fill, scope, cycle_id, shadow=True)])
            continue
        if o.limit is None or o.limit.order is None:
            continue
        req = o.limit.order
        is_entry = req.side is Side.BUY
        if shadow and (is_entry or req.symbol in book.positions):
            ref = snap.prices[req.symbol]
            entry_px = book.positions[req.symbol].avg_entry_price if req.symbol in book.positions else None
            qty = req.qty if is_entry else book.positions[req.symbol].qty
            book, fill = simulate_fill(book, symbol=req.symbol, side=req.side, qty=qty, reference=ref, fees=fees,
                                       at=as_of, client_order_id=req.client_order_id, reason="shadow: " + req.reason,
                                       stop_price=req.stop_price, fractional=req.fractional)
            res.shadow_fills.append(fill)
            if not is_entry and entry_px is not None:
                res.shadow_closed_returns.append(closed_return(entry_px, fill))
            await uow.fills.add([FillRecord(fill, scope, cycle_id, shadow=True)])
            events.append(_event(EventType.SHADOW_FILL, as_of, f"shadow {req.side.value} {qty} {req.symbol} @ "
                                 f"{fill.price} (breaker tripped: no order sent)", cycle_id=cycle_id, scope=scope,
                                 symbol=req.symbol, client_order_id=req.client_order_id, qty=str(qty),
                                 price=str(fill.price)))
            continue
        try:
            order = await broker.submit(req)
        except (InsufficientBuyingPowerError, OrderRejectedError) as exc:
            res.rejected.append(req.client_order_id)
            o.final, o.reason = "REJECTED", f"broker: {exc}"
            events.append(_event(EventType.ORDER_REJECTED, as_of, f"broker rejected {req.side.value} {req.qty} "
                                 f"{req.symbol}: {exc}", cycle_id=cycle_id, scope=scope, symbol=req.symbol,
                                 severity=Severity.WARNING, client_order_id=req.client_order_id,
                                 error=type(exc).__name__))
            await uow.orders.upsert(OrderRecord(Order(req, "", OrderStatus.REJECTED, as_of), scope, cycle_id))
            continue
        res.submitted.append(order)
        await uow.orders.upsert(OrderRecord(order, scope, cycle_id))
        events.append(_event(EventType.ORDER_SUBMITTED, as_of, f"{req.side.value} {req.qty} {req.symbol} "
                             f"({'fractional' if req.fractional else 'whole shares'}; stop {req.stop_price})",
                             cycle_id=cycle_id, scope=scope, symbol=req.symbol, client_order_id=req.client_order_id,
                             broker_order_id=order.broker_order_id, qty=str(req.qty), side=req.side.value,
                             stop_price=None if req.stop_price is None else str(req.stop_price)))
    await uow.events.add(events)
    return res, book


async def sync_fills(uow: UnitOfWork, broker: Broker, res: ExecutionResult, *, as_of: datetime,
                     cycle_id: str | None,
                     scope: str, reasons: dict[str, ProposalOutcome], equity: Decimal,
                     large_change_pct: float) -> None:
    """Record new broker fills, store trade memories, attach outcomes to the entries they close."""
    sync = await uow.state.load(scope, FILL_SYNC_DOC) or {}
    since = datetime.fromisoformat(sync["since"]) if sync.get("since") else None
    seen: set[str] = set(sync.get("keys", []))
    fills = await broker.fills_since(since) if since else await broker.fills_since(datetime.min.replace(
        tzinfo=as_of.tzinfo))
    new = [f for f in fills if _fill_key(f) not in seen and (since is None or f.at >= since)]
    if not new:
        return
    trades = await uow.state.load(scope, OPEN_TRADES_DOC) or {}
    await uow.fills.add([FillRecord(f, scope, cycle_id) for f in new])
    memories: list[MemoryRecord] = []
    outcomes_to_record: list[tuple[int, str, float, datetime]] = []
    events: list[Event] = []
    for f in new:
        o = reasons.get(f.client_order_id)
        why = o.signal.reasoning if o else f.reason
        if f.side is Side.BUY:
            setup = o.setup if o else ""
            text = f"BUY {f.symbol} at {f.price}: {setup}. Reasoning: {why}"
            memories.append(MemoryRecord(MemoryKind.TRADE, text, f.at, symbol=f.symbol, action="BUY", scope=scope,
                                         metadata={"cycle_id": cycle_id, "client_order_id": f.client_order_id}))
            trades[f.symbol] = {"entry_price": str(f.price), "entry_at": f.at.isoformat(), "memory_index": None,
                                "stop_price": str(o.limit.order.stop_price) if o and o.limit and o.limit.order
                                and o.limit.order.stop_price else trades.get(f.symbol, {}).get("stop_price"),
                                "client_order_id": f.client_order_id}
        else:
            entry = trades.get(f.symbol)
            ret = closed_return(Decimal(entry["entry_price"]), f) if entry else None
            outcome = None if ret is None else ("WIN" if ret > 0 else "LOSS")
            text = (f"SELL {f.symbol} at {f.price}. Reasoning: {why}"
                    + (f". Outcome: {outcome} {ret:+.2%}" if ret is not None else ""))
            memories.append(MemoryRecord(MemoryKind.TRADE, text, f.at, symbol=f.symbol, action="SELL",
                                         outcome=outcome, return_pct=ret, outcome_at=f.at if outcome else None,
                                         scope=scope, metadata={"cycle_id": cycle_id,
                                                                "client_order_id": f.client_order_id}))
            if ret is not None and entry is not None:
                res.closed_returns.append(ret)
                if entry.get("memory_id"):
                    outcomes_to_record.append((int(entry["memory_id"]), outcome or "FLAT", ret, f.at))
                trades.pop(f.symbol, None)
            if "stop" in f.reason.lower():
                events.append(_event(EventType.STOP_TRIGGERED, f.at, f"stop filled: sold {f.qty} {f.symbol} at "
                                     f"{f.price}", cycle_id=cycle_id, scope=scope, symbol=f.symbol,
                                     severity=Severity.WARNING, price=str(f.price)))
        large = large_position_change_event(symbol=f.symbol, side=f.side.value, qty=f.qty, price=f.price,
                                            equity=equity, at=f.at, scope=scope, threshold_pct=large_change_pct,
                                            cycle_id=cycle_id)
        if large is not None:
            events.append(large)
        events.append(_event(EventType.ORDER_FILLED, f.at, f"filled {f.side.value} {f.qty} {f.symbol} @ {f.price} "
                             f"(fee {f.fee})", cycle_id=cycle_id, scope=scope, symbol=f.symbol,
                             client_order_id=f.client_order_id, qty=str(f.qty), price=str(f.price), fee=str(f.fee)))
        res.fills.append(f)
    stored = await uow.trade_memory.store(memories)
    for rec in stored:
        if rec.action == "BUY" and rec.symbol in trades and rec.metadata.get("client_order_id") == \
                trades[rec.symbol]["client_order_id"]:
            trades[rec.symbol]["memory_id"] = rec.id
    for memory_id, outcome, ret, at in outcomes_to_record:
        await uow.trade_memory.record_outcome(memory_id, outcome=outcome, return_pct=ret, outcome_at=at)
    await uow.events.add(events)
    last = max(f.at for f in new)
    keys = [_fill_key(f) for f in fills if f.at == last]
    await uow.state.save(scope, FILL_SYNC_DOC, {"since": last.isoformat(), "keys": keys}, at=as_of)
    await uow.state.save(scope, OPEN_TRADES_DOC, trades, at=as_of)
