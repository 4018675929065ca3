"""Stage 1, the gate: may this cycle trade, and how?

It takes the scope's trading lock (a cycle that cannot is recorded as skipped and ends here), loads the trading
state, today's LLM spend and the circuit breaker, lets a tripped breaker become eligible to resume (a person
still approves), and chooses the mode: trading, or shadow (the breaker is tripped: entries go to the shadow
book). Whether trading is paused is in the state (`CycleContext.paused`).
"""

from __future__ import annotations

from dataclasses import replace

from application.cycle.breaker_book import load_breaker, load_shadow_book
from application.cycle.context import CycleContext, CycleResult
from domain import breaker as brk
from domain.event_factories import breaker_eligible, cycle_skipped, cycle_started
from domain.ports.repositories import CycleRecord

LOCK_HELD = "another cycle holds the trading lock"


async def gate(ctx: CycleContext) -> CycleContext:
    """Lock, state, breaker and mode; a cycle that cannot take the lock ends here as skipped."""
    d, uow = ctx.deps, ctx.uow
    ctx = ctx.logged(cycle_started(at=ctx.as_of, scope=ctx.scope, cycle_id=ctx.cycle_id, kind=ctx.kind,
                                   symbol=ctx.symbol))
    if not await uow.lock_cycles(ctx.scope, wait_seconds=d.settings.lock_wait_seconds):
        return await _skipped(ctx, LOCK_HELD)
    state = await uow.trading.load(ctx.scope)
    await d.gateway.load_spend(uow, ctx.as_of)
    account = await d.broker.account()
    breaker = await load_breaker(uow, ctx.scope, account.equity)
    breaker, check = brk.check_auto_resume(breaker, as_of=ctx.as_of, settings=d.risk.breaker)
    if check.eligible and breaker.eligible_since == ctx.as_of:
        ctx = ctx.logged(breaker_eligible(at=ctx.as_of, scope=ctx.scope, cycle_id=ctx.cycle_id, check=check))
    shadow = brk.in_shadow_mode(breaker)
    book = await load_shadow_book(uow, ctx.scope) if shadow else None
    return replace(ctx, opening_equity=account.equity, state=state, breaker=breaker, shadow=shadow, book=book)


async def _skipped(ctx: CycleContext, reason: str) -> CycleContext:
    """Record the cycle as skipped (its events and its cycle record) and end it."""
    ctx = ctx.logged(cycle_skipped(at=ctx.as_of, scope=ctx.scope, cycle_id=ctx.cycle_id, kind=ctx.kind, reason=reason,
                                   symbol=ctx.symbol))
    await ctx.uow.events.add(list(ctx.events))
    await ctx.uow.cycles.upsert(CycleRecord(ctx.cycle_id, ctx.scope, ctx.kind, ctx.as_of, "skipped", ctx.symbol,
                                            {"reason": reason}))
    return replace(ctx, result=CycleResult(ctx.cycle_id, ctx.as_of, "skipped"))
