"""Typed contexts and outputs of the LLM agents (signal, risk, validator).

Outputs are strict: unknown fields, out-of-range numbers and wrong types fail
validation, and the application turns a failed validation into a HOLD.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["BUY", "SELL", "HOLD"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MemoryEvidence(_Strict):
    """A similar past item shown to an agent."""

    text: str
    distance: float
    outcome: str | None = None
    return_pct: float | None = None


class SymbolFeatures(_Strict):
    """Deterministic features of one symbol at the cycle time."""

    symbol: str
    price: float
    return_1d: float
    return_5d: float
    return_20d: float
    return_60d: float
    sma_20: float
    sma_50: float
    volatility_20d: float = Field(description="annualised stdev of daily returns")
    atr_pct: float = Field(description="14-day average true range as a fraction of price")
    avg_dollar_volume_20d: float
    volume_ratio: float = Field(description="last volume over 20-day average")
    held_qty: float = 0.0
    unrealized_return: float | None = None
    similar_trades: tuple[MemoryEvidence, ...] = ()


class MarketConditions(_Strict):
    """Market-wide state at the cycle time."""

    vix: float | None
    vix_is_proxy: bool
    spy_return_20d: float
    spy_above_sma_50: bool
    spy_trend: Literal["up", "down", "sideways"]
    sector_returns_20d: dict[str, float] = Field(default_factory=dict)
    text: str = ""
    similar_conditions: tuple[MemoryEvidence, ...] = ()


class SignalContext(_Strict):
    """Everything the signal agent sees: a batch of symbols and the market."""

    as_of: str
    market: MarketConditions
    symbols: tuple[SymbolFeatures, ...]


class SignalProposal(_Strict):
    """The signal agent's view of one symbol."""

    symbol: str = Field(min_length=1, max_length=16)
    action: Action
    confidence: float = Field(ge=0, le=1)
    reasoning: str = Field(max_length=2000)


class SignalBatch(_Strict):
    """Signal agent output: one proposal per symbol of the context."""

    proposals: list[SignalProposal] = Field(max_length=200)


class RiskCandidate(_Strict):
    """One BUY/SELL proposal sent to the risk agent."""

    symbol: str
    action: Action
    confidence: float
    price: float
    volatility_20d: float
    atr_pct: float
    held_qty: float


class RiskContext(_Strict):
    """What the risk agent sees."""

    as_of: str
    equity: float
    cash: float
    gross_exposure_pct: float
    max_position_pct: float
    default_stop_pct: float
    candidates: tuple[RiskCandidate, ...]


class RiskAssessment(_Strict):
    """The risk agent's sizing of one proposal (a request: hard limits still apply)."""

    symbol: str = Field(min_length=1, max_length=16)
    position_pct: float = Field(ge=0, le=1, description="target position as a share of equity")
    stop_loss_pct: float = Field(gt=0, lt=1)
    take_profit_pct: float | None = Field(default=None, gt=0, lt=10)
    reasoning: str = Field(max_length=2000)


class RiskBatch(_Strict):
    """Risk agent output."""

    assessments: list[RiskAssessment] = Field(max_length=200)


class ValidatorCandidate(_Strict):
    """A proposal with its sizing and the memory evidence about similar setups."""

    symbol: str
    action: Action
    confidence: float
    position_pct: float
    stop_loss_pct: float
    reasoning: str
    similar_trades: tuple[MemoryEvidence, ...] = ()
    rule_warnings: tuple[str, ...] = ()


class ValidatorContext(_Strict):
    """What the validator agent sees."""

    as_of: str
    market: MarketConditions
    candidates: tuple[ValidatorCandidate, ...]


class ValidatorVerdict(_Strict):
    """The validator agent's judgement of one proposal."""

    symbol: str = Field(min_length=1, max_length=16)
    approve: bool
    confidence_adjustment: float = Field(ge=-1, le=0, description="only lowers confidence")
    warnings: list[str] = Field(default_factory=list, max_length=20)
    reasoning: str = Field(max_length=2000)


class ValidatorBatch(_Strict):
    """Validator agent output."""

    verdicts: list[ValidatorVerdict] = Field(max_length=200)
