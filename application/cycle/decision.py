"""What the decide stage works with besides the snapshot (`DecisionInputs`) and what it returns per symbol
(`ProposalOutcome`, the line of decisions.jsonl and the payload of its event)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from domain.agents.schemas import MemoryEvidence, RiskAssessment, SignalProposal, ValidatorVerdict
from domain.models.trading import Portfolio, Position
from domain.risk.limits import LimitDecision
from domain.trading_state import TradingState
from domain.validator import ValidationResult
from domain.verdict import Verdict


@dataclass(frozen=True)
class ProposalOutcome:
    """What happened to one symbol's proposal, step by step.

    Attributes:
        signal: the signal agent's proposal (or the rule that wants an exit).
        assessment: the risk agent's sizing (entries only).
        validation: the rule validator's judgement (entries only).
        verdict: the validator agent's judgement (entries with a sizing only).
        limit: what the hard limits made of it (actionable proposals only).
        final: the verdict, None until a stage decides it (every outcome a cycle returns has one).
        reason: why `final`.
    """

    symbol: str
    signal: SignalProposal
    assessment: RiskAssessment | None = None
    validation: ValidationResult | None = None
    verdict: ValidatorVerdict | None = None
    limit: LimitDecision | None = None
    is_stop_exit: bool = False
    setup: str = ""
    final: Verdict | None = None
    reason: str = ""
    evidence: tuple[MemoryEvidence, ...] = ()

    def decided(self, final: Verdict, reason: str) -> ProposalOutcome:
        """This outcome with its verdict and the reason for it."""
        return replace(self, final=final, reason=reason)

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
            "final": None if self.final is None else self.final.value,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DecisionInputs:
    """What the decision step needs besides the snapshot.

    Attributes:
        state: Quorum's trading state (open trades with the stops Quorum keeps, cooldowns).
        stop_now: symbols whose price is already through their stop (found by the protection step).
        agents_enabled: False while trading is paused: only stops and rule exits are decided, no agent runs.
        shadow_book: the shadow book while the breaker is tripped (entries are sized against its own cash).
        tz: the exchange's time zone (the calendar's): its dates are the trading days.
        last_fills: symbol -> its last fill in the last 10 days (time, order, side, quantity), shadow fills too.
    """

    as_of: datetime
    cycle_id: str
    scope: str
    market_open: bool
    day_start_equity: Decimal
    day_trades_used: int
    entries_allowed: bool
    entry_block_reason: str
    tz: tzinfo
    shadow_positions: dict[str, Position] = field(default_factory=dict)
    state: TradingState = field(default_factory=TradingState)
    stop_now: tuple[str, ...] = ()
    agents_enabled: bool = True
    shadow_book: Portfolio | None = None
    last_fills: dict[str, str] = field(default_factory=dict)
