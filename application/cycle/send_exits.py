"""Stage 3, send_exits: the exits no agent has to agree to go out before any agent is asked (issue 15).

The rule exits (`exits.rule_exits`: Quorum-kept stops and take-profits that were reached, positions already
through their stop; `exits.shadow_stop_exits`: shadow-book stops) pass the hard limits and are carried out by the
execute stage's own code (`execute.execute`: the position's protective legs cancelled first, then the sell, with
the same deterministic client order ids; a broker refusal rejects that one order with its reason). Only then does
the decide stage ask the agents about the rest, and the execute stage sends only what decide added. The decision
inputs are read here, before the exits, and decide works with the same ones (`CycleContext.decision_inputs`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from application.cycle.context import CycleContext
from application.cycle.decision import DecisionInputs
from application.cycle.execute import execute
from application.cycle.exits import rule_exits, shadow_stop_exits
from application.cycle.hard_limits import apply_limits
from application.cycle.ids import client_order_id_for
from domain import breaker as brk
from domain.ports.repositories import FillRecord
from domain.risk.pdt import count_day_trades

__all__ = ["decision_inputs", "send_exits"]


async def send_exits(ctx: CycleContext) -> CycleContext:
    """The rule exits decided, limited and sent (they run while trading is paused too); the context keeps them
    as its first outcomes, already executed, and the decision inputs for the decide stage."""
    inputs = await decision_inputs(ctx)
    exits = rule_exits(ctx.snap, inputs) + shadow_stop_exits(ctx.snap, ctx.book)
    cycle_id = ctx.cycle_id
    limited = apply_limits(exits, ctx.snap, inputs, ctx.deps.risk,
                           client_order_id=lambda symbol, action: client_order_id_for(cycle_id, symbol, action))
    return await execute(replace(ctx, inputs=inputs, outcomes=tuple(limited), executed=0))


async def decision_inputs(ctx: CycleContext) -> DecisionInputs:
    """Day trades used in the last 5 sessions, whether entries are allowed (not paused; a tripped breaker's
    entries go to the shadow book), the market's hours."""
    d, as_of, breaker = ctx.deps, ctx.as_of, ctx.breaker_state
    sessions = d.calendar.sessions(as_of.date() - timedelta(days=10), as_of.date())[-5:]
    recent = await ctx.uow.fills.list(ctx.scope, since=as_of - timedelta(days=10))
    day_trades = count_day_trades([r.fill for r in recent], sessions=sessions, tz=d.calendar.tz)
    paused, book = ctx.paused, ctx.book
    allowed = False if paused else (True if book is not None else brk.allows_entries(breaker))
    reason = f"trading paused by {ctx.state.control.by}" if paused else (breaker.trip_reason or "")
    return DecisionInputs(as_of, ctx.cycle_id, ctx.scope, d.calendar.is_open(as_of), ctx.day.equity, day_trades,
                          entries_allowed=allowed, tz=d.calendar.tz, entry_block_reason=reason,
                          shadow_positions=dict(book.positions) if book else {}, state=ctx.state,
                          stop_now=ctx.stop_now, agents_enabled=not paused, shadow_book=book,
                          last_fills=_last_fills(recent))


def _last_fills(recent: list[FillRecord]) -> dict[str, str]:
    """symbol -> its last fill (time, order, side, quantity): a fill changes what a decision is made on."""
    return {r.fill.symbol: f"{r.fill.at.isoformat()} {r.fill.client_order_id} {r.fill.side.value} {r.fill.qty}"
            for r in sorted(recent, key=lambda r: r.fill.at)}
