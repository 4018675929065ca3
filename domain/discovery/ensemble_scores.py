"""The ensemble's verdict on a whole universe as arrays, with `EnsembleResult`s built only on demand.

`EnsembleCombiner.combine_scores` (see `domain.discovery.ensemble` for the rules) fills an
`EnsembleScores`: scores, agreement, divergence flags and the ranking of every symbol. An
`EnsembleResult`, with its reasons (the pickers' own reasons included), is built only for the rows
asked for: the best ones (`top`), a few symbols (`results_for`, `result`) or all of them (`ranked`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from domain.discovery.picker import PickerResult
from domain.discovery.picker_scores import BoolArray, IntArray, PickerScores, as_rows
from domain.models.market import FloatArray

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


@dataclass(frozen=True, eq=False)
class EnsembleScores:
    """The merged verdict on every row of a universe; read-only arrays.

    Attributes:
        pickers: the merged pickers' scores, in `PICKER_ORDER`, all over `symbols`.
        symbols: the universe's symbols, one per row.
        score: (n_symbols,) ensemble score (0 where no picker returned the symbol).
        present: (n_pickers, n_symbols) the picker returned the symbol.
        agrees: (n_pickers, n_symbols) the picker passed the symbol with a score of at least 0.5.
        hard_rejected: (n_symbols,) the metric picker's hard filter rejected the symbol.
        spread: (n_symbols,) highest less lowest picker score.
        divergent: (n_symbols,) the pickers disagree strongly.
        filter_divergent: (n_symbols,) divergent because the metric picker rejects what another picker agrees with.
        order: rows best first (score, then agreeing pickers, then symbol); rows no picker returned are left out.
        divergence_threshold: the spread that flags divergence.
    """

    pickers: tuple[PickerScores, ...]
    symbols: tuple[str, ...]
    score: FloatArray
    present: BoolArray
    agrees: BoolArray
    hard_rejected: BoolArray
    spread: FloatArray
    divergent: BoolArray
    filter_divergent: BoolArray
    order: IntArray
    divergence_threshold: float

    @property
    def names(self) -> tuple[str, ...]:
        """The merged pickers' names, in `PICKER_ORDER`."""
        return tuple(p.picker for p in self.pickers)

    def __len__(self) -> int:
        """Number of ranked symbols (returned by at least one picker)."""
        return int(self.order.size)

    @cached_property
    def rank(self) -> IntArray:
        """(n_symbols,) rank of each row, 1 = best; 0 for rows no picker returned."""
        rank = np.zeros(len(self.symbols), dtype=np.intp)
        rank[self.order] = np.arange(1, self.order.size + 1)
        return rank

    @cached_property
    def _row_of(self) -> dict[str, int]:
        return {symbol: i for i, symbol in enumerate(self.symbols)}

    def top(self, n: int) -> list[EnsembleResult]:
        """The `n` best results, best first."""
        return self.results(self.order[: max(n, 0)])

    def ranked(self) -> list[EnsembleResult]:
        """Every ranked symbol's result, best first (what `EnsembleCombiner.combine` returns)."""
        return self.results(self.order)

    def result(self, symbol: str) -> EnsembleResult | None:
        """The result of `symbol`, or None when no picker returned it."""
        found = self.results_for([symbol])
        return found[0] if found else None

    def results_for(self, symbols: Iterable[str]) -> list[EnsembleResult]:
        """The results of those of `symbols` some picker returned, in the order given."""
        rows = [i for s in symbols if (i := self._row_of.get(s)) is not None]
        return self.results(rows)

    def results(self, rows: Iterable[int] | IntArray) -> list[EnsembleResult]:
        """The results of `rows`, in the order given; rows no picker returned are skipped."""
        rows = as_rows(rows)
        rows = rows[self.rank[rows] > 0] if rows.size else rows
        if not rows.size:
            return []
        names = self.names
        n = len(names)
        # Per-row picker sets as bit patterns; the name tuples of each pattern are built once.
        bits = (1 << np.arange(n))[:, None]
        agree_codes: list[int] = (self.agrees[:, rows] * bits).sum(axis=0).tolist()
        present_codes: list[int] = (self.present[:, rows] * bits).sum(axis=0).tolist()
        members = [tuple(j for j in range(n) if code >> j & 1) for code in range(1 << n)]
        names_of = [tuple(names[j] for j in js) for js in members]
        built: list[dict[int, PickerResult]] = []
        for j, picker in enumerate(self.pickers):
            mine = rows[self.present[j, rows]]
            built.append(dict(zip(mine.tolist(), picker.results(mine), strict=True)))
        columns = np.stack([p.score[rows] for p in self.pickers]).T.tolist()
        scores, ranks = self.score[rows].tolist(), self.rank[rows].tolist()
        spreads, divergent = self.spread[rows].tolist(), self.divergent[rows].tolist()
        by_filter, hard = self.filter_divergent[rows].tolist(), self.hard_rejected[rows].tolist()
        metric = names.index(HARD_FILTER_PICKER) if HARD_FILTER_PICKER in names else -1
        out = []
        for k, i in enumerate(rows.tolist()):
            present, agreed = members[present_codes[k]], names_of[agree_codes[k]]
            components = {names[j]: columns[k][j] for j in present}
            reason = None
            if by_filter[k]:
                reason = _filter_divergence(built[metric][i], agreed, components)
            elif divergent[k]:
                reason = _spread_divergence(spreads[k], self.divergence_threshold, components)
            notes = ((reason,) if reason else ()) + ((HARD_REJECTION_NOTE,) if hard[k] else ())
            lines = tuple(f"{names[j]}: " + "; ".join(built[j][i].reasons) for j in present)
            dissent = names_of[present_codes[k] & ~agree_codes[k]]
            out.append(EnsembleResult(self.symbols[i], scores[k], ranks[k], agreed, dissent, reason is not None, reason,
                                      components, (*notes, *lines)))  # fmt: skip
        return out


def _filter_divergence(rejection: PickerResult, agreed: tuple[str, ...], components: Mapping[str, float]) -> str:
    why = "; ".join(rejection.reasons) or "hard filter"
    picks = ", ".join(f"{name} picks ({components[name]:.2f})" for name in agreed)
    return f"metric rejects ({why}) but {picks}"


def _spread_divergence(spread: float, threshold: float, components: Mapping[str, float]) -> str:
    scores = ", ".join(f"{name} {value:.2f}" for name, value in components.items())
    return f"picker scores spread {spread:.2f} >= {threshold:.2f} ({scores})"


def ranking(symbols: npt.NDArray[np.str_], score: FloatArray, n_agree: IntArray, rows: IntArray | None) -> IntArray:
    """`rows` (default all) by score descending, then agreeing pickers descending, then symbol ascending."""
    if rows is None:
        order: IntArray = np.lexsort((symbols, -n_agree, -score))
        return order
    ordered: IntArray = rows[np.lexsort((symbols[rows], -n_agree[rows], -score[rows]))]
    return ordered
