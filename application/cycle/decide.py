"""Stage 4, decide: one outcome per symbol considered, exits first, each with its verdict and the reason.

1. Rule exits: Quorum-kept stops and take-profits that were reached, positions already through their stop,
   shadow-book stops. They need no agent and were sent before any agent is asked (`send_exits`, the context's
   first outcomes); while trading is paused nothing else is decided.
2. Cheap filter: held symbols plus liquid, priced, trending watchlist symbols (LLM spend is a trading cost).
3. Recall: the most similar past market conditions, and the similar past trades of each entry candidate.
4. Signal agent: a SELL of a held position is an exit, a BUY of a symbol not held an entry candidate, anything
   else a HOLD (or, for a shadow-book position, a shadow exit).
   Before it is asked, the money of every agent stage is held for the symbols asked; the daily LLM cap's
   leftovers are not asked at all ("skipped: daily LLM cap", `application.cycle.stage_budget`).
5. Risk agent (sizing), rule validator and validator agent on the entry candidates, best first.
6. Hard limits on every outcome not decided yet, in order (`hard_limits.apply_limits`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from application.cycle.context import CycleContext
from application.cycle.decision import DecisionInputs, ProposalOutcome
from application.cycle.hard_limits import apply_limits
from application.cycle.ids import client_order_id_for
from application.cycle.market_snapshot import Snapshot
from application.cycle.reuse import ReusePlan, finish_reuse, plan_reuse
from application.cycle.stage_budget import ask_signals
from domain.agents.schemas import (
    MarketConditions,
    MemoryEvidence,
    RiskAssessment,
    RiskCandidate,
    SymbolFeatures,
    ValidatorCandidate,
    ValidatorVerdict,
)
from domain.decision_reuse import sizing_key
from domain.event_factories import cycle_paused
from domain.evidence import LEGACY, EvidencePolicy
from domain.features import setup_text
from domain.memory import MemoryFilters
from domain.ports.embedder import Embedder
from domain.ports.uow import UnitOfWork
from domain.risk.config import RiskSettings
from domain.stage_events import llm_call, recalled, risk_sized, validated
from domain.validator import ValidationResult, validate_proposal
from domain.verdict import Verdict

__all__ = ["decide", "prefilter", "recall_trades", "trending"]


async def decide(ctx: CycleContext) -> CycleContext:
    """After the rule exits sent (`send_exits`), (unless paused) the agents' proposals about the other symbols and
    the hard limits over them, appended to the exits."""
    inputs, exits = ctx.decision_inputs, ctx.outcomes
    outcomes: list[ProposalOutcome] = []
    if ctx.paused:
        ctx = ctx.logged(cycle_paused(at=ctx.as_of, scope=ctx.scope, cycle_id=ctx.cycle_id, by=ctx.state.control.by,
                                      reason=ctx.state.control.reason, symbol=ctx.symbol))
    else:
        try:
            ctx, proposals = await _proposals(ctx, inputs, decided={o.symbol for o in exits})
        finally:
            ctx.deps.gateway.release_hold(ctx.cycle_id)
        outcomes += proposals
        ctx = ctx.logged(*(llm_call(record=r) for r in ctx.deps.gateway.calls(ctx.cycle_id)))
    cycle_id = ctx.cycle_id
    limited = apply_limits(outcomes, ctx.snap, inputs, ctx.deps.risk,
                           client_order_id=lambda symbol, action: client_order_id_for(cycle_id, symbol, action))
    return replace(ctx, outcomes=exits + tuple(limited))


async def _proposals(ctx: CycleContext, d: DecisionInputs, *,
                     decided: set[str]) -> tuple[CycleContext, list[ProposalOutcome]]:
    """Recall, the signal agent, then risk and validation of the entry candidates: non-entries first (in symbol
    order), then the entries, best first. Symbols in `decided` already have a rule exit. Only what changed is
    asked: an earlier decision of the session whose inputs are unchanged is reused (`application.cycle.reuse`)."""
    deps, snap = ctx.deps, ctx.snap
    market, similar = snap.market, None
    if market is not None:
        similar = await deps.conditions.recall(ctx.uow, market, as_of=ctx.as_of, k=deps.settings.conditions_k,
                                               policy=deps.settings.evidence)
        market = market.model_copy(update={"similar_conditions": similar})
    candidates = [f for f in prefilter(snap, list(ctx.universe), deps.risk, deps.settings.max_candidates)
                  if f.symbol not in decided]
    to_enter = [f for f in candidates if f.symbol not in snap.positions]
    memory = (await recall_trades(ctx.uow, deps.embedder, to_enter, scope=ctx.scope, as_of=ctx.as_of,
                                  k=deps.settings.recall_k, policy=deps.settings.evidence)
              if deps.settings.memory_recall else {})
    if market is not None or to_enter:
        ctx = ctx.logged(recalled(at=ctx.as_of, scope=ctx.scope, cycle_id=ctx.cycle_id,
                                  conditions=None if similar is None else len(similar),
                                  trades={s: len(m) for s, m in memory.items()}))
    candidates = [f.model_copy(update={"similar_trades": memory.get(f.symbol, ())}) for f in candidates]
    considered = (set(ctx.universe) | set(snap.positions)) - decided
    plan = await plan_reuse(ctx, d, candidates, market, skipped=considered - {f.symbol for f in candidates})
    if market is None or not candidates:
        return await finish_reuse(ctx, plan, []), []
    ask = plan.to_ask(candidates)
    signals = plan.reused_signals()
    if ask:
        ctx, asked = await ask_signals(ctx, ask, market, plan.asked)
        signals.update(asked)
    by_symbol = {f.symbol: f for f in candidates}
    others, entries = [], []
    for sym in sorted(signals):
        sig, f = signals[sym], by_symbol[sym]
        o = ProposalOutcome(sym, sig, setup=setup_text(f), evidence=f.similar_trades)
        held = sym in snap.positions
        if sig.action == "SELL" and held:
            others.append(o)
        elif sig.action == "BUY" and not held and sym not in d.shadow_positions:
            entries.append(o)
        elif sig.action == "SELL" and sym in d.shadow_positions:
            others.append(o.decided(Verdict.SHADOW_EXIT, "exit of a shadow-book position (no order sent)"))
        else:
            others.append(o.decided(Verdict.HOLD, "signal HOLD" if sig.action == "HOLD"
                                    else f"{sig.action} not applicable"))
    if entries:
        ctx, entries = await _judge_entries(ctx, entries, by_symbol, market, plan)
    entries.sort(key=lambda o: (-(o.validation.confidence if o.validation else 0.0), o.symbol))
    return await finish_reuse(ctx, plan, others + entries), others + entries


async def _judge_entries(ctx: CycleContext, entries: list[ProposalOutcome], features: dict[str, SymbolFeatures],
                         market: MarketConditions, plan: ReusePlan) -> tuple[CycleContext, list[ProposalOutcome]]:
    """The risk agent's sizing, the rule validator's and the validator agent's judgement of each entry (the
    agents' reused when the entry's signal is reused and the account they saw is unchanged)."""
    deps, snap, risk = ctx.deps, ctx.snap, ctx.deps.risk
    equity, cash = float(snap.account.equity), float(snap.account.cash)
    gross = float(snap.gross_exposure) / equity if equity > 0 else 0.0
    kept: dict[str, tuple[RiskAssessment, ValidatorVerdict]] = {}
    for o in entries:
        found = plan.kept_sizing(o.symbol, sizing_key(
            plan.keys[o.symbol], equity=equity, cash=cash, gross_pct=gross,
            max_position_pct=risk.max_position_pct, default_stop_pct=risk.default_stop_pct))
        if found is not None:
            kept[o.symbol] = found
    fresh = [o for o in entries if o.symbol not in kept]
    sizes = {s: a for s, (a, _) in kept.items()}
    if fresh:
        sizes.update(await deps.agents.risk(
            [RiskCandidate(symbol=o.symbol, action=o.signal.action, confidence=o.signal.confidence,
                           price=features[o.symbol].price, volatility_20d=features[o.symbol].volatility_20d,
                           atr_pct=features[o.symbol].atr_pct, held_qty=0.0) for o in fresh],
            equity=equity, cash=cash, gross_pct=gross, max_position_pct=risk.max_position_pct,
            default_stop_pct=risk.default_stop_pct, as_of=ctx.as_of, cycle_id=ctx.cycle_id))
    sized: list[tuple[ProposalOutcome, ValidationResult]] = []
    asked: list[ValidatorCandidate] = []
    for o in entries:
        validation = validate_proposal(o.signal, features[o.symbol], o.evidence, risk.validator)
        o = replace(o, assessment=sizes.get(o.symbol), validation=validation)
        sized.append((o, validation))
        if o.assessment is not None and o.symbol not in kept:
            asked.append(ValidatorCandidate(
                symbol=o.symbol, action=o.signal.action, confidence=validation.confidence,
                position_pct=o.assessment.position_pct, stop_loss_pct=o.assessment.stop_loss_pct,
                reasoning=o.signal.reasoning, similar_trades=o.evidence, rule_warnings=validation.warnings))
    verdicts = {s: v for s, (_, v) in kept.items()}
    if asked:
        verdicts.update(await deps.agents.validate(asked, market, as_of=ctx.as_of, cycle_id=ctx.cycle_id))
    judged = []
    for o, validation in sized:
        o = replace(o, verdict=verdicts.get(o.symbol))
        judged.append(o)
        ctx = ctx.logged(
            risk_sized(at=ctx.as_of, scope=ctx.scope, cycle_id=ctx.cycle_id, symbol=o.symbol, assessment=o.assessment),
            validated(at=ctx.as_of, scope=ctx.scope, cycle_id=ctx.cycle_id, symbol=o.symbol, rules=validation,
                      agent=o.verdict))
    return ctx, judged


def trending(f: SymbolFeatures) -> bool:
    """The cheap screen an entry must pass before any recall or LLM call: above its 50-day average
    with a positive 20-day return (the system only buys strength; see the offline policy)."""
    return f.price > f.sma_50 and f.return_20d > 0


def prefilter(snap: Snapshot, universe: list[str], risk: RiskSettings, max_candidates: int) -> list[SymbolFeatures]:
    """Cheap deterministic filter before any LLM call: held symbols plus liquid, priced, trending watchlist
    symbols (LLM spend is a trading cost: only candidates that could become entries are sent)."""
    held = [snap.features[s] for s in sorted(snap.positions) if s in snap.features]
    fresh = [snap.features[s] for s in universe if s in snap.features and s not in snap.positions
             and Decimal(str(snap.features[s].price)) >= risk.min_price
             and snap.adv.get(s, Decimal(0)) >= risk.min_avg_dollar_volume and trending(snap.features[s])]
    fresh.sort(key=lambda f: (-f.avg_dollar_volume_20d, f.symbol))
    return held + fresh[: max(0, max_candidates - len(held))]


async def recall_trades(uow: UnitOfWork, embedder: Embedder, features: list[SymbolFeatures], *, scope: str,
                        as_of: datetime, k: int,
                        policy: EvidencePolicy = LEGACY) -> dict[str, tuple[MemoryEvidence, ...]]:
    """Similar past trades per symbol, at most `k` chosen by `policy` (by default the nearest `k`, as recalled):
    one batched embedding, one query for all the symbols."""
    if not features:
        return {}
    vectors = embedder.embed([setup_text(f) for f in features])
    found = await uow.trade_memory.similar_many([[float(x) for x in vec] for vec in vectors], k=policy.fetch(k),
                                                as_of=as_of, filters=MemoryFilters(action="BUY", scope=scope))
    return {f.symbol: policy.evidence(items, k) for f, items in zip(features, found, strict=True)}
