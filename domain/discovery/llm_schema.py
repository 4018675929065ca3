"""Typed context and output of the LLM picker.

One prompt carries every candidate (at most `DiscoverySettings.llm_candidates`, chosen by the
cheap deterministic pickers), the portfolio and the market conditions with the most similar past
conditions and what followed them. The output is strict like the agents' schemas: unknown fields,
wrong types and non-finite numbers fail validation. A score outside 0..1 is the one thing the
picker repairs (it clips it) rather than discarding the whole answer.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from domain.agents.schemas import MarketConditions, SymbolFeatures

MAX_CANDIDATES = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeldPosition(_Strict):
    """One open position, as a share of equity."""

    symbol: str
    weight: float = Field(description="position value over account equity")
    sector: str | None = None
    unrealized_return: float | None = None


class PortfolioSummary(_Strict):
    """What the account holds and watches."""

    equity: float | None = Field(None, description="USD, as of the last trading cycle")
    cash: float | None = None
    positions: tuple[HeldPosition, ...] = ()
    sector_weights: dict[str, float] = Field(default_factory=dict, description="sector -> share of equity held")
    watchlist: tuple[str, ...] = ()


class PickerCandidate(_Strict):
    """A symbol the deterministic pickers shortlisted, with its features."""

    symbol: str
    sector: str | None = None
    market_cap: float | None = None
    prescore: float = Field(ge=0, le=1, description="the deterministic (fuzzy) score")
    features: SymbolFeatures


class LLMPickerContext(_Strict):
    """Everything the LLM picker sees: one batch of candidates, the portfolio and the market."""

    as_of: str
    portfolio: PortfolioSummary
    market: MarketConditions | None = Field(
        None, description="current conditions, with the most similar past conditions and what followed them"
    )
    candidates: tuple[PickerCandidate, ...] = Field(max_length=MAX_CANDIDATES)


class LLMPick(_Strict):
    """The LLM's rating of one candidate."""

    symbol: str = Field(min_length=1, max_length=16)
    score: float = Field(allow_inf_nan=False, description="0 = avoid .. 1 = strong candidate")
    reason: str = Field(max_length=2000)


class LLMPickerOutput(_Strict):
    """LLM picker output: one rating per candidate it has a view on."""

    picks: list[LLMPick] = Field(max_length=MAX_CANDIDATES)
