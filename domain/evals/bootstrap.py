"""Bootstrap confidence intervals: independent (Efron) and stationary-block (Politis & Romano) resampling.

- `bootstrap_ci`: percentile interval of any statistic of one or more aligned arrays (rows resampled together).
- `stationary_indices`: the stationary bootstrap of Politis, D. N. and Romano, J. P. (1994), "The Stationary
  Bootstrap", JASA 89(428): blocks start at a uniform random index, their lengths are geometric with mean
  `block_length`, and the series wraps around; it keeps the serial dependence of returns that an independent
  resample would destroy.
- `paired_bootstrap`: the difference of a statistic between two aligned series (the same scenarios or the
  same sessions), resampled together so that what the two share cancels out.

Percentile intervals follow Efron, B. and Tibshirani, R. (1993), *An Introduction to the Bootstrap*, ch. 13.
Every function takes a `seed`: the same inputs and seed give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
IntArray = npt.NDArray[np.int64]
Statistic = Callable[..., float]

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class Estimate:
    """A statistic with its bootstrap percentile interval.

    Attributes:
        value: the statistic on the full sample (NaN when undefined, e.g. precision with no positive call).
        low: lower end of the interval (NaN when too few resamples were defined).
        high: upper end of the interval.
        confidence: coverage of the interval (0.95 = 95%).
        n: observations (rows or sessions).
    """

    value: float
    low: float
    high: float
    confidence: float
    n: int

    def excludes(self, x: float) -> bool:
        """Whether the interval lies entirely on one side of `x` (False when the interval is undefined)."""
        return bool(self.low > x or self.high < x)

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-friendly form (None for NaN)."""
        return {"value": _none(self.value), "low": _none(self.low), "high": _none(self.high),
                "confidence": self.confidence, "n": self.n}


def _none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _rows(arrays: tuple[Any, ...]) -> tuple[list[Array], int]:
    if not arrays:
        raise ValueError("need at least one array")
    arrs = [np.asarray(a) for a in arrays]
    n = len(arrs[0])
    if any(len(a) != n for a in arrs):
        raise ValueError("arrays must have the same length (one row per observation)")
    if n == 0:
        raise ValueError("need at least one observation")
    return arrs, n


