"""Risk settings: the hard limits and the circuit-breaker thresholds.

These are plain validated models; `entrypoints.settings` loads them from the
environment. Nothing an LLM says can change them at run time.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


class FeeSettings(BaseModel):
    """Explicit costs of trading (Alpaca is commission-free; regulators are not)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    commission_per_order: Decimal = Field(Decimal("0"), ge=0)
    sec_fee_per_million: Decimal = Field(Decimal("27.80"), ge=0, description="SEC Section 31 fee on sell notional")
    taf_per_share: Decimal = Field(Decimal("0.000166"), ge=0, description="FINRA TAF on shares sold")
    taf_max: Decimal = Field(Decimal("8.30"), ge=0)
    slippage_bps: Decimal = Field(Decimal("5"), ge=0, description="adverse price move per fill, basis points")


class BreakerSettings(BaseModel):
    """When the circuit breaker trips and when it may resume."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_drawdown_pct: float = Field(0.20, gt=0, lt=1, description="trip when equity falls this far below its peak")
    max_daily_loss_pct: float = Field(0.05, gt=0, lt=1)
    max_consecutive_losses: int = Field(5, ge=1)
    max_system_errors: int = Field(3, ge=1, description="trip after this many system errors within the error window")
    system_error_window_cycles: int = Field(10, ge=1)
    resume_max_drawdown_pct: float = Field(0.15, gt=0, lt=1)
    resume_min_win_streak: int = Field(3, ge=1)
    resume_min_sharpe_7d: float = 0.3


class ValidatorSettings(BaseModel):
    """Rule-based validator: when memory of similar past trades warns about or vetoes an entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_similar: int = Field(3, ge=1, description="similar trades with a known outcome needed before memory counts")
    max_distance: float = Field(0.6, gt=0, le=2, description="cosine distance beyond which a trade is not similar")
    warn_loser_share: float = Field(0.5, ge=0, le=1, description="warn and lower confidence at this share of losers")
    reject_loser_share: float = Field(0.7, ge=0, le=1, description="reject the entry at this share of losers")
    confidence_penalty: float = Field(
        0.5, ge=0, le=1, description="on a warning, confidence is multiplied by (1 - penalty * loser share)"
    )
    max_volatility: float = Field(1.2, gt=0, description="annualised 20-day volatility above which an entry is flagged")

    @model_validator(mode="after")
    def _shares_ordered(self) -> ValidatorSettings:
        if self.warn_loser_share > self.reject_loser_share:
            raise ValueError("need warn_loser_share <= reject_loser_share")
        return self


class RiskSettings(BaseModel):
    """Hard limits applied to every proposal after the agents and the validator."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    starting_capital: Decimal = Field(Decimal("650"), gt=0, description="USD; default cash of backtests")
    max_position_pct: float = Field(0.25, gt=0, le=1, description="largest position as a share of equity")
    max_gross_exposure_pct: float = Field(1.0, gt=0, le=2)
    max_daily_loss_pct: float = Field(0.03, gt=0, lt=1, description="no new entries after losing this much today")
    max_new_orders_per_cycle: int = Field(3, ge=0)
    min_price: Decimal = Field(Decimal("5"), ge=0)
    min_avg_dollar_volume: Decimal = Field(Decimal("5000000"), ge=0)
    allow_short: bool = False
    market_hours_only: bool = True
    default_stop_pct: float = Field(0.05, gt=0, lt=1, description="stop distance when the risk agent gives none")
    min_stop_pct: float = Field(0.01, gt=0, lt=1)
    max_stop_pct: float = Field(0.15, gt=0, lt=1, validate_default=True)
    min_order_notional: Decimal = Field(Decimal("1"), gt=0, description="Alpaca's minimum for fractional orders")
    pdt_equity_threshold: Decimal = Field(Decimal("25000"), ge=0)
    pdt_max_day_trades: int = Field(3, ge=0, description="day trades allowed in 5 business days under the threshold")
    min_confidence: float = Field(0.55, ge=0, le=1, description="entries below this confidence are not taken")
    buying_power_collar_pct: float = Field(
        0.05, ge=0, lt=1, description="Alpaca checks a market buy against buying power at the ask plus a price "
        "collar; entries leave this share of the cash unspent so they are not refused")
    reentry_cooldown_hours: float = Field(24, ge=0, le=24 * 30, description="no new entry in a symbol for this "
                                          "long after its stop closed a position (0: no cooldown)")
    fees: FeeSettings = FeeSettings()
    breaker: BreakerSettings = BreakerSettings()
    validator: ValidatorSettings = ValidatorSettings()

    @field_validator("max_stop_pct")
    @classmethod
    def _stops_ordered(cls, v: float, info: ValidationInfo) -> float:
        low, default = info.data.get("min_stop_pct"), info.data.get("default_stop_pct")
        if low is not None and default is not None and not low <= default <= v:
            raise ValueError(f"need min_stop_pct ({low}) <= default_stop_pct ({default}) <= max_stop_pct ({v})")
        return v
