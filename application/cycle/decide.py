"""The decision steps: recall, signal agent, risk agent, validator, hard limits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from application.agents import Agents
from application.cycle.snapshot import Snapshot
from domain.agents.schemas import (
    MarketConditions,
    MemoryEvidence,
    RiskAssessment,
    RiskCandidate,
    SignalProposal,
    SymbolFeatures,
    ValidatorCandidate,
    ValidatorVerdict,
)
from domain.features import setup_text
from domain.memory import MemoryFilters
from domain.models.trading import Portfolio
from domain.ports.embedder import Embedder
from domain.ports.uow import UnitOfWork
from domain.risk.config import RiskSettings
from domain.risk.limits import LimitContext, LimitDecision, ProposedTrade, apply_hard_limits
from domain.trading_state import StopKeeper, TradingState
from domain.validator import ValidationResult, validate_proposal


@dataclass
class ProposalOutcome:
    """What happened to one symbol's proposal, step by step (written to the event log and decisions.jsonl)."""

    symbol: str
    signal: SignalProposal
    assessment: RiskAssessment | None = None
    validation: ValidationResult | None = None
    verdict: ValidatorVerdict | None = None
    limit: LimitDecision | None = None
    is_stop_exit: bool = False
    setup: str = ""
    final: str = "HOLD"
    reason: str = ""
    evidence: tuple[MemoryEvidence, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON-safe summary."""
        lim = self.limit
        return {
            "symbol": self.symbol,
            "signal": self.signal.model_dump(),
            "risk": self.assessment.model_dump() if self.assessment else None,
            "validator_rules": None if self.validation is None else {
                "approved": self.validation.approved, "confidence": self.validation.confidence,
                "warnings": list(self.validation.warnings), "loser_share": self.validation.loser_share,
                "rejected_reason": self.validation.rejected_reason},
            "validator_agent": self.verdict.model_dump() if self.verdict else None,
            "limits": None if lim is None else {
                "rejected_by": lim.rejected_by, "reason": lim.reason,
                "adjustments": [{"limit": a.limit, "detail": a.detail} for a in lim.adjustments],
                "order": None if lim.order is None else {
                    "client_order_id": lim.order.client_order_id, "side": lim.order.side.value,
                    "qty": str(lim.order.qty), "stop_price": str(lim.order.stop_price or "")}},
            "memory_evidence": [e.model_dump() for e in self.evidence],
            "stop_exit": self.is_stop_exit,
            "final": self.final,
            "reason": self.reason,
        }


@dataclass
class DecisionInputs:
    """What the decision step needs besides the snapshot.

    Attributes:
        state: Quorum's trading state (open trades with the stops Quorum keeps, cooldowns).
        stop_now: symbols whose price is already through their stop (found by the protection step).
        agents_enabled: False while trading is paused: only stops and rule exits are decided, no agent runs.
        shadow_book: the shadow book while the breaker is tripped (entries are sized against its own cash).
    """

    as_of: datetime
    cycle_id: str
    scope: str
    market_open: bool
    day_start_equity: Decimal
    day_trades_used: int
    entries_allowed: bool
    entry_block_reason: str
    shadow_positions: dict[str, Any] = field(default_factory=dict)
    state: TradingState = field(default_factory=TradingState)
    stop_now: tuple[str, ...] = ()
    agents_enabled: bool = True
    shadow_book: Portfolio | None = None


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
                        as_of: datetime, k: int) -> dict[str, tuple[MemoryEvidence, ...]]:
    """Similar past trades per symbol (one batched embedding, one query per symbol)."""
    if not features:
        return {}
    vectors = embedder.embed([setup_text(f) for f in features])
    out: dict[str, tuple[MemoryEvidence, ...]] = {}
    for f, vec in zip(features, vectors, strict=True):
        items = await uow.trade_memory.similar([float(x) for x in vec], k=k, as_of=as_of,
                                               filters=MemoryFilters(action="BUY", scope=scope))
        out[f.symbol] = tuple(MemoryEvidence(text=i.record.text, distance=round(i.distance, 4),
                                             outcome=i.record.outcome, return_pct=i.record.return_pct)
                              for i in items)
    return out


def _exit_outcome(sym: str, reasoning: str, *, stop: bool) -> ProposalOutcome:
    sig = SignalProposal(symbol=sym, action="SELL", confidence=1.0, reasoning=reasoning)
    return ProposalOutcome(sym, sig, is_stop_exit=stop)


def rule_exits(snap: Snapshot, d: DecisionInputs) -> list[ProposalOutcome]:
    """Exits no agent has to agree to: Quorum-kept stops and take-profits that were reached, and positions the
    protection step found already through their stop. They never wait for an LLM."""
    out = []
    for sym, pos in sorted(snap.positions.items()):
        trade, px = d.state.open_trades.get(sym), snap.prices.get(sym)
        if pos.qty <= 0:
            continue
        if sym in d.stop_now:
            out.append(_exit_outcome(sym, f"stop: price {px} is through the stop {pos.stop_price}", stop=True))
        elif trade is None or trade.stop_keeper is not StopKeeper.QUORUM or px is None:
            continue
        elif trade.stop_price is not None and px <= trade.stop_price:
            out.append(_exit_outcome(sym, f"stop hit: price {px} <= stop {trade.stop_price} (kept by Quorum)",
                                     stop=True))
        elif trade.take_profit_price is not None and px >= trade.take_profit_price:
            out.append(_exit_outcome(sym, f"take profit: price {px} >= {trade.take_profit_price} (kept by Quorum)",
                                     stop=False))
    return out


def shadow_stop_exits(snap: Snapshot, book: Portfolio | None) -> list[ProposalOutcome]:
    """Shadow-book positions whose stop was touched (the latest price, or the low of a session completed since the
    entry), closed on the shadow book like the broker's stop would close a real one."""
    out: list[ProposalOutcome] = []
    for sym, pos in sorted((book.positions if book else {}).items()):
        stop, px, bars = pos.stop_price, snap.prices.get(sym), snap.bars.get(sym)
        if stop is None:
            continue
        low = None
        if bars is not None and len(bars) and pos.opened_at is not None and bars.days[-1] > pos.opened_at.date():
            low = Decimal(str(bars.low[-1]))
        if (px is not None and px <= stop) or (low is not None and low <= stop):
            o = _exit_outcome(sym, f"shadow stop hit: stop {stop}", stop=True)
            o.final, o.reason = "SHADOW_EXIT", "shadow-book stop (no order sent)"
            out.append(o)
    return out


def _limit_ctx(snap: Snapshot, d: DecisionInputs, orders: int, pending: Decimal, *, entry: bool) -> LimitContext:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("America/New_York")
    ctx = LimitContext(
        as_of=d.as_of, market_open=d.market_open, equity=snap.account.equity, cash=snap.account.cash,
        day_start_equity=d.day_start_equity, positions=snap.positions, prices=snap.prices,
        avg_dollar_volume=snap.adv, assets=snap.assets, orders_this_cycle=orders, pending_exposure=pending,
        day_trades_used=d.day_trades_used, today=d.as_of.astimezone(tz).date(), tz=tz,
        entries_allowed=d.entries_allowed, entry_block_reason=d.entry_block_reason,
        open_entries=snap.open_entries, cooldowns=d.state.cooling_down(d.as_of),
        buying_power=snap.account.buying_power)
    if entry and d.shadow_book is not None:
        book = d.shadow_book
        prices = {s: snap.prices.get(s, p.avg_entry_price) for s, p in book.positions.items()}
        equity = book.equity(prices)
        ctx = replace(ctx, equity=equity, cash=book.cash, day_start_equity=equity, positions=book.positions,
                      open_entries={}, buying_power=None, day_trades_used=0)
    return ctx


async def decide(
    uow: UnitOfWork, snap: Snapshot, d: DecisionInputs, *, universe: list[str], agents: Agents, embedder: Embedder,
    risk: RiskSettings, recall_k: int, max_candidates: int,
) -> tuple[list[ProposalOutcome], MarketConditions | None]:
    """Run every decision step and return one outcome per considered symbol, exits first.

    Rule exits (stops, take-profits) and shadow-book stops come first and need no agent; while trading is
    paused nothing else is decided.
    """
    outcomes = rule_exits(snap, d) + shadow_stop_exits(snap, d.shadow_book)
    if not d.agents_enabled:
        return outcomes, snap.market
    stopped = {o.symbol for o in outcomes}
    candidates = [f for f in prefilter(snap, universe, risk, max_candidates) if f.symbol not in stopped]
    entries_only = [f for f in candidates if f.symbol not in snap.positions]
    memory = await recall_trades(uow, embedder, entries_only, scope=d.scope, as_of=d.as_of, k=recall_k)
    candidates = [f.model_copy(update={"similar_trades": memory.get(f.symbol, ())}) for f in candidates]
    market = snap.market
    if market is None or not candidates:
        return outcomes, market
    signals = await agents.signals(candidates, market, as_of=d.as_of, cycle_id=d.cycle_id)
    by_symbol = {f.symbol: f for f in candidates}
    entries: list[ProposalOutcome] = []
    for sym in sorted(signals):
        sig, f = signals[sym], by_symbol[sym]
        o = ProposalOutcome(sym, sig, setup=setup_text(f), evidence=f.similar_trades)
        held = sym in snap.positions
        if sig.action == "SELL" and held:
            outcomes.append(o)
        elif sig.action == "BUY" and not held and sym not in d.shadow_positions:
            entries.append(o)
        elif sig.action == "SELL" and sym in d.shadow_positions:
            o.final, o.reason = "SHADOW_EXIT", "exit of a shadow-book position (no order sent)"
            outcomes.append(o)
        else:
            o.final, o.reason = "HOLD", "signal HOLD" if sig.action == "HOLD" else f"{sig.action} not applicable"
            outcomes.append(o)
    if entries:
        equity = float(snap.account.equity)
        gross = float(snap.gross_exposure) / equity if equity > 0 else 0.0
        rc = [RiskCandidate(symbol=o.symbol, action=o.signal.action, confidence=o.signal.confidence,
                            price=by_symbol[o.symbol].price, volatility_20d=by_symbol[o.symbol].volatility_20d,
                            atr_pct=by_symbol[o.symbol].atr_pct, held_qty=0.0) for o in entries]
        sizes = await agents.risk(rc, equity=equity, cash=float(snap.account.cash), gross_pct=gross,
                                  max_position_pct=risk.max_position_pct, default_stop_pct=risk.default_stop_pct,
                                  as_of=d.as_of, cycle_id=d.cycle_id)
        vcands = []
        for o in entries:
            o.assessment = sizes.get(o.symbol)
            o.validation = validate_proposal(o.signal, by_symbol[o.symbol], o.evidence, risk.validator)
            if o.assessment is not None:
                vcands.append(ValidatorCandidate(
                    symbol=o.symbol, action=o.signal.action, confidence=o.validation.confidence,
                    position_pct=o.assessment.position_pct, stop_loss_pct=o.assessment.stop_loss_pct,
                    reasoning=o.signal.reasoning, similar_trades=o.evidence,
                    rule_warnings=o.validation.warnings))
        verdicts = await agents.validate(vcands, market, as_of=d.as_of, cycle_id=d.cycle_id) if vcands else {}
        for o in entries:
            o.verdict = verdicts.get(o.symbol)
    entries.sort(key=lambda o: (-(o.validation.confidence if o.validation else 0.0), o.symbol))
    return outcomes + entries, market


def apply_limits(outcomes: list[ProposalOutcome], snap: Snapshot, d: DecisionInputs, risk: RiskSettings,
                 client_order_id: Any) -> list[ProposalOutcome]:
    """Hard limits on every actionable outcome in order, tracking orders, exposure and cash as they accrue."""
    orders, pending = 0, Decimal(0)
    for o in outcomes:
        if o.final in ("HOLD", "SHADOW_EXIT") and o.reason:
            continue
        entry = o.signal.action == "BUY"
        if entry:
            if o.assessment is None:
                o.final, o.reason = "REJECTED", "risk agent gave no sizing"
                continue
            if o.validation is not None and not o.validation.approved:
                o.final, o.reason = "REJECTED", f"validator: {o.validation.rejected_reason}"
                continue
            if o.verdict is None:
                o.final, o.reason = "REJECTED", "validator agent gave no verdict"
                continue
            if not o.verdict.approve:
                o.final, o.reason = "REJECTED", f"validator agent: {o.verdict.reasoning}"
                continue
        confidence = o.signal.confidence
        if o.validation is not None:
            confidence = o.validation.confidence
        if o.verdict is not None:
            confidence = max(0.0, confidence + o.verdict.confidence_adjustment)
        a = o.assessment
        trade = ProposedTrade(
            symbol=o.symbol, action=o.signal.action, confidence=confidence,
            position_pct=a.position_pct if a else 1.0,
            stop_loss_pct=a.stop_loss_pct if a else None, take_profit_pct=a.take_profit_pct if a else None,
            reasoning=o.signal.reasoning, is_stop_exit=o.is_stop_exit)
        if not all(math.isfinite(x) for x in (trade.confidence, trade.position_pct)):
            trade = replace(trade, confidence=0.0)
        ctx = _limit_ctx(snap, d, orders, pending, entry=entry and o.symbol not in snap.positions)
        o.limit = apply_hard_limits(trade, ctx, risk, client_order_id=client_order_id(o.symbol, o.signal.action))
        if o.limit.order is None:
            o.final, o.reason = "REJECTED", f"{o.limit.rejected_by}: {o.limit.reason}"
            continue
        order = o.limit.order
        o.final, o.reason = o.signal.action, order.reason or o.signal.reasoning
        if entry:
            orders += 1
            pending += order.qty * snap.prices.get(o.symbol, Decimal(0))
    return outcomes