def _check(confidence: float, n_resamples: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")


def _percentiles(values: Array, confidence: float) -> tuple[float, float]:
    """The percentile interval of the defined (finite) resampled values; NaN when fewer than half are defined."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0 or len(finite) < len(values) / 2:
        return math.nan, math.nan
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return float(low), float(high)


def iid_indices(n: int, n_resamples: int, rng: np.random.Generator) -> IntArray:
    """`n_resamples` rows of `n` indices drawn uniformly with replacement."""
    return rng.integers(0, n, size=(n_resamples, n), dtype=np.int64)


def default_block_length(n: int) -> float:
    """Mean block length n^(1/3), the order of the optimal block length for variance-type statistics
    (Hall, Horowitz and Jing, 1995, "On blocking rules for the bootstrap with dependent data", Biometrika 82)."""
    return max(1.0, float(round(n ** (1 / 3))))


def stationary_indices(n: int, n_resamples: int, block_length: float, rng: np.random.Generator) -> IntArray:
    """Stationary-bootstrap index rows (Politis & Romano, 1994).

    Each row starts at a uniform index; at every step a new block starts (at a uniform index) with probability
    1 / `block_length`, else the next index follows, wrapping from n - 1 to 0.
    """
    if block_length < 1:
        raise ValueError(f"block_length must be >= 1, got {block_length}")
    p = 1.0 / block_length
    starts = rng.integers(0, n, size=(n_resamples, n), dtype=np.int64)
    fresh = rng.random(size=(n_resamples, n)) < p
    out = np.empty((n_resamples, n), dtype=np.int64)
    out[:, 0] = starts[:, 0]
    for t in range(1, n):
        out[:, t] = np.where(fresh[:, t], starts[:, t], (out[:, t - 1] + 1) % n)
    return out


def resample_indices(n: int, n_resamples: int, seed: int, block_length: float | None) -> IntArray:
    """Independent rows when `block_length` is None, else stationary-bootstrap rows."""
    rng = np.random.default_rng(seed)
    if block_length is None:
        return iid_indices(n, n_resamples, rng)
    return stationary_indices(n, n_resamples, block_length, rng)


def bootstrap_ci(statistic: Statistic, *arrays: Any, n_resamples: int = DEFAULT_RESAMPLES,
                 confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
                 block_length: float | None = None) -> Estimate:
    """Percentile bootstrap interval of `statistic(*arrays)`.

    Args:
        statistic: a function of the arrays (one row per observation) returning a float; NaN when undefined.
        arrays: aligned arrays, resampled together row by row.
        n_resamples: bootstrap resamples.
        confidence: coverage of the interval.
        seed: seed of the resampling.
        block_length: None for independent rows (scenarios); the mean block length of a stationary bootstrap
            for a time series (sessions).

    Raises:
        ValueError: no observation, arrays of different lengths, or a bad confidence or resample count.
    """
    _check(confidence, n_resamples)
    arrs, n = _rows(arrays)
    value = float(statistic(*arrs))
    idx = resample_indices(n, n_resamples, seed, block_length)
    values = np.array([statistic(*(a[row] for a in arrs)) for row in idx], dtype=np.float64)
    low, high = _percentiles(values, confidence)
    return Estimate(value, low, high, confidence, n)


Direction = Literal["higher", "lower"]


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """A candidate against a baseline on the same observations.

    Attributes:
        baseline: the statistic of the baseline.
        candidate: the statistic of the candidate.
        difference: candidate - baseline with its paired bootstrap interval.
        better: "higher" when a larger statistic is better (accuracy), "lower" when smaller is (Brier score).
        regression: the whole interval of the difference lies on the worse side of zero: a real regression,
            not noise.
        improvement: the whole interval lies on the better side of zero.
    """

    baseline: float
    candidate: float
    difference: Estimate
    better: Direction
    regression: bool
    improvement: bool

    @property
    def verdict(self) -> str:
        """One line in words."""
        d = self.difference
        span = f"{d.value:+.4g} [{d.low:+.4g}, {d.high:+.4g}] ({d.confidence:.0%}, n={d.n})"
        if self.regression:
            return f"regression: candidate - baseline = {span}, the interval excludes zero"
        if self.improvement:
            return f"improvement: candidate - baseline = {span}, the interval excludes zero"
        return f"no significant difference: candidate - baseline = {span} includes zero"


def paired_bootstrap(baseline: Any, candidate: Any, statistic: Statistic = np.mean, *, better: Direction = "higher",
                     n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
                     block_length: float | None = None) -> PairedComparison:
    """Paired bootstrap of `statistic(candidate) - statistic(baseline)`.

    Both series are indexed by the same resampled rows, so a hard scenario counts against both. A regression is
    flagged only when the interval excludes zero on the worse side (for `better="higher"`: its upper end is
    below zero, i.e. the lower bound of baseline - candidate is above zero).

    Args:
        baseline: per-observation values of the baseline (1-D, or 2-D with one row per observation).
        candidate: the same for the candidate, aligned with `baseline`.
        statistic: maps one series to a float (default the mean: accuracy of 0/1 hits, Brier of squared errors).
        better: "higher" or "lower".
        n_resamples: bootstrap resamples.
        confidence: coverage of the interval.
        seed: seed of the resampling.
        block_length: None for independent scenarios, a mean block length for aligned daily returns.
    """
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")

    def diff(b: Array, c: Array) -> float:
        return float(statistic(c)) - float(statistic(b))

    d = bootstrap_ci(diff, baseline, candidate, n_resamples=n_resamples, confidence=confidence, seed=seed,
                     block_length=block_length)
    worse_side = d.high < 0 if better == "higher" else d.low > 0
    better_side = d.low > 0 if better == "higher" else d.high < 0
    base = np.asarray(baseline)
    cand = np.asarray(candidate)
    return PairedComparison(baseline=float(statistic(base)), candidate=float(statistic(cand)), difference=d,
                            better=better, regression=bool(worse_side), improvement=bool(better_side))
