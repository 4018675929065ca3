"""Stage 5, book-keeping: what the cycle did, recorded in its transaction.

Fills that arrived during the cycle are booked, every position is protected again (an exit the broker refused
after its legs were cancelled gets its stop back), the breaker counts the closed trades and sees the equity
against the day's start and the cycle's outcome, the shadow book's day is recorded while the breaker is
tripped, and the trading state, the breaker, the event log (every decision), the equity point and the cycle
record are written.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from application.cycle.breaker_book import book_breaker, save_breaker, save_shadow_book, trip_events
from application.cycle.context import CycleContext, CycleResult
from application.cycle.fills import book_fills
from application.cycle.protection import protect
from application.cycle.reconcile import store_positions
from domain import breaker as brk
from domain.event_factories import decision_made, limits_applied, proposal_rejected
from domain.events import Event
from domain.models.trading import Portfolio
from domain.money import ZERO
from domain.ports.repositories import CycleRecord, EquityPoint
from domain.verdict import Verdict


async def book_keeping(ctx: CycleContext) -> CycleContext:
    """Fills, protection, breaker, shadow record; then state, breaker, events, equity and the cycle record."""
    d, uow, snap = ctx.deps, ctx.uow, ctx.snap
    account = await d.broker.account()
    after = await book_fills(uow, d.broker, ctx.state, as_of=ctx.as_of, cycle_id=ctx.cycle_id, scope=ctx.scope,
                             equity=account.equity, large_change_pct=d.settings.large_position_change_pct,
                             cooldown=d.cooldown)
    ctx = replace(ctx, closed=ctx.closed + after.closed).logged(*after.events)

    positions = await d.broker.positions()
    prot = await protect(uow, d.broker, after.state, positions=positions, open_orders=await d.broker.open_orders(),
                         prices=snap.prices, as_of=ctx.as_of, cycle_id=ctx.cycle_id, scope=ctx.scope, risk=d.risk)
    ctx = replace(ctx, state=prot.state).logged(*prot.events)
    await store_positions(uow, ctx.scope, positions, ctx.state)

    account = await d.broker.account()
    breaker, trips = book_breaker(ctx.breaker_state, ctx.closed, equity=account.equity,
                                  day_start_equity=ctx.day.equity, as_of=ctx.as_of, settings=d.risk.breaker,
                                  error=False, flow=ctx.transfers.flow if ctx.transfers else ZERO)
    ctx = replace(ctx, breaker=breaker, closed=()).logged(*trip_events(trips, ctx.cycle_id, ctx.scope))
    if brk.in_shadow_mode(breaker):
        book = ctx.book if ctx.book is not None else Portfolio(cash=breaker.equity_at_trip or account.equity)
        prices = {s: snap.prices.get(s, p.avg_entry_price) for s, p in book.positions.items()}
        breaker = brk.record_shadow(breaker, day=ctx.as_of.astimezone(d.calendar.tz).date(),
                                    shadow_equity=book.equity(prices), closed_trade_returns=list(ctx.shadow_returns))
        ctx = replace(ctx, breaker=breaker, book=book)
        await save_shadow_book(uow, ctx.scope, book, at=ctx.as_of)

    await uow.trading.save(ctx.scope, replace(ctx.state, day_start=ctx.day), at=ctx.as_of)
    await save_breaker(uow, ctx.scope, breaker, at=ctx.as_of)
    ctx = ctx.logged(*decision_events(ctx))
    await uow.events.add(list(ctx.events))
    net_deposits = ctx.transfers.book.net_deposits if ctx.transfers else ZERO
    await uow.equity.add(ctx.scope, EquityPoint(ctx.as_of, account.equity, account.cash, snap.gross_exposure,
                                                net_deposits))
    summary = {"orders": len(ctx.submitted), "rejected": len(ctx.rejected), "shadow": ctx.shadow,
               "shadow_fills": len(ctx.shadow_fills), "fills": len(ctx.reconciled.booking.fills) + len(after.fills),
               "equity": str(account.equity), "considered": len(ctx.outcomes), "breaker": breaker.status.value,
               "mode": "protective" if ctx.paused else "trading"}
    await uow.cycles.upsert(CycleRecord(ctx.cycle_id, ctx.scope, ctx.kind, ctx.as_of, "completed", ctx.symbol,
                                        summary))
    return replace(ctx, result=CycleResult(ctx.cycle_id, ctx.as_of, "completed", list(ctx.outcomes),
                                           len(ctx.submitted), ctx.shadow, equity=account.equity))


def decision_events(ctx: CycleContext) -> list[Event]:
    """Per outcome: the hard limits' adjustments (if any), then the rejection or the decision, with the whole
    decision as payload."""
    out = []
    at, scope, cid = ctx.as_of, ctx.scope, ctx.cycle_id
    for o in ctx.outcomes:
        payload: dict[str, Any] = o.to_json()
        if o.limit is not None and o.limit.adjustments:
            out.append(limits_applied(at=at, scope=scope, cycle_id=cid, symbol=o.symbol,
                                      adjustments=o.limit.adjustments))
        if o.final is Verdict.REJECTED:
            limit = o.limit.rejected_by if o.limit and o.limit.rejected_by else None
            out.append(proposal_rejected(at=at, scope=scope, cycle_id=cid, symbol=o.symbol, action=o.signal.action,
                                         reason=o.reason, decision=payload, limit=limit))
        else:
            out.append(decision_made(at=at, scope=scope, cycle_id=cid, symbol=o.symbol,
                                     verdict=o.final or Verdict.HOLD, reasoning=o.signal.reasoning, decision=payload))
    return out
