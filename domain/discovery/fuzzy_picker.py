"""Soft scores: liquidity, volatility, momentum and sector balance, nudged by similar past trades.

Each component is a 0..1 membership:
- liquidity: percentile rank of average dollar volume in the universe;
- volatility: triangular membership on annualised volatility, 1 at a moderate level and 0 at
  the quiet and the wild ends (more is not better);
- momentum: mean percentile rank of the short and the long trailing return;
- sector balance: 1 for a sector in neither the portfolio nor the watchlist, falling with its
  exposure (`domain.discovery.scoring.sector_balance_scores`).
A component that cannot be computed (no data) scores 0, except an unknown sector (0.5). The
weighted mean of the components is then moved by the outcomes of similar past trades recalled
from vector memory (as of the run), and clipped to 0..1. The fuzzy picker has no hard filter:
every result has `passed=True`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from domain.agents.schemas import MemoryEvidence
from domain.discovery.config import FuzzyWeights
from domain.discovery.picker import PickerContext, PickerResult, UniverseSnapshot
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

OUTCOME_POINTS = {"WIN": 1.0, "LOSS": 0.0, "FLAT": 0.5}
"""How much a past trade's outcome counts as a win; other labels and None are unknown outcomes."""


@dataclass(frozen=True)
class MemoryVerdict:
    """What similar past trades say about a symbol.

    Attributes:
        wins, losses, flats: past trades by known outcome.
        adjustment: change to the fuzzy score (negative when they mostly lost).
        closest: the nearest trade with a known outcome.
    """

    wins: int
    losses: int
    flats: int
    adjustment: float
    closest: MemoryEvidence

    @property
    def known(self) -> int:
        """Trades with a known outcome."""
        return self.wins + self.losses + self.flats

    def reason(self) -> str:
        """E.g. "memory: 4 of 5 similar past trades lost (closest: '...', -6.1%) → -0.09"."""
        if self.flats:
            tally = f"{self.wins} won, {self.losses} lost, {self.flats} flat of {self.known} similar past trades"
        elif self.losses > self.wins:
            tally = f"{self.losses} of {self.known} similar past trades lost"
        else:
            tally = f"{self.wins} of {self.known} similar past trades won"
        text = self.closest.text if len(self.closest.text) <= 60 else self.closest.text[:59] + "…"
        ret = "" if self.closest.return_pct is None else f", {self.closest.return_pct:+.1%}"
        return f"memory: {tally} (closest: {text!r}{ret}) → {self.adjustment:+.2f}"


def memory_verdict(
    evidence: Sequence[MemoryEvidence], max_adjustment: float, full_evidence: int = 5
) -> MemoryVerdict | None:
    """Score change from similar past trades, or None when none has a known outcome.

    adjustment = max_adjustment x (win_share - 0.5) x 2 x min(1, known / full_evidence), where
    win_share counts a FLAT as half a win. All wins give +max_adjustment, all losses
    -max_adjustment, once `full_evidence` trades are known; less evidence moves the score less.

    Args:
        evidence: similar past trades as recalled as of the run (unknown outcomes are skipped).
        max_adjustment: the largest change, `FuzzyWeights.memory_adjustment`.
        full_evidence: known outcomes needed for the full adjustment.
    """
    known = [(e, p) for e in evidence if (p := _points(e)) is not None]
    if not known:
        return None
    points = [p for _, p in known]
    wins, losses = points.count(1.0), points.count(0.0)
    win_share = sum(points) / len(points)
    strength = min(1.0, len(points) / full_evidence)
    adjustment = max_adjustment * (win_share - 0.5) * 2.0 * strength
    closest = min((e for e, _ in known), key=lambda e: e.distance)
    return MemoryVerdict(wins, losses, len(points) - wins - losses, adjustment, closest)


def _points(evidence: MemoryEvidence) -> float | None:
    return None if evidence.outcome is None else OUTCOME_POINTS.get(evidence.outcome.strip().upper())


