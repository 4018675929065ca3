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

`combine_scores` merges whole-universe `PickerScores` as arrays and returns an `EnsembleScores`, which
builds `EnsembleResult`s (with reasons) only for the symbols asked for; `combine` merges lists of
`PickerResult`s (any symbols) through the same path and returns every result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from domain.discovery.config import EnsembleWeights
from domain.discovery.ensemble_scores import (
    AGREE_SCORE,
    HARD_FILTER_PICKER,
    HARD_REJECTION_NOTE,
    PICKER_ORDER,
    EnsembleResult,
    EnsembleScores,
    ranking,
)
from domain.discovery.picker import PickerResult
from domain.discovery.picker_scores import ListedScores, PickerScores

__all__ = [
    "AGREE_SCORE",
    "HARD_FILTER_PICKER",
    "HARD_REJECTION_NOTE",
    "PICKER_ORDER",
    "EnsembleCombiner",
    "EnsembleResult",
    "EnsembleScores",
]


class EnsembleCombiner:
    """Weighted merge of picker verdicts with agreement and divergence bookkeeping."""

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
        _check_names(results_by_picker)
        names = [p for p in PICKER_ORDER if p in results_by_picker]
        symbols = tuple(dict.fromkeys(r.symbol for name in names for r in results_by_picker[name]))
        listed = {name: ListedScores.from_results(name, symbols, results_by_picker[name]) for name in names}
        return self.combine_scores(listed).ranked()

    def combine_scores(self, scores_by_picker: Mapping[str, PickerScores]) -> EnsembleScores:
        """Merge whole-universe scores as arrays; results are built later, for the symbols asked for.

        A picker that returned some symbols only (NaN scores elsewhere, e.g. `ListedScores` of the LLM
        picker) counts only where it returned one: the weights are renormalised per symbol.

        Args:
            scores_by_picker: picker name ("metric", "fuzzy", "llm") -> its scores over one universe.

        Returns:
            Scores, agreement, divergence and ranking of every symbol.

        Raises:
            ValueError: an unknown picker, scores listed under another picker's name, or different universes.
        """
        _check_names(scores_by_picker)
        names = [p for p in PICKER_ORDER if p in scores_by_picker]
        pickers = tuple(scores_by_picker[name] for name in names)
        symbols = pickers[0].symbols if pickers else ()
        for name, picker in zip(names, pickers, strict=True):
            if picker.picker != name:
                raise ValueError(f"scores of picker {picker.picker!r} listed under {name!r}")
            if picker.symbols is not symbols and picker.symbols != symbols:
                raise ValueError(f"{name} scored another universe than {names[0]}")
        scores = np.stack([p.score for p in pickers]) if pickers else np.empty((0, 0))
        passed = np.stack([p.passed for p in pickers]) if pickers else np.empty((0, 0), dtype=bool)
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
        spread = np.where(present, scores, -np.inf).max(axis=0, initial=-np.inf) - np.where(
            present, scores, np.inf
        ).min(axis=0, initial=np.inf)
        filter_divergent = hard_rejected & (n_agree > 0)
        divergent = filter_divergent | ((present.sum(axis=0) >= 2) & (spread >= self.divergence_threshold))
        returned = present.any(axis=0)
        rows = None if returned.all() else np.flatnonzero(returned)
        order = ranking(pickers[0].symbol_array if pickers else np.array([], dtype=str), score, n_agree, rows)
        return EnsembleScores(pickers, symbols, score, present, agrees, hard_rejected, spread, divergent,
                              filter_divergent, order, self.divergence_threshold)  # fmt: skip


def _check_names(by_picker: Mapping[str, object]) -> None:
    unknown = sorted(set(by_picker) - set(PICKER_ORDER))
    if unknown:
        raise ValueError(f"unknown pickers {unknown}; known: {', '.join(PICKER_ORDER)}")
