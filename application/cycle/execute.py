"""Execution: exits first (the position's protective orders cancelled before the sell, so the broker does
not refuse it for shares held by a stop leg), then entries (recorded as pending with the stop they asked
for), or shadow fills while the breaker is tripped. A broker refusal rejects that one order with its
reason; it never fails the cycle."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog

from application.cycle.decide import ProposalOutcome
from application.cycle.protection import sell_orders
from application.cycle.snapshot import Snapshot
from domain.errors import (
    ForbiddenError,
    InsufficientBuyingPowerError,
    NotFoundError,
    OrderRejectedError,
)
from domain.events import Event, EventType, Severity
from domain.models.trading import Fill, Order, OrderRequest, OrderStatus, Portfolio, Side
from domain.ports.broker import Broker
from domain.ports.repositories import FillRecord, OrderRecord
from domain.ports.uow import UnitOfWork
from domain.risk.config import FeeSettings
from domain.shadow import closed_return, simulate_fill
from domain.trading_state import PendingEntry, TradingState

log = structlog.get_logger(__name__)
REFUSALS = (InsufficientBuyingPowerError, OrderRejectedError, ForbiddenError)


@dataclass
class ExecutionResult:
    """What execution did."""

    state: TradingState
    book: Portfolio
    submitted: list[Order] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    shadow_fills: list[Fill] = field(default_factory=list)
    shadow_closed_returns: list[float] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def _event(t: EventType, at: datetime, msg: str, *, cycle_id: str, scope: str, symbol: str | None = None,
           severity: Severity = Severity.INFO, **payload: object) -> Event:
    return Event(t, at, msg, severity, cycle_id, symbol, dict(payload), scope)


class Executor:
    """Sends one cycle's approved orders."""

    def __init__(self, uow: UnitOfWork, broker: Broker, *, as_of: datetime, cycle_id: str, scope: str,
                 fees: FeeSettings, snap: Snapshot, res: ExecutionResult) -> None:
        self.uow, self.broker, self.as_of, self.cycle_id, self.scope = uow, broker, as_of, cycle_id, scope
        self.fees, self.snap, self.res = fees, snap, res
        self._open: list[Order] | None = None

    async def run(self, outcomes: list[ProposalOutcome], *, shadow: bool) -> ExecutionResult:
        """Exits first, then entries (real, or on the shadow book when `shadow`)."""
        for o in outcomes:
            if o.final == "SHADOW_EXIT":
                await self._shadow_exit(o)
            elif o.limit is not None and o.limit.order is not None:
                req = o.limit.order
                if req.side is Side.SELL and req.symbol in self.snap.positions:
                    await self._exit(o, req)
                elif shadow:
                    await self._shadow_entry(req)
                else:
                    await self._entry(o, req)
        await self.uow.events.add(self.res.events)
        self.res.events = []
        return self.res

    async def _open_orders(self) -> list[Order]:
        if self._open is None:
            self._open = await self.broker.open_orders()
        return self._open

    async def _exit(self, o: ProposalOutcome, req: OrderRequest) -> None:
        for leg in sell_orders(await self._open_orders(), req.symbol):
            try:
                await self.broker.cancel(leg.broker_order_id)
            except (OrderRejectedError, NotFoundError) as exc:
                log.info("exit_cancel_not_needed", symbol=req.symbol, order=leg.broker_order_id, error=str(exc))
        self._open = None
        held = {p.symbol: p for p in await self.broker.positions()}.get(req.symbol)
        if held is None or held.qty <= 0:
            o.final, o.reason = "HOLD", "the position was already closed at the broker (its stop or take profit)"
            self.res.events.append(_event(EventType.PROPOSAL_REJECTED, self.as_of, f"{req.symbol}: exit not sent, "
                                          "the position was already closed", cycle_id=self.cycle_id, scope=self.scope,
                                          symbol=req.symbol, kind="already_closed"))
            return
        req = replace(req, qty=held.qty, fractional=held.qty != held.qty.to_integral_value())
        order = await self._submit(o, req)
        if order is not None:
            self.res.state = _forget_legs(self.res.state, req.symbol)

    async def _entry(self, o: ProposalOutcome, req: OrderRequest) -> None:
        order = await self._submit(o, req)
        if order is None:
            return
        self.res.state = self.res.state.with_pending(PendingEntry(
            client_order_id=req.client_order_id, symbol=req.symbol, qty=req.qty, stop_price=req.stop_price,
            take_profit_price=req.take_profit_price, fractional=req.fractional, submitted_at=self.as_of,
            cycle_id=self.cycle_id, broker_order_id=order.broker_order_id, setup=o.setup,
            reasoning=o.signal.reasoning))

    async def _submit(self, o: ProposalOutcome, req: OrderRequest) -> Order | None:
        try:
            order = await self.broker.submit(req)
        except REFUSALS as exc:
            self.res.rejected.append(req.client_order_id)
            o.final, o.reason = "REJECTED", f"broker: {exc}"
            self.res.events.append(_event(EventType.ORDER_REJECTED, self.as_of, f"broker rejected {req.side.value} "
                                          f"{req.qty} {req.symbol}: {exc}", cycle_id=self.cycle_id, scope=self.scope,
                                          symbol=req.symbol, severity=Severity.WARNING,
                                          client_order_id=req.client_order_id, error=type(exc).__name__))
            await self.uow.orders.upsert(OrderRecord(Order(req, "", OrderStatus.REJECTED, self.as_of), self.scope,
                                                     self.cycle_id))
            return None
        self.res.submitted.append(order)
        await self.uow.orders.upsert(OrderRecord(order, self.scope, self.cycle_id))
        self.res.events.append(_event(
            EventType.ORDER_SUBMITTED, self.as_of, f"{req.side.value} {req.qty} {req.symbol} "
            f"({'fractional' if req.fractional else 'whole shares'}, {req.time_in_force.value}; stop {req.stop_price})",
            cycle_id=self.cycle_id, scope=self.scope, symbol=req.symbol, client_order_id=req.client_order_id,
            broker_order_id=order.broker_order_id, qty=str(req.qty), side=req.side.value,
            stop_price=None if req.stop_price is None else str(req.stop_price)))
        return order

    async def _shadow_entry(self, req: OrderRequest) -> None:
        book = self.res.book
        ref = self.snap.prices[req.symbol]
        book, fill = simulate_fill(book, symbol=req.symbol, side=req.side, qty=req.qty, reference=ref, fees=self.fees,
                                   at=self.as_of, client_order_id=req.client_order_id, reason="shadow: " + req.reason,
                                   stop_price=req.stop_price, fractional=req.fractional)
        self.res.book = book
        await self._record_shadow(fill)

    async def _shadow_exit(self, o: ProposalOutcome) -> None:
        held = self.res.book.positions.get(o.symbol)
        if held is None:
            return
        book, fill = simulate_fill(self.res.book, symbol=o.symbol, side=Side.SELL, qty=held.qty,
                                   reference=self.snap.prices.get(o.symbol, held.avg_entry_price), fees=self.fees,
                                   at=self.as_of, client_order_id=f"shadow-{self.cycle_id}-{o.symbol}",
                                   reason="shadow exit: " + o.signal.reasoning)
        self.res.book = book
        self.res.shadow_closed_returns.append(closed_return(held.avg_entry_price, fill))
        await self._record_shadow(fill)

    async def _record_shadow(self, fill: Fill) -> None:
        self.res.shadow_fills.append(fill)
        await self.uow.fills.add([FillRecord(fill, self.scope, self.cycle_id, shadow=True)])
        self.res.events.append(_event(EventType.SHADOW_FILL, self.as_of, f"shadow {fill.side.value} {fill.qty} "
                                      f"{fill.symbol} @ {fill.price} (breaker tripped: no order sent)",
                                      cycle_id=self.cycle_id, scope=self.scope, symbol=fill.symbol,
                                      client_order_id=fill.client_order_id, qty=str(fill.qty),
                                      price=str(fill.price)))


def _forget_legs(state: TradingState, symbol: str) -> TradingState:
    trade = state.open_trades.get(symbol)
    return state if trade is None else state.with_trade(replace(trade, leg_ids=()))


async def execute(uow: UnitOfWork, broker: Broker, outcomes: list[ProposalOutcome], *, state: TradingState,
                  as_of: datetime, cycle_id: str, scope: str, shadow: bool, book: Portfolio, snap: Snapshot,
                  fees: FeeSettings) -> ExecutionResult:
    """Send the approved orders of `outcomes` (exits real even in shadow mode; entries shadow when `shadow`)."""
    executor = Executor(uow, broker, as_of=as_of, cycle_id=cycle_id, scope=scope, fees=fees, snap=snap,
                        res=ExecutionResult(state, book))
    return await executor.run(outcomes, shadow=shadow)
