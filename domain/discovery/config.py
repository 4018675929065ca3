"""Discovery settings: filters, score weights, watchlist size and the fundamentals file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class MetricFilterSettings(BaseModel):
    """Hard filters of the metric picker."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_avg_volume: float = Field(500_000, ge=0, description="shares per day")
    min_avg_dollar_volume: float = Field(10_000_000, ge=0)
    max_spread_pct: float = Field(0.005, gt=0, description="bid-ask spread as a fraction of mid")
    min_market_cap: float | None = Field(2_000_000_000, ge=0)
    max_market_cap: float | None = Field(None, ge=0)
    min_beta: float | None = 0.5
    max_beta: float | None = 2.5
    beta_window_days: int = Field(120, ge=20)
    volume_window_days: int = Field(20, ge=1)
    min_price: float = Field(5.0, ge=0)


class FuzzyWeights(BaseModel):
    """Weights of the fuzzy picker's component scores (not required to sum to 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    liquidity: float = Field(0.25, ge=0)
    volatility: float = Field(0.20, ge=0)
    momentum: float = Field(0.35, ge=0)
    sector_balance: float = Field(0.20, ge=0)
    memory_adjustment: float = Field(0.15, ge=0, le=1, description="largest score change from similar past trades")

    @model_validator(mode="after")
    def _not_all_zero(self) -> FuzzyWeights:
        if self.liquidity + self.volatility + self.momentum + self.sector_balance <= 0:
            raise ValueError("at least one fuzzy weight must be positive")
        return self


class EnsembleWeights(BaseModel):
    """Weight of each picker in the ensemble."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: float = Field(0.3, ge=0)
    fuzzy: float = Field(0.4, ge=0)
    llm: float = Field(0.3, ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> EnsembleWeights:
        if self.metric + self.fuzzy + self.llm <= 0:
            raise ValueError("at least one ensemble weight must be positive")
        return self


class DiscoverySettings(BaseModel):
    """How symbols are discovered and how large the watchlist may grow."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    pickers: tuple[str, ...] = ("metric", "fuzzy", "llm")
    interval_hours: float = Field(4, gt=0)
    max_watchlist_size: int = Field(20, ge=1)
    top_n: int = Field(10, ge=1, description="discovered symbols added per run at most")
    min_score: float = Field(0.5, ge=0, le=1)
    llm_candidates: int = Field(25, ge=1, description="symbols sent to the LLM picker per run (one batched prompt)")
    divergence_threshold: float = Field(0.5, ge=0, le=1)
    filters: MetricFilterSettings = MetricFilterSettings()
    fuzzy: FuzzyWeights = FuzzyWeights()
    weights: EnsembleWeights = EnsembleWeights()
    fundamentals_file: Path | None = Field(
        None, description="CSV of market caps (and sectors): symbol, sector, market_cap, as_of; merged over the "
        "shipped S&P 500 sector map outside the synthetic market")

    @field_validator("fundamentals_file", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        if isinstance(v, str) and not v.strip():
            return None
        return v

    @field_validator("fundamentals_file")
    @classmethod
    def _existing_file(cls, v: Path | None) -> Path | None:
        """The file must exist when the settings load, so a typo stops start-up instead of a later run."""
        if v is None:
            return None
        path = v.expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    @model_validator(mode="after")
    def _known_pickers(self) -> DiscoverySettings:
        unknown = set(self.pickers) - {"metric", "fuzzy", "llm"}
        if unknown:
            raise ValueError(f"unknown pickers {sorted(unknown)}; known: metric, fuzzy, llm")
        return self
