"""Stage 5, execute: the approved orders, in the order of the outcomes; the rule exits were carried out by the same
code before the agents were asked (`send_exits`), so only the outcomes decide added are sent here.

An exit cancels the position's protective orders before the sell, so the broker does not refuse it for shares
held by a stop leg; an entry is recorded as pending with the stop it asked for. While the breaker is tripped,
entries are filled on the shadow book instead (exits stay real). A broker refusal rejects that one order with
its reason and never fails the cycle. The execution's events are written as soon as the orders are out.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import structlog

from application.cycle.context import CycleContext
from application.cycle.decision import ProposalOutcome
from application.cycle.market_snapshot import Snapshot
from application.cycle.protection import sell_orders
from domain.errors import ForbiddenError, InsufficientBuyingPowerError, NotFoundError, OrderRejectedError
from domain.event_factories import exit_not_sent, order_rejected, order_submitted, shadow_fill
from domain.events import Event
from domain.models.trading import Fill, Order, OrderRequest, OrderStatus, Portfolio, Side
from domain.ports.broker import Broker
from domain.ports.repositories import FillRecord, OrderRecord
from domain.ports.uow import UnitOfWork
from domain.risk.config import FeeSettings
from domain.shadow import closed_return, simulate_fill
from domain.trading_state import PendingEntry, TradingState
from domain.verdict import Verdict

log = structlog.get_logger(__name__)
REFUSALS = (InsufficientBuyingPowerError, OrderRejectedError, ForbiddenError)
ALREADY_CLOSED = "the position was already closed at the broker (its stop or take profit)"


async def execute(ctx: CycleContext) -> CycleContext:
    """Send every approved order not carried out yet (or fill it on the shadow book); outcomes the broker refused
    become REJECTED, exits whose position was already closed HOLD."""
    executor = Executor(ctx.uow, ctx.deps.broker, as_of=ctx.as_of, cycle_id=ctx.cycle_id, scope=ctx.scope,
                        fees=ctx.deps.risk.fees, snap=ctx.snap, state=ctx.state,
                        book=ctx.book or Portfolio(Decimal(0)))
    outcomes = list(ctx.outcomes[: ctx.executed])
    for o in ctx.outcomes[ctx.executed :]:
        outcomes.append(await executor.send(o, shadow=ctx.shadow))
    await ctx.uow.events.add(executor.events)
    return replace(ctx, outcomes=tuple(outcomes), executed=len(outcomes), state=executor.state,
                   book=executor.book if ctx.book is not None else None,
                   submitted=ctx.submitted + tuple(executor.submitted),
                   rejected=ctx.rejected + tuple(executor.rejected),
                   shadow_fills=ctx.shadow_fills + tuple(executor.shadow_fills),
                   shadow_returns=ctx.shadow_returns + tuple(executor.shadow_returns))


class Executor:
    """Sends one cycle's approved orders and keeps what it did."""

    def __init__(self, uow: UnitOfWork, broker: Broker, *, as_of: datetime, cycle_id: str, scope: str,
                 fees: FeeSettings, snap: Snapshot, state: TradingState, book: Portfolio) -> None:
        self.uow, self.broker, self.as_of, self.cycle_id, self.scope = uow, broker, as_of, cycle_id, scope
        self.fees, self.snap, self.state, self.book = fees, snap, state, book
        self.submitted: list[Order] = []
        self.rejected: list[str] = []
        self.shadow_fills: list[Fill] = []
        self.shadow_returns: list[float] = []
        self.events: list[Event] = []
        self._open: list[Order] | None = None

    async def send(self, o: ProposalOutcome, *, shadow: bool) -> ProposalOutcome:
        """Carry out one outcome; returns it with its new verdict when execution changed it."""
        changed = await self._carry_out(o, shadow=shadow)
        return o if changed is None else o.decided(*changed)

    async def _carry_out(self, o: ProposalOutcome, *, shadow: bool) -> tuple[Verdict, str] | None:
        if o.final is Verdict.SHADOW_EXIT:
            await self._shadow_exit(o)
            return None
        if o.limit is None or o.limit.order is None:
            return None
        req = o.limit.order
        if req.side is Side.SELL and req.symbol in self.snap.positions:
            return await self._exit(req)
        if shadow:
            await self._shadow_entry(req)
            return None
        return await self._entry(o, req)

    async def _open_orders(self) -> list[Order]:
        if self._open is None:
            self._open = await self.broker.open_orders()
        return self._open

    async def _exit(self, req: OrderRequest) -> tuple[Verdict, str] | None:
        for leg in sell_orders(await self._open_orders(), req.symbol):
            if leg.client_order_id == req.client_order_id:
                continue  # this exit is in flight already (a retried cycle): submitting it again returns it
            try:
                await self.broker.cancel(leg.broker_order_id)
            except (OrderRejectedError, NotFoundError) as exc:
                log.info("exit_cancel_not_needed", symbol=req.symbol, order=leg.broker_order_id, error=str(exc))
        self._open = None
        held = {p.symbol: p for p in await self.broker.positions()}.get(req.symbol)
        if held is None or held.qty <= 0:
            self.events.append(exit_not_sent(at=self.as_of, scope=self.scope, cycle_id=self.cycle_id,
                                             symbol=req.symbol))
            return Verdict.HOLD, ALREADY_CLOSED
        req = replace(req, qty=held.qty, fractional=held.qty != held.qty.to_integral_value())
        sent = await self._submit(req)
        if isinstance(sent, Exception):
            return Verdict.REJECTED, f"broker: {sent}"
        trade = self.state.open_trades.get(req.symbol)
        if trade is not None:
            self.state = self.state.with_trade(replace(trade, leg_ids=()))
        return None

    async def _entry(self, o: ProposalOutcome, req: OrderRequest) -> tuple[Verdict, str] | None:
        sent = await self._submit(req)
        if isinstance(sent, Exception):
            return Verdict.REJECTED, f"broker: {sent}"
        self.state = self.state.with_pending(PendingEntry(
            client_order_id=req.client_order_id, symbol=req.symbol, qty=req.qty, stop_price=req.stop_price,
            take_profit_price=req.take_profit_price, fractional=req.fractional, submitted_at=self.as_of,
            cycle_id=self.cycle_id, broker_order_id=sent.broker_order_id, setup=o.setup,
            reasoning=o.signal.reasoning))
        return None

    async def _submit(self, req: OrderRequest) -> Order | Exception:
        """The accepted order, or the broker's refusal (recorded as a rejected order)."""
        try:
            order = await self.broker.submit(req)
        except REFUSALS as exc:
            self.rejected.append(req.client_order_id)
            self.events.append(order_rejected(at=self.as_of, scope=self.scope, cycle_id=self.cycle_id, request=req,
                                              error=exc))
            await self.uow.orders.upsert(OrderRecord(Order(req, "", OrderStatus.REJECTED, self.as_of), self.scope,
                                                     self.cycle_id))
            return exc
        self.submitted.append(order)
        await self.uow.orders.upsert(OrderRecord(order, self.scope, self.cycle_id))
        self.events.append(order_submitted(at=self.as_of, scope=self.scope, cycle_id=self.cycle_id, request=req,
                                           broker_order_id=order.broker_order_id))
        return order

    async def _shadow_entry(self, req: OrderRequest) -> None:
        ref = self.snap.prices[req.symbol]
        self.book, fill = simulate_fill(self.book, symbol=req.symbol, side=req.side, qty=req.qty, reference=ref,
                                        fees=self.fees, at=self.as_of, client_order_id=req.client_order_id,
                                        reason="shadow: " + req.reason, stop_price=req.stop_price,
                                        fractional=req.fractional, take_profit_price=req.take_profit_price)
        await self._record_shadow(fill)

    async def _shadow_exit(self, o: ProposalOutcome) -> None:
        held = self.book.positions.get(o.symbol)
        if held is None:
            return
        self.book, fill = simulate_fill(self.book, symbol=o.symbol, side=Side.SELL, qty=held.qty,
                                        reference=self.snap.prices.get(o.symbol, held.avg_entry_price),
                                        fees=self.fees, at=self.as_of,
                                        client_order_id=f"shadow-{self.cycle_id}-{o.symbol}",
                                        reason="shadow exit: " + o.signal.reasoning)
        self.shadow_returns.append(closed_return(held.avg_entry_price, fill))
        await self._record_shadow(fill)

    async def _record_shadow(self, fill: Fill) -> None:
        self.shadow_fills.append(fill)
        await self.uow.fills.add([FillRecord(fill, self.scope, self.cycle_id, shadow=True)])
        self.events.append(shadow_fill(at=self.as_of, scope=self.scope, cycle_id=self.cycle_id, fill=fill))