@dataclass(frozen=True, eq=False)
class FuzzyEvaluation:
    """Vectorised fuzzy components and scores, one entry per symbol of the universe."""

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
    score: FloatArray


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
        """Components, weighted base score, memory adjustment and final score, vectorised over symbols."""
        return self._evaluate(universe, context)[0]

    def pick(self, universe: UniverseSnapshot, context: PickerContext) -> list[PickerResult]:
        """One result per symbol with each component, and the memory adjustment when there is evidence."""
        ev, verdicts = self._evaluate(universe, context)
        short, long_ = self.momentum_windows
        ideal = f", ideal {self.volatility_band[1]:.0%})"
        liquidity = [
            f"liquidity {s:.2f} (avg dollar volume {d})"
            for s, d in zip(ev.liquidity_score.tolist(), compact_numbers(ev.avg_dollar_volume, "$"), strict=True)
        ]
        volatility = [
            f"volatility {s:.2f} (annualised {v:.0%}{ideal}" if v == v else f"volatility {s:.2f} (not enough history)"
            for s, v in zip(ev.volatility_score.tolist(), ev.volatility.tolist(), strict=True)
        ]
        momentum = [
            f"momentum {s:.2f} ({short}d {a}, {long_}d {b})"
            for s, a, b in zip(
                ev.momentum_score.tolist(),
                signed_percents(ev.return_short),
                signed_percents(ev.return_long),
                strict=True,
            )
        ]
        sector = map(self._sector_reasons(universe, context).__getitem__, universe.sectors)
        reasons: list[tuple[str, ...]] = list(zip(liquidity, volatility, momentum, sector, strict=True))
        for i, verdict in verdicts.items():
            reasons[i] += (verdict.reason(),)
        index = {symbol: i for i, symbol in enumerate(universe.symbols)} if context.similar_trades else {}
        for symbol, evidence in context.similar_trades.items():
            row = index.get(symbol)
            if row is not None and evidence and row not in verdicts:
                reasons[row] += (f"memory: {len(evidence)} similar past trades, none with a known outcome yet",)
        k_short, k_long = f"return_{short}d", f"return_{long_}d"
        columns = (ev.liquidity_score, ev.volatility_score, ev.momentum_score, ev.sector_score, ev.memory_adjustment,
                   ev.avg_dollar_volume, ev.volatility, ev.return_short, ev.return_long)  # fmt: skip
        details = [
            {
                "liquidity": liq,
                "volatility": vol_s,
                "momentum": mom,
                "sector_balance": sec,
                "memory_adjustment": adj,
                "avg_dollar_volume": adv,
                "annualised_volatility": vol,
                k_short: r1,
                k_long: r2,
            }
            for liq, vol_s, mom, sec, adj, adv, vol, r1, r2 in zip(*(c.tolist() for c in columns), strict=True)
        ]
        name = self.name
        return [
            PickerResult(name, symbol, score, True, why, detail)
            for symbol, score, why, detail in zip(universe.symbols, ev.score.tolist(), reasons, details, strict=True)
        ]

    def _evaluate(
        self, universe: UniverseSnapshot, context: PickerContext
    ) -> tuple[FuzzyEvaluation, dict[int, MemoryVerdict]]:
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
        total = w.liquidity + w.volatility + w.momentum + w.sector_balance
        base = (w.liquidity * liquidity + w.volatility * volatility + w.momentum * momentum
                + w.sector_balance * sector) / total  # fmt: skip
        verdicts = self._verdicts(universe, context)
        adjustment = np.zeros(universe.n_symbols)
        for i, verdict in verdicts.items():
            adjustment[i] = verdict.adjustment
        score = np.clip(base + adjustment, 0.0, 1.0)
        evaluation = FuzzyEvaluation(
            adv, vol, r_short, r_long, liquidity, volatility, momentum, sector, base, adjustment, score
        )
        return evaluation, verdicts

    def _verdicts(self, universe: UniverseSnapshot, context: PickerContext) -> dict[int, MemoryVerdict]:
        """Memory verdict per row index, for symbols with similar trades of known outcome."""
        if not context.similar_trades:
            return {}
        index = {symbol: i for i, symbol in enumerate(universe.symbols)}
        verdicts = {}
        for symbol, evidence in context.similar_trades.items():
            i = index.get(symbol)
            if i is None:
                continue
            verdict = memory_verdict(evidence, self.weights.memory_adjustment, self.full_evidence)
            if verdict is not None:
                verdicts[i] = verdict
        return verdicts

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
