"""A cap that never strands a signal (issue 15): before the signal agent is asked, the cycle holds what the signal,
risk and validator calls may cost for the symbols it asks about, so the later stages always have their money.

Symbols are taken in the order the decide stage asks them (held positions first, then the entry candidates by
liquidity); a held symbol needs only its signal call, one that may become an entry needs the risk and validator
calls too. The calls' estimates are the gateway's (each prompt's tokens at the input price, its completion limit
at the output price), made on the prompts the stages would send: the signal prompts themselves, and risk and
validator prompts for every symbol that may become an entry, with a signal reasoning as long as the signal
agent's completion limit allows. The cap covers the first N symbols; the rest are not asked at all: held ones
get the free exit rules' SELLs, the others a HOLD "skipped: daily LLM cap", and an LLM_CAP_SKIPPED event says
which. With free models (the offline policy, replays) nothing is held and every symbol is asked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog

from application.agents import SKIPPED_BY_CAP, Agents, Sizing, chunks
from application.cycle.context import CycleContext
from application.llm_gateway import LLMGateway
from domain.agents.schemas import MarketConditions, RiskCandidate, SignalProposal, SymbolFeatures, ValidatorCandidate
from domain.event_factories import llm_cap_skipped
from domain.ports.llm import LLMRequest

log = structlog.get_logger(__name__)
STAGES = ("signal", "risk", "validator")
REASONING_TOKENS = 120
"""The signal reasoning a validator prompt is estimated with when calls have no per-symbol completion limit."""
RULE_WARNINGS = ("similar past trades mostly lost", "volatility above the usual range")
"""Rule validator warnings a validator prompt is estimated with."""


def sizing_of(ctx: CycleContext) -> Sizing:
    """What the risk agent sizes against in this cycle (the account in the snapshot, the risk settings)."""
    snap, risk = ctx.snap, ctx.deps.risk
    equity, cash = float(snap.account.equity), float(snap.account.cash)
    gross = float(snap.gross_exposure) / equity if equity > 0 else 0.0
    return Sizing(equity, cash, gross, risk.max_position_pct, risk.default_stop_pct)


async def ask_signals(ctx: CycleContext, ask: list[SymbolFeatures], market: MarketConditions,
                      asked: dict[str, str]) -> tuple[CycleContext, dict[str, SignalProposal]]:
    """The signal agent's proposals about `ask`: about the symbols the daily cap can carry through every stage
    (their money held, see `hold_stages`); the others' are the stand-ins for skipped symbols."""
    ctx, kept, proposals = await hold_stages(ctx, ask, market, asked)
    if kept:
        proposals.update(await ctx.deps.agents.signals(kept, market, as_of=ctx.as_of, cycle_id=ctx.cycle_id))
    return ctx, proposals


async def hold_stages(ctx: CycleContext, ask: list[SymbolFeatures], market: MarketConditions,
                      asked: dict[str, str]) -> tuple[CycleContext, list[SymbolFeatures], dict[str, SignalProposal]]:
    """Hold the money of every stage for as many of `ask` as the daily cap covers.

    Args:
        ctx: the cycle.
        ask: the symbols the signal agent would be asked about, in order.
        market: the market conditions of the prompts.
        asked: the cycle's symbols-asked record (symbols skipped by the cap are taken out of it).

    Returns:
        The cycle (with the skip logged), the symbols to ask, and the proposals of the skipped ones.
    """
    deps = ctx.deps
    agents, gateway = deps.agents, deps.gateway
    if not ask or all(gateway.is_free(agent) for agent in STAGES):
        return ctx, ask, {}
    may_enter = {f.symbol for f in ask if f.symbol not in ctx.snap.positions}
    cost = stage_cost(agents, gateway, ask, market, sizing_of(ctx), may_enter, ctx)
    if await gateway.hold(ctx.cycle_id, [cost(len(ask))]):
        return ctx, ask, {}
    totals = [cost(n) for n in range(1, len(ask) + 1)]
    covered = await gateway.hold(ctx.cycle_id, totals)
    if covered == len(ask):
        return ctx, ask, {}
    kept, skipped = ask[:covered], ask[covered:]
    names = [f.symbol for f in skipped]
    for sym in names:
        asked.pop(sym, None)
    ledger = gateway.spend
    held = totals[covered - 1] if covered else 0.0
    log.warning("llm_cap_skipped", reason=SKIPPED_BY_CAP, symbols=names, needed=totals[-1], held=held,
                spent=ledger.spent, cap=ledger.cap_usd)
    gateway.alert_budget(ctx.as_of, ctx.cycle_id)
    ctx = ctx.logged(llm_cap_skipped(at=ctx.as_of, scope=ctx.scope, cycle_id=ctx.cycle_id, symbols=names,
                                     asked=[f.symbol for f in kept], needed_usd=totals[-1], held_usd=held,
                                     cap_usd=ledger.cap_usd, spent_usd=ledger.spent))
    proposals = await agents.skipped_by_cap(skipped, market, as_of=ctx.as_of, cycle_id=ctx.cycle_id)
    return ctx, kept, proposals


def stage_cost(agents: Agents, gateway: LLMGateway, ask: Sequence[SymbolFeatures], market: MarketConditions,
               sizing: Sizing, may_enter: set[str], ctx: CycleContext) -> Callable[[int], float]:
    """`cost(n)`: what the signal, risk and validator calls about the first n symbols of `ask` may cost (each
    call's estimate made once)."""
    as_of, cycle_id = ctx.as_of, ctx.cycle_id
    estimates: dict[tuple[str, tuple[str, ...]], float] = {}
    reasoning = " ".join(["reason"] * (agents.output_tokens_per_item or REASONING_TOKENS))

    def stage(agent: str, items: Sequence[Any], request: Callable[[Sequence[Any]], LLMRequest[Any]]) -> float:
        total = 0.0
        for part in chunks(items, agents.chunk_size):
            key = (agent, tuple(item.symbol for item in part))
            if key not in estimates:
                estimates[key] = gateway.estimate_usd(request(part))
            total += estimates[key]
        return total

    def cost(n: int) -> float:
        prefix = list(ask[:n])
        entries = [f for f in prefix if f.symbol in may_enter]
        total = stage("signal", prefix, lambda part: agents.signal_request(part, market, as_of, cycle_id))
        if entries:
            total += stage("risk", [risk_candidate(f) for f in entries],
                           lambda part: agents.risk_request(part, sizing, as_of, cycle_id))
            total += stage("validator", [validator_candidate(f, sizing, reasoning) for f in entries],
                           lambda part: agents.validator_request(part, market, as_of, cycle_id))
        return total

    return cost


def risk_candidate(f: SymbolFeatures) -> RiskCandidate:
    """The risk agent's candidate for `f` as an entry (what the stage sends for a BUY)."""
    return RiskCandidate(symbol=f.symbol, action="BUY", confidence=1.0, price=f.price, volatility_20d=f.volatility_20d,
                         atr_pct=f.atr_pct, held_qty=0.0)


def validator_candidate(f: SymbolFeatures, sizing: Sizing, reasoning: str) -> ValidatorCandidate:
    """The validator's candidate for `f` as an entry, with a signal reasoning of `reasoning`'s length."""
    return ValidatorCandidate(symbol=f.symbol, action="BUY", confidence=1.0, position_pct=sizing.max_position_pct,
                              stop_loss_pct=sizing.default_stop_pct, reasoning=reasoning,
                              similar_trades=f.similar_trades, rule_warnings=RULE_WARNINGS)
