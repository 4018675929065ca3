"""Schemas of the eval dataset rows (one JSON object per line of `evals/datasets/*.jsonl`).

A row has what the agent sees (`context`, the agent's own typed context) and what happened next (`outcome`,
never shown to the agent). Anonymised rows name an asset `ASSET_nnn`, date nothing (`as_of` is "day 0") and
show prices scaled so that the snapshot's close is 100; the named twin of a row has the same `id`, the real
ticker, date and prices, and a `source` block saying where it came from. Prices in `outcome.forward` are on the
anonymised scale in both twins, so the two share one outcome.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.agents.schemas import RiskContext, SignalContext, ValidatorContext
from domain.evals.barriers import Barrier, ForwardPath

Twin = Literal["anonymised", "named"]
Stratum = Literal["trending", "other"]
TrapKind = Literal["gap_down_on_news", "falling_knife", "illiquid_name", "earnings_like_gap"]
ANONYMOUS_DAY = "day 0"
"""The `as_of` of every anonymised context."""


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ForwardBars(_Row):
    """The sessions after the snapshot (index 0 = the entry session), scaled so the snapshot's close is 100."""

    open: tuple[float, ...]
    high: tuple[float, ...]
    low: tuple[float, ...]
    close: tuple[float, ...]

    def path(self) -> ForwardPath:
        """As a `ForwardPath` for `triple_barrier`."""
        return ForwardPath.of(self.open, self.high, self.low, self.close)


class Outcome(_Row):
    """The triple-barrier label of a long entry at the next session's open with the agent's own barriers.

    Attributes:
        label: +1 take-profit, -1 stop, 0 time limit.
        barrier: which barrier closed the trade.
        realised_return: exit / entry - 1, before costs.
        win: realised_return > 0.
        exit_session: sessions from the entry (1 = the entry session) to the exit.
        stop_pct: the stop distance that labelled the row.
        take_profit_pct: the take-profit distance that labelled the row.
        max_sessions: the time limit that labelled the row.
        max_adverse_excursion: lowest low over the time limit relative to the entry (e.g. -0.07).
        max_favourable_excursion: highest high over the time limit relative to the entry.
        forward: the bars themselves, to label the row again with other barriers (e.g. the agent's stop).
    """

    label: Literal[-1, 0, 1]
    barrier: Barrier
    realised_return: float
    win: bool
    exit_session: int
    stop_pct: float
    take_profit_pct: float | None
    max_sessions: int
    max_adverse_excursion: float
    max_favourable_excursion: float
    forward: ForwardBars


class Source(_Row):
    """Where a named row comes from (named twins only).

    Attributes:
        symbol: the real ticker.
        day: the snapshot session (ISO date); the agent sees bars up to its close.
        entry_day: the session whose open is the entry.
        exit_day: the session that closed the labelled trade.
        close: the real close of the snapshot session (the anonymised scale is 100 / close).
        evidence: for validator rows, "SYMBOL snapshot_day..exit_day" of each similar past trade shown.
    """

    symbol: str
    day: str
    entry_day: str
    exit_day: str
    close: float
    evidence: tuple[str, ...] = ()


class SignalRow(_Row):
    """A point-in-time scenario for the signal agent: one symbol, the market, and what followed."""

    id: str
    dataset: Literal["signal"] = "signal"
    twin: Twin
    stratum: Stratum
    context: SignalContext
    outcome: Outcome
    source: Source | None = None


class TrapRow(_Row):
    """A hand-made scenario where the right call is not to buy."""

    id: str
    dataset: Literal["traps"] = "traps"
    kind: TrapKind
    description: str
    expected_action: Literal["HOLD"] = "HOLD"
    context: SignalContext
    outcome: Outcome


class RiskLimitsRow(_Row):
    """The hard limits the risk agent's answer is checked against."""

    max_position_pct: float
    min_stop_pct: float
    max_stop_pct: float
    loss_limit_pct: float
    max_gross_exposure_pct: float


class ReferenceSizing(_Row):
    """The reference policy's answer (the offline rule agent), for comparison."""

    position_pct: float
    stop_pct: float
    take_profit_pct: float


class RiskRow(_Row):
    """A sizing scenario for the risk agent: one BUY candidate, the account, and what followed."""

    id: str
    dataset: Literal["risk"] = "risk"
    twin: Twin
    context: RiskContext
    limits: RiskLimitsRow
    reference: ReferenceSizing
    outcome: Outcome
    source: Source | None = None


class RuleVerdict(_Row):
    """What the rule validator (`domain.validator.validate_proposal`) said of the candidate."""

    approved: bool
    loser_share: float | None
    warnings: tuple[str, ...]


class ValidatorRow(_Row):
    """A BUY candidate for the validator agent, with similar past trades known before the snapshot."""

    id: str
    dataset: Literal["validator"] = "validator"
    twin: Twin
    context: ValidatorContext
    rules: RuleVerdict
    outcome: Outcome
    source: Source | None = None
