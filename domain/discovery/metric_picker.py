"""Hard filters on liquidity, spread, price, market cap and beta.

Boundaries are inclusive: a value equal to a minimum or a maximum passes. A filter that cannot
be checked for a symbol rejects it: unknown spread, unknown market cap (whenever a cap bound is
configured) and too little history for beta (whenever a beta bound is configured) are rejections
with their reason, never silent passes; so is a symbol without a bar on the newest session (its
price is that session's close). Every failed filter adds a reason stating the number and the
threshold; a symbol failing several filters gets several reasons.

A filter whose data is missing for the whole universe (no quote, no market cap, or no symbol with
enough history for beta) cannot tell symbols apart: rejecting everything would only hide that the
data source lacks it. Such a filter is skipped, with a stated reason (`MetricEvaluation.skipped`,
also added to the reasons of the passing symbols). As soon as one symbol has the data, the filter
applies and the symbols without it are rejected as above.

Passing symbols score 0.5 + 0.5 x the percentile rank of their average dollar volume among the
passing symbols (0.5 for the least liquid, 1 for the most); rejected symbols score 0.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from domain.discovery.beta import default_min_observations, rolling_beta
from domain.discovery.config import MetricFilterSettings
from domain.discovery.picker import PickerContext, PickerResult, UniverseSnapshot
from domain.discovery.picker_scores import IntArray, PickerScores
from domain.discovery.scoring import (
    average_dollar_volume,
    average_volume,
    compact_dollars,
    compact_number,
    percentile_rank,
)
from domain.models.market import FloatArray

BoolArray = npt.NDArray[np.bool_]

_Check = tuple[BoolArray, FloatArray, Callable[[float], str]]

PASSED_SCORE_FLOOR = 0.5
"""Score of the least liquid passing symbol; the most liquid scores 1."""


@dataclass(frozen=True, eq=False)
class MetricEvaluation(PickerScores):
    """Vectorised outcome of the metric filters, one entry per symbol of the universe.

    `score` is 0 for rejected symbols and 0.5 + 0.5 x liquidity_rank for passing ones; `passed` is True
    where every filter passed. Results (a reason per failed filter) are built for the rows asked for.

    Attributes:
        avg_volume: mean daily shares over the volume window.
        avg_dollar_volume: mean daily close x volume over the volume window.
        price: close of the newest session.
        spread_pct: bid-ask spread as a fraction of mid.
        market_cap: USD.
        beta: OLS beta against the benchmark over the beta window.
        liquidity_rank: percentile rank of avg dollar volume among passing symbols (NaN if rejected).
        settings: the thresholds of the filters.
        skipped: filter ("spread", "market_cap", "beta") -> why it was not applied (its data is missing for
            every symbol of the universe); empty when every configured filter applied.
    """

    avg_volume: FloatArray
    avg_dollar_volume: FloatArray
    price: FloatArray
    spread_pct: FloatArray
    market_cap: FloatArray
    beta: FloatArray
    liquidity_rank: FloatArray
    settings: MetricFilterSettings
    skipped: Mapping[str, str] = field(default_factory=dict)

    def _build(self, rows: IntArray) -> list[PickerResult]:
        measures = [m[rows] for m in (self.avg_volume, self.avg_dollar_volume, self.price, self.spread_pct,
                                      self.market_cap, self.beta)]  # fmt: skip
        reasons: list[list[str]] = [[] for _ in range(rows.size)]
        for mask, measure, describe in _failures(self.settings, *measures, skip=self.skipped):
            hits = np.flatnonzero(mask)
            for k, value in zip(hits.tolist(), measure[hits].tolist(), strict=True):
                reasons[k].append(describe(value))
        av, dv, px, sp, cap, beta = (m.tolist() for m in measures)
        passed = self.passed[rows].tolist()
        among = f" among {int(self.passed.sum()):,} passing (avg dollar volume "
        ranks = self.liquidity_rank[rows].tolist()
        for k in np.flatnonzero(passed).tolist():
            reasons[k] = ["passed all filters", f"liquidity percentile {ranks[k]:.2f}{among}{compact_dollars(dv[k])})",
                          *self.skipped.values()]
        out = []
        for k, (i, score) in enumerate(zip(rows.tolist(), self.score[rows].tolist(), strict=True)):
            details = {"avg_volume": av[k], "avg_dollar_volume": dv[k], "price": px[k], "spread_pct": sp[k],
                       "market_cap": cap[k], "beta": beta[k]}  # fmt: skip
            out.append(PickerResult(self.picker, self.symbols[i], score, passed[k], tuple(reasons[k]), details))
        return out


class MetricPicker:
    """Rejects symbols failing a hard filter; ranks the rest by liquidity."""

    name = "metric"

    def __init__(self, settings: MetricFilterSettings) -> None:
        """Create the picker.

        Args:
            settings: thresholds and windows of the filters.
        """
        self.settings = settings

    def evaluate(self, universe: UniverseSnapshot, context: PickerContext | None = None) -> MetricEvaluation:
        """Compute every measure, the pass mask and the score, vectorised over symbols (no result objects).

        Args:
            universe: the candidates.
            context: unused (the filters depend on market data only).
        """
        s = self.settings
        avg_vol = average_volume(universe.volume, s.volume_window_days)
        avg_dv = average_dollar_volume(universe.close, universe.volume, s.volume_window_days)
        price = universe.close[:, -1] if universe.n_days else np.full(universe.n_symbols, np.nan)
        beta = rolling_beta(universe.returns, universe.benchmark_returns, s.beta_window_days)
        skipped = unavailable_filters(s, universe.spread_pct, universe.market_caps, beta)
        passed = np.ones(universe.n_symbols, dtype=bool)
        for mask, _, _ in _failures(s, avg_vol, avg_dv, price, universe.spread_pct, universe.market_caps, beta,
                                    skip=skipped):
            passed &= ~mask
        rank = np.full(universe.n_symbols, np.nan)
        rank[passed] = percentile_rank(avg_dv[passed])
        score = np.zeros(universe.n_symbols)
        score[passed] = PASSED_SCORE_FLOOR + (1.0 - PASSED_SCORE_FLOOR) * rank[passed]
        return MetricEvaluation(self.name, universe.symbols, score, passed, avg_vol, avg_dv, price,
                                universe.spread_pct, universe.market_caps, beta, rank, s, skipped)  # fmt: skip

    def pick(self, universe: UniverseSnapshot, context: PickerContext) -> list[PickerResult]:
        """One result per symbol: rejected ones with `passed=False`, score 0 and a reason per failed filter."""
        return self.evaluate(universe, context).results()


def unavailable_filters(
    s: MetricFilterSettings, spread: FloatArray, cap: FloatArray, beta: FloatArray
) -> dict[str, str]:
    """Configured filters whose data is missing for every symbol, each with the reason it is skipped.

    Args:
        s: the filters' thresholds (a filter without a bound is never skipped: it is not applied anyway).
        spread: (n_symbols,) spreads, NaN where no quote is known.
        cap: (n_symbols,) market caps, NaN where unknown.
        beta: (n_symbols,) betas, NaN where the history is too short.

    Returns:
        filter name ("spread", "market_cap", "beta") -> reason; empty for an empty universe.
    """
    n = int(spread.shape[0])
    if n == 0:
        return {}
    every = "the symbol" if n == 1 else f"any of the {n:,} symbols"
    out: dict[str, str] = {}
    if np.isnan(spread).all():
        out["spread"] = (f"spread filter skipped: no quote known for {every} "
                         f"(maximum {_percent(s.max_spread_pct)} not applied)")
    if (s.min_market_cap is not None or s.max_market_cap is not None) and np.isnan(cap).all():
        bounds = _bounds(s.min_market_cap, s.max_market_cap, compact_dollars)
        out["market_cap"] = f"market cap filter skipped: no market cap known for {every} ({bounds} not applied)"
    if (s.min_beta is not None or s.max_beta is not None) and np.isnan(beta).all():
        need, window = default_min_observations(s.beta_window_days), s.beta_window_days
        bounds = _bounds(s.min_beta, s.max_beta, _two_decimals)
        out["beta"] = (f"beta filter skipped: not enough history for beta for {every} (needs {need} daily "
                       f"returns in the last {window} sessions; {bounds} not applied)")
    return out


def _bounds(low: float | None, high: float | None, fmt: Callable[[float], str]) -> str:
    if low is not None and high is not None:
        return f"range {fmt(low)}..{fmt(high)}"
    return f"minimum {fmt(low)}" if low is not None else f"maximum {fmt(high)}" if high is not None else "no bound"


def _failures(
    s: MetricFilterSettings,
    avg_vol: FloatArray,
    avg_dv: FloatArray,
    price: FloatArray,
    spread: FloatArray,
    cap: FloatArray,
    beta: FloatArray,
    *,
    skip: Collection[str] = (),
) -> list[_Check]:
    """(rejected mask, measure, reason given the measure) per check, in reporting order; `skip`ped filters left out."""
    w = s.volume_window_days
    low_vol = _versus("avg volume", "<", s.min_avg_volume, compact_number, " shares")
    low_dv = _versus("avg dollar volume", "<", s.min_avg_dollar_volume, compact_dollars)
    checks: list[_Check] = [
        (np.isnan(avg_vol), avg_vol, lambda v: f"no volume in the last {w} sessions"),
        (avg_vol < s.min_avg_volume, avg_vol, low_vol),
        (~np.isnan(avg_vol) & np.isnan(avg_dv), avg_dv, lambda v: f"no close in the last {w} sessions"),
        (avg_dv < s.min_avg_dollar_volume, avg_dv, low_dv),
        (np.isnan(price), price, lambda v: "no close on the last session"),
        (price < s.min_price, price, _versus("price", "<", s.min_price, _dollars_and_cents)),
    ]
    if "spread" not in skip:
        checks.append((np.isnan(spread), spread, lambda v: "unknown spread"))
        checks.append((spread > s.max_spread_pct, spread, _versus("spread", ">", s.max_spread_pct, _percent)))
    low_cap, high_cap = (None, None) if "market_cap" in skip else (s.min_market_cap, s.max_market_cap)
    if low_cap is not None or high_cap is not None:
        checks.append((np.isnan(cap), cap, lambda v: "unknown market cap"))
    if low_cap is not None:
        checks.append((cap < low_cap, cap, _versus("market cap", "<", low_cap, compact_dollars)))
    if high_cap is not None:
        checks.append((cap > high_cap, cap, _versus("market cap", ">", high_cap, compact_dollars)))
    low_beta, high_beta = (None, None) if "beta" in skip else (s.min_beta, s.max_beta)
    if low_beta is not None or high_beta is not None:
        need, window = default_min_observations(s.beta_window_days), s.beta_window_days
        missing = f"not enough history for beta (needs {need} daily returns in the last {window} sessions)"
        checks.append((np.isnan(beta), beta, lambda v: missing))
    if low_beta is not None:
        checks.append((beta < low_beta, beta, _versus("beta", "<", low_beta, _two_decimals)))
    if high_beta is not None:
        checks.append((beta > high_beta, beta, _versus("beta", ">", high_beta, _two_decimals)))
    return checks


def _versus(
    label: str, op: str, threshold: float, fmt: Callable[[float], str], suffix: str = ""
) -> Callable[[float], str]:
    """Reason "label value op threshold", both shown with `fmt`, or with every digit when they would look equal."""
    shown = fmt(threshold)

    def describe(value: float) -> str:
        text = fmt(value)
        if text == shown:
            return f"{label} {value!r} {op} {float(threshold)!r}{suffix}"
        return f"{label} {text} {op} {shown}{suffix}"

    return describe


def _dollars_and_cents(value: float) -> str:
    return f"${value:.2f}"


def _percent(value: float) -> str:
    return f"{value:.2%}"


def _two_decimals(value: float) -> str:
    return f"{value:.2f}"
