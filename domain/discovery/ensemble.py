"""Merge the pickers' verdicts into one ranked list.

Rules:
- De-duplication: when a picker returns the same symbol more than once, the result with the
  highest score is kept (on equal scores a passing result beats a rejected one, then the first
  one wins).
- Score: weighted mean of the scores of the pickers that returned the symbol, with the
  `EnsembleWeights` renormalised over those pickers (0 when all their weights are 0).
- Hard filters are hard: a symbol rejected by the metric picker scores 0, but is still reported.
- Agreement: a picker agrees when it passed the symbol and scored it at least 0.5; the other
  pickers that returned it dissent.
- Divergence: the metric picker rejects a symbol another picker agrees with, or the picker
  scores spread by at least `divergence_threshold` (needs two pickers).
- Ranking (1 = best): score descending, then number of agreeing pickers descending, then
  symbol ascending, so equal inputs always give the same order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from domain.discovery.config import EnsembleWeights
from domain.discovery.picker import PickerResult
from domain.models.market import FloatArray

BoolArray = npt.NDArray[np.bool_]

PICKER_ORDER = ("metric", "fuzzy", "llm")
HARD_FILTER_PICKER = "metric"
AGREE_SCORE = 0.5
HARD_REJECTION_NOTE = "rejected by the metric picker's hard filter → ensemble score 0"


@dataclass(frozen=True)
class EnsembleResult:
    """The ensemble's verdict on one symbol.

    Attributes:
        symbol: ticker.
        score: 0..1 weighted score (0 when the metric picker's hard filter rejected it).
        rank: 1 = best.
        agreed: pickers that passed the symbol with a score of at least 0.5.
        dissent: pickers that returned the symbol without agreeing.
        divergent: the pickers disagree strongly (see `divergence_reason`).
        divergence_reason: why, or None.
        components: picker -> its score for the symbol.
        reasons: divergence and hard-filter notes first, then one line per picker with its reasons.
    """

    symbol: str
    score: float
    rank: int
    agreed: tuple[str, ...]
    dissent: tuple[str, ...]
    divergent: bool
    divergence_reason: str | None
    components: Mapping[str, float]
    reasons: tuple[str, ...]


class EnsembleCombiner:
    """Weighted merge of picker results with agreement and divergence bookkeeping."""

    def __init__(self, weights: EnsembleWeights, divergence_threshold: float = 0.5) -> None:
        """Create the combiner.

        Args:
            weights: weight of each picker (renormalised over the pickers that returned a symbol).
            divergence_threshold: a spread of picker scores at or above this flags divergence.
        """
        if not 0.0 <= divergence_threshold <= 1.0:
            raise ValueError(f"divergence_threshold must be within 0..1, got {divergence_threshold}")
        self.weights = weights
        self.divergence_threshold = divergence_threshold

    def combine(self, results_by_picker: Mapping[str, Sequence[PickerResult]]) -> list[EnsembleResult]:
        """Merge, score, flag and rank every symbol any picker returned.

        Args:
            results_by_picker: picker name ("metric", "fuzzy", "llm") -> its results.

        Returns:
            One result per distinct symbol, best first.
        """
        unknown = sorted(set(results_by_picker) - set(PICKER_ORDER))
        if unknown:
            raise ValueError(f"unknown pickers {unknown}; known: {', '.join(PICKER_ORDER)}")
        names = [p for p in PICKER_ORDER if p in results_by_picker]
        kept = {name: _dedupe(name, results_by_picker[name]) for name in names}
        symbols = list(dict.fromkeys(s for name in names for s in kept[name]))
        if not symbols:
            return []
        scores, passed = _matrices(symbols, [kept[name] for name in names])
        vote = self._vote(names, symbols, scores, passed)

        # Per-symbol picker sets as bit patterns; the name tuples of each pattern are built once.
        bits = (1 << np.arange(len(names)))[:, None]
        agree_codes: list[int] = (vote.agrees * bits).sum(axis=0).tolist()
        present_codes: list[int] = (vote.present * bits).sum(axis=0).tolist()
        rows_of = [tuple(j for j in range(len(names)) if code >> j & 1) for code in range(1 << len(names))]
        names_of = [tuple(names[j] for j in rows) for rows in rows_of]
        agreed = [names_of[code] for code in agree_codes]
        dissent = [names_of[p & ~a] for p, a in zip(present_codes, agree_codes, strict=True)]
        components = [
            {names[j]: column[j] for j in rows_of[code]}
            for column, code in zip(scores.T.tolist(), present_codes, strict=True)
        ]
        divergence: dict[int, str] = {}
        for i in np.flatnonzero(vote.filter_divergent).tolist():
            rejection = kept[HARD_FILTER_PICKER][symbols[i]]
            divergence[i] = _filter_divergence(rejection, agreed[i], components[i])
        for i in np.flatnonzero(vote.spread_divergent & ~vote.filter_divergent).tolist():
            divergence[i] = _spread_divergence(float(vote.spread[i]), self.divergence_threshold, components[i])
        hard = vote.hard_rejected.tolist()
        lines = [{sym: f"{name}: " + "; ".join(r.reasons) for sym, r in kept[name].items()} for name in names]
        score_list = vote.score.tolist()
        out = []
        for rank, i in enumerate(vote.order.tolist(), start=1):
            symbol, reason = symbols[i], divergence.get(i)
            notes = ((reason,) if reason else ()) + ((HARD_REJECTION_NOTE,) if hard[i] else ())
            why = (*notes, *(lines[j][symbol] for j in rows_of[present_codes[i]]))
            out.append(
                EnsembleResult(
                    symbol, score_list[i], rank, agreed[i], dissent[i], reason is not None, reason, components[i], why
                )
            )
        return out

    def _vote(self, names: list[str], symbols: list[str], scores: FloatArray, passed: BoolArray) -> _Vote:
        """Scores, agreement, divergence flags and ranking order, vectorised over symbols."""
        present = ~np.isnan(scores)
        weight = np.array([getattr(self.weights, name) for name in names])[:, None]
        numerator = np.where(present, scores * weight, 0.0).sum(axis=0)
        denominator = np.where(present, weight, 0.0).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.clip(np.where(denominator > 0, numerator / denominator, 0.0), 0.0, 1.0)
        agrees = present & passed & (scores >= AGREE_SCORE)
        hard_rejected = np.zeros(len(symbols), dtype=bool)
        if HARD_FILTER_PICKER in names:
            m = names.index(HARD_FILTER_PICKER)
            hard_rejected = present[m] & ~passed[m]
            score[hard_rejected] = 0.0
        n_agree = agrees.sum(axis=0)
        spread = np.where(present, scores, -np.inf).max(axis=0) - np.where(present, scores, np.inf).min(axis=0)
        return _Vote(
            score=score,
            agrees=agrees,
            present=present,
            hard_rejected=hard_rejected,
            spread=spread,
            spread_divergent=(present.sum(axis=0) >= 2) & (spread >= self.divergence_threshold),
            filter_divergent=hard_rejected & (n_agree > 0),
            order=np.lexsort((np.array(symbols), -n_agree, -score)),
        )


@dataclass(frozen=True, eq=False)
class _Vote:
    """Vectorised outcome of the merge: (n_symbols,) arrays, (n_pickers, n_symbols) for agrees/present."""

    score: FloatArray
    agrees: BoolArray
    present: BoolArray
    hard_rejected: BoolArray
    spread: FloatArray
    spread_divergent: BoolArray
    filter_divergent: BoolArray
    order: npt.NDArray[np.intp]


def _matrices(symbols: list[str], kept: list[dict[str, PickerResult]]) -> tuple[FloatArray, BoolArray]:
    """(n_pickers, n_symbols) scores (NaN where a picker did not return the symbol) and passed flags."""
    index = {s: i for i, s in enumerate(symbols)}
    scores = np.full((len(kept), len(symbols)), np.nan)
    passed = np.zeros((len(kept), len(symbols)), dtype=bool)
    for j, rows in enumerate(kept):
        cols = np.fromiter(map(index.__getitem__, rows), dtype=np.intp, count=len(rows))
        scores[j, cols] = np.fromiter((r.score for r in rows.values()), dtype=np.float64, count=len(rows))
        passed[j, cols] = np.fromiter((r.passed for r in rows.values()), dtype=bool, count=len(rows))
    return scores, passed


def _dedupe(name: str, results: Sequence[PickerResult]) -> dict[str, PickerResult]:
    """Symbol -> the highest-scoring result (passing before rejected on equal scores, then the first)."""
    for r in results:
        if r.picker != name:
            raise ValueError(f"result of picker {r.picker!r} for {r.symbol} listed under {name!r}")
    best = {r.symbol: r for r in results}
    if len(best) == len(results):  # no duplicates: the usual case
        return best
    best = {}
    for r in results:
        cur = best.get(r.symbol)
        if cur is None or r.score > cur.score or (r.score == cur.score and r.passed and not cur.passed):
            best[r.symbol] = r
    return best


def _filter_divergence(rejection: PickerResult, agreed: tuple[str, ...], components: Mapping[str, float]) -> str:
    why = "; ".join(rejection.reasons) or "hard filter"
    picks = ", ".join(f"{name} picks ({components[name]:.2f})" for name in agreed)
    return f"metric rejects ({why}) but {picks}"


def _spread_divergence(spread: float, threshold: float, components: Mapping[str, float]) -> str:
    scores = ", ".join(f"{name} {value:.2f}" for name, value in components.items())
    return f"picker scores spread {spread:.2f} >= {threshold:.2f} ({scores})"
