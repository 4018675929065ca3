"""Soft scores: liquidity, volatility, momentum and sector balance, nudged by similar past trades.

Each component is a 0..1 membership:
- liquidity: percentile rank of average dollar volume in the universe;
- volatility: triangular membership on annualised volatility, 1 at a moderate level and 0 at
  the quiet and the wild ends (more is not better);
- momentum: mean percentile rank of the short and the long trailing return;
- sector balance: 1 for a sector in neither the portfolio nor the watchlist, falling with its
  exposure (`domain.discovery.scoring.sector_balance_scores`).
A component that cannot be computed (no data) scores 0, except an unknown sector (0.5). When no
symbol's sector is known at all, sector balance cannot tell symbols apart: it is left out of the
weighted mean (unless it is the only weighted component), with a stated reason (`skipped`). The
weighted mean of the components is then moved by the outcomes of similar past trades recalled
from vector memory (as of the run), and clipped to 0..1. The fuzzy picker has no hard filter:
every result has `passed=True`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from domain.discovery.config import FuzzyWeights
from domain.discovery.memory_verdict import OUTCOME_POINTS, MemoryVerdict, memory_verdict
from domain.discovery.picker import PickerContext, PickerResult, UniverseSnapshot
from domain.discovery.picker_scores import IntArray, PickerScores
from domain.discovery.scoring import (
    annualised_volatility,
    average_dollar_volume,
    compact_numbers,
    percentile_rank,
    sector_balance_scores,
    sector_exposures,
    signed_percents,
    trailing_return,
    triangular_membership,
)
from domain.models.market import FloatArray

__all__ = ["OUTCOME_POINTS", "FuzzyEvaluation", "FuzzyPicker", "MemoryVerdict", "memory_verdict"]


@dataclass(frozen=True, eq=False)
class FuzzyEvaluation(PickerScores):
    """Vectorised fuzzy components and scores, one entry per symbol of the universe (`passed` is all True).

    Results (a reason per component, and one for similar past trades) are built for the rows asked for.

    Attributes:
        avg_dollar_volume, volatility, return_short, return_long: the raw measures (NaN where unknown).
        liquidity_score, volatility_score, momentum_score, sector_score: the 0..1 components.
        base_score: weighted mean of the components.
        memory_adjustment: change from similar past trades (0 without known outcomes).
        sectors: sector per row, None when unknown.
        sector_reasons: sector -> its sector-balance reason.
        verdicts: row -> what its similar past trades with known outcomes say.
        unknown_outcomes: row -> number of similar past trades, for rows none of whose trades has a known outcome.
        momentum_windows: (short, long) trailing-return lookbacks in days.
        ideal_volatility: annualised volatility scoring 1.
        skipped: component ("sector_balance") -> why it was left out of the weighted mean; empty when none was.
    """

    avg_dollar_volume: FloatArray
    volatility: FloatArray
    return_short: FloatArray
    return_long: FloatArray
    liquidity_score: FloatArray
    volatility_score: FloatArray
    momentum_score: FloatArray
    sector_score: FloatArray
    base_score: FloatArray
    memory_adjustment: FloatArray
    sectors: tuple[str | None, ...]
    sector_reasons: Mapping[str | None, str]
    verdicts: Mapping[int, MemoryVerdict]
    unknown_outcomes: Mapping[int, int]
    momentum_windows: tuple[int, int]
    ideal_volatility: float
    skipped: Mapping[str, str] = field(default_factory=dict)

    def _build(self, rows: IntArray) -> list[PickerResult]:
        short, long_ = self.momentum_windows
        ideal = f", ideal {self.ideal_volatility:.0%})"
        dollars = compact_numbers(self.avg_dollar_volume[rows], "$")
        liquidity = [
            f"liquidity {s:.2f} (avg dollar volume {d})"
            for s, d in zip(self.liquidity_score[rows].tolist(), dollars, strict=True)
        ]
        volatility = [
            f"volatility {s:.2f} (annualised {v:.0%}{ideal}" if v == v else f"volatility {s:.2f} (not enough history)"
            for s, v in zip(self.volatility_score[rows].tolist(), self.volatility[rows].tolist(), strict=True)
        ]
        returns = zip(signed_percents(self.return_short[rows]), signed_percents(self.return_long[rows]), strict=True)
        momentum = [
            f"momentum {s:.2f} ({short}d {a}, {long_}d {b})"
            for s, (a, b) in zip(self.momentum_score[rows].tolist(), returns, strict=True)
        ]
        k_short, k_long = f"return_{short}d", f"return_{long_}d"
        columns = (self.liquidity_score, self.volatility_score, self.momentum_score, self.sector_score,
                   self.memory_adjustment, self.avg_dollar_volume, self.volatility, self.return_short,
                   self.return_long)  # fmt: skip
        out = []
        for k, (i, score, liq, vol_s, mom, sec, adj, adv, vol, r1, r2) in enumerate(
            zip(rows.tolist(), self.score[rows].tolist(), *(c[rows].tolist() for c in columns), strict=True)
        ):
            why: tuple[str, ...] = (liquidity[k], volatility[k], momentum[k], self.sector_reasons[self.sectors[i]])
            verdict = self.verdicts.get(i)
            if verdict is not None:
                why += (verdict.reason(),)
            elif i in self.unknown_outcomes:
                why += (f"memory: {self.unknown_outcomes[i]} similar past trades, none with a known outcome yet",)
            details = {"liquidity": liq, "volatility": vol_s, "momentum": mom, "sector_balance": sec,
                       "memory_adjustment": adj, "avg_dollar_volume": adv, "annualised_volatility": vol,
                       k_short: r1, k_long: r2}  # fmt: skip
            out.append(PickerResult(self.picker, self.symbols[i], score, True, why, details))
        return out


class FuzzyPicker:
    """Weighted fuzzy score of every symbol, adjusted by similar past trades."""

    name = "fuzzy"

    def __init__(
        self,
        weights: FuzzyWeights,
        *,
        volume_window: int = 20,
        volatility_window: int = 60,
        volatility_band: tuple[float, float, float] = (0.10, 0.30, 0.70),
        momentum_windows: tuple[int, int] = (20, 60),
        skip_last_day: bool = False,
        sector_saturation: float = 0.4,
        full_evidence: int = 5,
    ) -> None:
        """Create the picker.

        Args:
            weights: component weights and the largest memory adjustment.
            volume_window: days of the average dollar volume.
            volatility_window: days of daily returns behind the annualised volatility.
            volatility_band: annualised volatility (low, ideal, high) of the triangular membership.
            momentum_windows: (short, long) trailing-return lookbacks in days.
            skip_last_day: leave the newest day out of the momentum returns.
            sector_saturation: sector exposure at which sector balance reaches 0.
            full_evidence: similar trades with known outcomes needed for the full memory adjustment.
        """
        low, peak, high = volatility_band
        if not low < peak < high:
            raise ValueError(f"volatility_band must be increasing, got {volatility_band}")
        self.weights = weights
        self.volume_window = volume_window
        self.volatility_window = volatility_window
        self.volatility_band = volatility_band
        self.momentum_windows = momentum_windows
        self.skip = 1 if skip_last_day else 0
        self.sector_saturation = sector_saturation
        self.full_evidence = full_evidence

    def evaluate(self, universe: UniverseSnapshot, context: PickerContext) -> FuzzyEvaluation:
        """Components, weighted base score, memory adjustment and final score, vectorised over symbols.

        Args:
            universe: the candidates.
            context: the portfolio's and watchlist's sector mix and the similar past trades.

        Returns:
            The scores of every symbol; results with reasons are built on demand (`results`).
        """
        w = self.weights
        adv = average_dollar_volume(universe.close, universe.volume, self.volume_window)
        vol = annualised_volatility(universe.returns, self.volatility_window)
        r_short = trailing_return(universe.close, self.momentum_windows[0], self.skip)
        r_long = trailing_return(universe.close, self.momentum_windows[1], self.skip)
        liquidity = np.nan_to_num(percentile_rank(adv), nan=0.0)
        volatility = np.nan_to_num(triangular_membership(vol, *self.volatility_band), nan=0.0)
        p_short, p_long = percentile_rank(r_short), percentile_rank(r_long)
        momentum = np.where(np.isnan(p_short), p_long, np.where(np.isnan(p_long), p_short, (p_short + p_long) / 2))
        momentum = np.nan_to_num(momentum, nan=0.0)
        sector = sector_balance_scores(
            universe.sectors, context.held_sectors, context.watchlist_sectors, self.sector_saturation
        )
        others = w.liquidity + w.volatility + w.momentum
        skipped: dict[str, str] = {}
        sector_weight = w.sector_balance
        if w.sector_balance > 0 and others > 0 and universe.n_symbols and all(x is None for x in universe.sectors):
            every = "the symbol" if universe.n_symbols == 1 else f"any of the {universe.n_symbols:,} symbols"
            skipped["sector_balance"] = f"sector balance skipped: no sector known for {every}"
            sector_weight = 0.0
        base = (w.liquidity * liquidity + w.volatility * volatility + w.momentum * momentum
                + sector_weight * sector) / (others + sector_weight)  # fmt: skip
        sector_reasons: Mapping[str | None, str] = (
            {None: skipped["sector_balance"]} if skipped else self._sector_reasons(universe, context))
        verdicts, unknown = self._verdicts(universe, context)
        adjustment = np.zeros(universe.n_symbols)
        for i, verdict in verdicts.items():
            adjustment[i] = verdict.adjustment
        score = np.clip(base + adjustment, 0.0, 1.0)
        return FuzzyEvaluation(
            self.name, universe.symbols, score, np.ones(universe.n_symbols, dtype=bool), adv, vol, r_short, r_long,
            liquidity, volatility, momentum, sector, base, adjustment, universe.sectors,
            sector_reasons, verdicts, unknown, self.momentum_windows, self.volatility_band[1], skipped,
        )  # fmt: skip

    def pick(self, universe: UniverseSnapshot, context: PickerContext) -> list[PickerResult]:
        """One result per symbol with each component, and the memory adjustment when there is evidence."""
        return self.evaluate(universe, context).results()

    def _verdicts(
        self, universe: UniverseSnapshot, context: PickerContext
    ) -> tuple[dict[int, MemoryVerdict], dict[int, int]]:
        """Memory verdict per row with similar trades of known outcome; trade count per row with only unknown ones."""
        if not context.similar_trades:
            return {}, {}
        index = {symbol: i for i, symbol in enumerate(universe.symbols)}
        verdicts, unknown = {}, {}
        for symbol, evidence in context.similar_trades.items():
            i = index.get(symbol)
            if i is None:
                continue
            verdict = memory_verdict(evidence, self.weights.memory_adjustment, self.full_evidence)
            if verdict is not None:
                verdicts[i] = verdict
            elif evidence:
                unknown[i] = len(evidence)
        return verdicts, unknown

    def _sector_reasons(self, universe: UniverseSnapshot, context: PickerContext) -> dict[str | None, str]:
        exposures = sector_exposures(context.held_sectors, context.watchlist_sectors)
        unique = list(dict.fromkeys(universe.sectors))
        scores = sector_balance_scores(unique, context.held_sectors, context.watchlist_sectors, self.sector_saturation)
        reasons: dict[str | None, str] = {}
        for sector, score in zip(unique, scores.tolist(), strict=True):
            if sector is None:
                reasons[sector] = f"sector balance {score:.2f} (sector unknown)"
            elif exposures.get(sector, 0.0) > 0:
                share = exposures[sector]
                reasons[sector] = f"sector balance {score:.2f} ({sector} at {share:.0%} of portfolio or watchlist)"
            else:
                reasons[sector] = f"sector balance {score:.2f} ({sector} not in portfolio or watchlist)"
        return reasons
