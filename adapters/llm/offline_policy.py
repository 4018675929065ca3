"""OfflinePolicyLLM: a deterministic rule policy behind the LLM port.

It reads the typed context of a request (never the rendered text), so the same
inputs always give the same decisions, costs nothing and needs no key. It is
the default whenever no LLM is configured.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

from domain.agents.schemas import (
    MarketConditions,
    MemoryEvidence,
    RiskAssessment,
    RiskBatch,
    RiskContext,
    SignalBatch,
    SignalContext,
    SignalProposal,
    SymbolFeatures,
    ValidatorBatch,
    ValidatorContext,
    ValidatorVerdict,
)
from domain.discovery.llm_schema import LLMPick, LLMPickerContext, LLMPickerOutput
from domain.errors import LLMError
from domain.ports.llm import LLM, Decision, LLMRequest, LLMUsage, OutputT

MODEL_NAME = "offline-policy-v1"


def loser_share(evidence: tuple[MemoryEvidence, ...], max_distance: float = 0.6) -> tuple[float | None, int]:
    """Share of losing trades among close evidence with a known outcome, and how many there were."""
    known = [e for e in evidence if e.outcome is not None and e.distance <= max_distance]
    if not known:
        return None, 0
    return sum(1 for e in known if e.outcome == "LOSS") / len(known), len(known)


def _market_ok(m: MarketConditions) -> tuple[bool, str]:
    if m.vix is not None and m.vix >= 30:
        return False, f"VIX {m.vix:.1f} is stressed"
    if m.spy_trend == "down":
        return False, "SPY is in a downtrend"
    return True, f"market {m.spy_trend}, VIX {m.vix if m.vix is not None else 'n/a'}"


def signal_for(f: SymbolFeatures, market: MarketConditions) -> SignalProposal:
    """Trend + momentum entry, trend-break or stop-style exit, memory-aware confidence."""
    uptrend = f.price > f.sma_50 and f.sma_20 > f.sma_50
    momentum = f.return_20d > 0.02 and f.return_60d > 0
    calm = f.volatility_20d < 0.6
    share, n = loser_share(f.similar_trades)
    if f.held_qty > 0:
        if f.price < f.sma_50 * 0.98 or f.return_20d < -0.08:
            return SignalProposal(symbol=f.symbol, action="SELL", confidence=0.8,
                                  reasoning=f"trend broke: price {f.price:.2f} vs 50d avg {f.sma_50:.2f}, "
                                            f"20d return {f.return_20d:+.1%}")
        if f.unrealized_return is not None and f.unrealized_return > 0.25:
            return SignalProposal(symbol=f.symbol, action="SELL", confidence=0.7,
                                  reasoning=f"take profit at {f.unrealized_return:+.1%}")
        return SignalProposal(symbol=f.symbol, action="HOLD", confidence=0.5, reasoning="position still trending")
    ok, why = _market_ok(market)
    if not (uptrend and momentum and calm and ok):
        missing = [name for name, cond in (("uptrend", uptrend), ("momentum", momentum), ("calm", calm),
                                            ("market", ok)) if not cond]
        return SignalProposal(symbol=f.symbol, action="HOLD", confidence=0.3,
                              reasoning=f"no entry: missing {', '.join(missing)}" + ("" if ok else f" ({why})"))
    confidence = 0.55 + min(0.25, f.return_20d * 2) + (0.05 if f.volume_ratio > 1.2 else 0.0)
    note = ""
    if share is not None and n >= 3:
        confidence *= 1 - 0.5 * share
        note = f"; memory: {share:.0%} of {n} similar trades lost"
    return SignalProposal(symbol=f.symbol, action="BUY", confidence=round(min(confidence, 0.95), 4),
                          reasoning=f"uptrend with momentum: 20d {f.return_20d:+.1%}, 60d {f.return_60d:+.1%}, "
                                    f"vol {f.volatility_20d:.0%}; {why}{note}")


def _signal(ctx: SignalContext) -> SignalBatch:
    return SignalBatch(proposals=[signal_for(f, ctx.market) for f in ctx.symbols])


def _risk(ctx: RiskContext) -> RiskBatch:
    out = []
    for c in ctx.candidates:
        vol = c.volatility_20d if math.isfinite(c.volatility_20d) and c.volatility_20d > 0 else 0.5
        target = min(ctx.max_position_pct, 0.10 / vol * c.confidence)
        stop = min(0.12, max(0.02, 2.5 * c.atr_pct)) if c.atr_pct > 0 else ctx.default_stop_pct
        out.append(RiskAssessment(symbol=c.symbol, position_pct=round(max(0.0, target), 6),
                                  stop_loss_pct=round(stop, 6), take_profit_pct=round(stop * 3, 6),
                                  reasoning=f"volatility-scaled size for {vol:.0%} vol; stop at 2.5x ATR"))
    return RiskBatch(assessments=out)


def _validator(ctx: ValidatorContext) -> ValidatorBatch:
    out = []
    for c in ctx.candidates:
        share, n = loser_share(c.similar_trades)
        warnings = list(c.rule_warnings)
        adj = 0.0
        approve = True
        if share is not None and n >= 3 and share >= 0.5:
            warnings.append(f"{share:.0%} of {n} similar past trades lost")
            adj = -round(0.3 * share, 4)
            approve = share < 0.75
        out.append(ValidatorVerdict(symbol=c.symbol, approve=approve, confidence_adjustment=adj,
                                    warnings=warnings, reasoning="memory and rules reviewed"))
    return ValidatorBatch(verdicts=out)


def _picker_rule(ctx: LLMPickerContext) -> LLMPickerOutput:
    """Discovery picks: trend + momentum over the deterministic prescore, lower for losing memory or a weak market."""
    ok, why = _market_ok(ctx.market) if ctx.market is not None else (True, "market unknown")
    picks = []
    for c in ctx.candidates:
        f = c.features
        uptrend = f.price > f.sma_50 and f.sma_20 > f.sma_50
        score = 0.4 * c.prescore + (0.25 if uptrend else 0.0) + max(-0.15, min(0.25, 2 * f.return_20d))
        score += 0.1 if f.return_60d > 0 else 0.0
        notes = [f"{'uptrend' if uptrend else 'no uptrend'}, 20d {f.return_20d:+.1%}, 60d {f.return_60d:+.1%}"]
        share, n = loser_share(f.similar_trades)
        if share is not None and n >= 3:
            score -= 0.3 * (share - 0.5)
            notes.append(f"memory: {share:.0%} of {n} similar trades lost")
        if not ok:
            score *= 0.7
            notes.append(why)
        picks.append(LLMPick(symbol=c.symbol, score=round(min(1.0, max(0.0, score)), 4), reason="; ".join(notes)))
    return LLMPickerOutput(picks=picks)


class OfflinePolicyLLM(LLM):
    """Implements `LLM` with deterministic rules on the typed request context."""

    provider = "offline"

    def __init__(self, picker: Any = None) -> None:
        self._picker = picker

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        """Decide from `request.context`; the rendered messages are ignored."""
        ctx = request.context
        result: BaseModel
        if isinstance(ctx, SignalContext):
            result = _signal(ctx)
        elif isinstance(ctx, RiskContext):
            result = _risk(ctx)
        elif isinstance(ctx, ValidatorContext):
            result = _validator(ctx)
        elif isinstance(ctx, LLMPickerContext):
            result = _picker_rule(ctx)
        elif self._picker is not None:
            result = self._picker(ctx)
        else:
            raise LLMError(f"offline policy has no rule for {request.agent} context {type(ctx).__name__}")
        output = request.output_schema.model_validate(result.model_dump())
        return Decision(output=output, usage=LLMUsage(provider=self.provider, model=MODEL_NAME))
