"""One picker's scores over a whole universe as arrays, with `PickerResult`s built only on demand.

Scoring every symbol is array arithmetic; building a `PickerResult` with its reason strings for each of
thousands of symbols costs several times more, and a run reports a few dozen of them. A `PickerScores`
therefore holds the score and pass flag of every row of the universe, and builds results (reasons and
details included) only for the rows asked for: `results(rows)`, `result(symbol)`, `best(n)`. The
results are the same objects, field for field, whichever rows are asked for together.

`ListedScores` places a picker that returns a few symbols only (the LLM picker) on the universe's rows:
the rows it did not return have a NaN score.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from domain.discovery.picker import PickerResult
from domain.models.market import FloatArray

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]


def as_rows(rows: Iterable[int] | IntArray) -> IntArray:
    """Row indices as an intp array."""
    if isinstance(rows, np.ndarray):
        return rows.astype(np.intp, copy=False)
    return np.fromiter(rows, dtype=np.intp)


@dataclass(frozen=True, eq=False)
class PickerScores:
    """A picker's verdict on every row of a universe, as arrays; read-only.

    Attributes:
        picker: name of the picker ("metric", "fuzzy", "llm").
        symbols: the universe's symbols, one per row.
        score: (n_symbols,) 0..1 scores, NaN where the picker did not return the symbol.
        passed: (n_symbols,) False where a hard filter rejected the symbol (or it was not returned).
    """

    picker: str
    symbols: tuple[str, ...]
    score: FloatArray
    passed: BoolArray

    def __post_init__(self) -> None:
        n = len(self.symbols)
        if self.score.shape != (n,) or self.passed.shape != (n,):
            raise ValueError(f"{self.picker}: score and passed must have shape ({n},)")

    @property
    def returned(self) -> BoolArray:
        """(n_symbols,) True where the picker returned the symbol."""
        returned: BoolArray = ~np.isnan(self.score)
        return returned

    @cached_property
    def symbol_array(self) -> npt.NDArray[np.str_]:
        """The symbols as a NumPy string array (the tie-breaking sort key)."""
        return np.array(self.symbols)

    @cached_property
    def _row_of(self) -> dict[str, int]:
        return {symbol: i for i, symbol in enumerate(self.symbols)}

    def index(self, symbol: str) -> int | None:
        """Row of `symbol`, or None when it is not in the universe."""
        return self._row_of.get(symbol)

    def results(self, rows: Iterable[int] | IntArray | None = None) -> list[PickerResult]:
        """The results of `rows` (default: every returned row), in that order; rows not returned are skipped."""
        picked = np.flatnonzero(self.returned) if rows is None else as_rows(rows)
        if picked.size and rows is not None:
            picked = picked[self.returned[picked]]
        return self._build(picked) if picked.size else []

    def result(self, symbol: str) -> PickerResult | None:
        """The result of `symbol`, or None when the picker did not return it."""
        row = self.index(symbol)
        found = [] if row is None else self.results([row])
        return found[0] if found else None

    def order(self, rows: IntArray | None = None) -> IntArray:
        """`rows` (default: every returned row) best first: score descending, then symbol ascending."""
        picked = np.flatnonzero(self.returned) if rows is None else rows
        ordered: IntArray = picked[np.lexsort((self.symbol_array[picked], -self.score[picked]))]
        return ordered

    def best(self, n: int) -> IntArray:
        """Rows of the `n` best passing symbols with a score above 0 (score descending, then symbol)."""
        rows = np.flatnonzero(self.passed & (self.score > 0))
        if 0 < n < rows.size:  # only scores at least the n-th largest can make it; ties are sorted below
            kth = np.partition(self.score[rows], rows.size - n)[rows.size - n]
            rows = rows[self.score[rows] >= kth]
        return self.order(rows)[: max(n, 0)]

    def _build(self, rows: IntArray) -> list[PickerResult]:
        """Results of `rows`, all returned by the picker, in that order."""
        raise NotImplementedError(f"{type(self).__name__} does not build results")


@dataclass(frozen=True, eq=False)
class ListedScores(PickerScores):
    """Scores of a picker that returned results for some symbols only, on a universe's rows.

    Attributes:
        listed: row -> the picker's result for that symbol.
    """

    listed: dict[int, PickerResult]

    @classmethod
    def from_results(cls, picker: str, symbols: Sequence[str], results: Sequence[PickerResult]) -> ListedScores:
        """Place `results` on the rows of `symbols`.

        A symbol returned more than once keeps its highest-scoring result (on equal scores a passing
        result beats a rejected one, then the first one wins).

        Raises:
            ValueError: a result of another picker, or of a symbol not in `symbols`.
        """
        row_of = {symbol: i for i, symbol in enumerate(symbols)}
        listed: dict[int, PickerResult] = {}
        for r in results:
            if r.picker != picker:
                raise ValueError(f"result of picker {r.picker!r} for {r.symbol} listed under {picker!r}")
            row = row_of.get(r.symbol)
            if row is None:
                raise ValueError(f"{picker} returned {r.symbol}, which is not in the universe")
            cur = listed.get(row)
            if cur is None or r.score > cur.score or (r.score == cur.score and r.passed and not cur.passed):
                listed[row] = r
        score = np.full(len(symbols), np.nan)
        passed = np.zeros(len(symbols), dtype=bool)
        if listed:
            rows = np.fromiter(listed, dtype=np.intp, count=len(listed))
            score[rows] = np.fromiter((r.score for r in listed.values()), dtype=np.float64, count=len(listed))
            passed[rows] = np.fromiter((r.passed for r in listed.values()), dtype=bool, count=len(listed))
        return cls(picker, tuple(symbols), score, passed, listed)

    def _build(self, rows: IntArray) -> list[PickerResult]:
        return [self.listed[i] for i in rows.tolist()]
