"""Stage 2, the snapshot: what is true at `as_of`.

Reconcile with the broker first (the broker is the truth: fills since the cursor are booked, unknown orders
recorded, differences logged), then read the broker and the market once for the whole cycle, then make sure
every position is protected by a stop (placing a missing broker stop at once; a position already through its
stop is stopped out by the decide stage). While trading is paused no watchlist symbol is read.
"""

from __future__ import annotations

from dataclasses import replace

from application.cycle.context import CycleContext, day_start
from application.cycle.market_snapshot import take_snapshot
from application.cycle.protection import protect
from application.cycle.reconcile import merged_positions, reconcile
from application.cycle.transfers import book_transfers, day_start_with_transfers
from domain.models.trading import Portfolio
from domain.stage_events import market_conditions_seen
from domain.trading_state import TradingState


async def snapshot(ctx: CycleContext) -> CycleContext:
    """Reconciliation, the snapshot, protection; the shadow book opened if the breaker just tripped."""
    d, uow = ctx.deps, ctx.uow
    rec = await reconcile(uow, d.broker, ctx.state, scope=ctx.scope, as_of=ctx.as_of, cycle_id=ctx.cycle_id,
                          equity=ctx.opening_equity, large_change_pct=d.settings.large_position_change_pct,
                          cooldown=d.cooldown)
    ctx = replace(ctx, reconciliation=rec, state=rec.state, closed=ctx.closed + rec.booking.closed)
    ctx = ctx.logged(*rec.events(as_of=ctx.as_of, cycle_id=ctx.cycle_id, scope=ctx.scope))
    transfers = await book_transfers(uow, d.broker, scope=ctx.scope, as_of=ctx.as_of, cycle_id=ctx.cycle_id)
    ctx = ctx.logged(*transfers.events)

    universe = () if ctx.paused else ((ctx.symbol,) if ctx.symbol else tuple(await d.universe(uow, ctx.as_of)))
    snap = await take_snapshot(as_of=ctx.as_of, universe=universe, broker=d.broker, market=d.market,
                               assets=d.assets, conditions=d.conditions, lookback=d.settings.lookback_days,
                               state=ctx.state, held_extra=dict(ctx.book.positions) if ctx.book else {})

    prot = await protect(uow, d.broker, ctx.state, positions=list(snap.positions.values()),
                         open_orders=snap.open_orders, prices=snap.prices, as_of=ctx.as_of, cycle_id=ctx.cycle_id,
                         scope=ctx.scope, risk=d.risk)
    ctx = ctx.logged(*prot.events)
    snap = replace(snap, positions={p.symbol: p for p in merged_positions(list(snap.positions.values()), prot.state)})

    book = ctx.book
    if ctx.shadow and book is None:
        book = Portfolio(cash=ctx.breaker_state.equity_at_trip or snap.account.equity)
    if snap.market is not None:
        ctx = ctx.logged(market_conditions_seen(at=ctx.as_of, scope=ctx.scope, cycle_id=ctx.cycle_id,
                                                conditions=snap.market))
    start = day_start_with_transfers(day_start(prot.state, ctx.as_of, snap.account, d.calendar.tz),
                                     stored=_stored_today(prot.state, ctx), booking=transfers, as_of=ctx.as_of,
                                     calendar=d.calendar)
    return replace(ctx, universe=universe, snapshot=snap, state=prot.state, stop_now=tuple(prot.stop_now), book=book,
                   start=start, transfers=transfers)


def _stored_today(state: TradingState, ctx: CycleContext) -> bool:
    return state.day_start is not None and state.day_start.day == ctx.as_of.astimezone(ctx.deps.calendar.tz).date()
