"""A suite's answers as (rows x repeats) arrays and the cluster bootstrap over them.

Intervals resample rows with all their repeats: repeats of one scenario are not independent evidence, so they
never narrow an interval as if they were. Statistics are taken over the valid answers (the `ok` mask).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from application.evals.suites import Answer, EvalRow
from domain.evals.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, Array, Estimate, bootstrap_ci


@dataclass(frozen=True, slots=True)
class Resampling:
    """How intervals are computed."""

    n_resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    seed: int = 0


@dataclass(frozen=True)
class Grid:
    """A suite's answers as (rows x repeats) arrays.

    Attributes:
        rows: the rows, in order.
        answers: answers[i][j] is repeat j of row i.
        ok: whether each answer is valid.
    """

    rows: Sequence[EvalRow]
    answers: list[list[Answer]]
    ok: Array

    @classmethod
    def of(cls, rows: Sequence[EvalRow], answers: Sequence[Answer], repeats: int) -> Grid:
        """Lay out the answers; every row must have one answer per repeat.

        Raises:
            ValueError: an answer is missing or repeated.
        """
        by_row: dict[str, list[Answer | None]] = {r.id: [None] * repeats for r in rows}
        for a in answers:
            slot = by_row[a.row_id]
            if slot[a.repeat] is not None:
                raise ValueError(f"two answers to {a.row_id} repeat {a.repeat}")
            slot[a.repeat] = a
        table: list[list[Answer]] = []
        for r in rows:
            got = by_row[r.id]
            if any(a is None for a in got):
                raise ValueError(f"row {r.id} lacks an answer")
            table.append([a for a in got if a is not None])
        ok = np.array([[a.ok for a in line] for line in table], dtype=bool).reshape(len(rows), repeats)
        return cls(rows, table, ok)

    @property
    def repeats(self) -> int:
        """Answers per row."""
        return int(self.ok.shape[1])

    def answer_values(self, get: Callable[[Answer], float | None]) -> Array:
        """A float per answer (NaN for a failure or a missing field)."""
        def value(a: Answer) -> float:
            v = get(a) if a.ok else None
            return math.nan if v is None else float(v)

        return np.array([[value(a) for a in line] for line in self.answers],
                        dtype=np.float64).reshape(self.ok.shape)

    def row_values(self, get: Callable[[Any], float]) -> Array:
        """A float per row, repeated across its answers."""
        col = np.array([get(r) for r in self.rows], dtype=np.float64).reshape(-1, 1)
        return np.repeat(col, self.repeats, axis=1)


def answered(statistic: Callable[..., float]) -> Callable[..., float]:
    """`statistic` of the valid answers of a resample (first argument: the `ok` mask)."""

    def over_valid(ok: Array, *arrays: Array) -> float:
        mask = ok.ravel()
        if not mask.any():
            return math.nan
        return float(statistic(*(a.ravel()[mask] for a in arrays)))

    return over_valid


def cluster_ci(statistic: Callable[..., float], g: Grid, *arrays: Array, how: Resampling) -> Estimate:
    """Bootstrap interval of `statistic` over the valid answers, resampling rows with their repeats; n = answers."""
    est = bootstrap_ci(answered(statistic), g.ok, *arrays, n_resamples=how.n_resamples,
                       confidence=how.confidence, seed=how.seed)
    return replace(est, n=int(g.ok.sum()))


def failure_rate(g: Grid, how: Resampling) -> Estimate:
    """Share of answers that failed (n = every answer)."""
    est = bootstrap_ci(lambda ok: float(np.mean(~ok)), g.ok, n_resamples=how.n_resamples,
                       confidence=how.confidence, seed=how.seed)
    return replace(est, n=int(g.ok.size))


def mean(x: Array) -> float:
    return float(np.mean(x))
