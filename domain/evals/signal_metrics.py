"""Metrics of the signal agent's calls against triple-barrier outcomes, each with a bootstrap interval.

Inputs are aligned per scenario. `called_up` is the agent's directional call (a BUY is a call that the trade
makes money, anything else that it does not); `won` is the outcome (the labelled trade's realised return > 0);
`probability` is the stated probability that the trade wins (the caller maps an action and a confidence to it,
e.g. a BUY at confidence c states c); `returns` are the labelled trades' realised returns.

- directional accuracy: share of scenarios where the call matches the outcome;
- Brier score (Brier, 1950, Monthly Weather Review 78): mean squared error of the probability, 0 is perfect,
  0.25 is an uninformative 50%;
- expected calibration error (Naeini, Cooper and Hauskrecht, 2015, AAAI; Guo et al., 2017, ICML): the
  count-weighted gap between the mean stated probability and the observed win rate over equal-width bins
  (biased upwards on few rows, and more so on resamples: its interval can lie above the value itself);
- precision at top-k: the win rate of the k scenarios with the highest probability (ties by position);
- profit-weighted accuracy: accuracy where each scenario weighs its absolute realised return, so being right
  about big moves counts more than being right about flat ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.evals.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, Array, Estimate, bootstrap_ci

DEFAULT_BINS = 10


def _bool(x: Any) -> Array:
    return np.asarray(x, dtype=bool)


def _prob(p: Any) -> Array:
    arr = np.asarray(p, dtype=np.float64)
    if np.any(~np.isfinite(arr)) or np.any((arr < 0) | (arr > 1)):
        raise ValueError("probabilities must be within [0, 1]")
    return arr


def directional_accuracy(called_up: Any, won: Any) -> float:
    """Share of scenarios where the call matches the outcome."""
    c, w = _bool(called_up), _bool(won)
    return float(np.mean(c == w)) if len(c) else math.nan


def brier_score(probability: Any, won: Any) -> float:
    """Mean squared error of the stated probability of winning (lower is better)."""
    p, w = _prob(probability), _bool(won).astype(np.float64)
    return float(np.mean((p - w) ** 2)) if len(p) else math.nan


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    """One bin of a reliability diagram.

    Attributes:
        low: lower edge (inclusive).
        high: upper edge (exclusive, except the last bin).
        count: scenarios in the bin.
        mean_probability: mean stated probability in the bin (NaN when empty).
        win_rate: observed share of wins in the bin (NaN when empty).
    """

    low: float
    high: float
    count: int
    mean_probability: float
    win_rate: float


def _bin_index(p: Array, bins: int) -> Array:
    return np.minimum((p * bins).astype(np.int64), bins - 1)


def reliability(probability: Any, won: Any, bins: int = DEFAULT_BINS) -> tuple[CalibrationBin, ...]:
    """The reliability table over `bins` equal-width bins of [0, 1]."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    p, w = _prob(probability), _bool(won).astype(np.float64)
    idx = _bin_index(p, bins)
    out = []
    for b in range(bins):
        mask = idx == b
        count = int(mask.sum())
        out.append(CalibrationBin(b / bins, (b + 1) / bins, count,
                                  float(p[mask].mean()) if count else math.nan,
                                  float(w[mask].mean()) if count else math.nan))
    return tuple(out)


def expected_calibration_error(probability: Any, won: Any, bins: int = DEFAULT_BINS) -> float:
    """ECE: sum over bins of (count / n) x |mean probability - win rate| (0 is perfectly calibrated)."""
    p, w = _prob(probability), _bool(won).astype(np.float64)
    n = len(p)
    if n == 0:
        return math.nan
    idx = _bin_index(p, bins)
    counts = np.bincount(idx, minlength=bins).astype(np.float64)
    p_sum = np.bincount(idx, weights=p, minlength=bins)
    w_sum = np.bincount(idx, weights=w, minlength=bins)
    used = counts > 0
    return float(np.sum(np.abs(p_sum[used] - w_sum[used])) / n)


def precision_at_k(probability: Any, won: Any, k: int) -> float:
    """Win rate of the `k` scenarios with the highest stated probability (ties keep the earlier scenario)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    p, w = np.asarray(probability, dtype=np.float64), _bool(won)
    if len(p) == 0:
        return math.nan
    top = np.argsort(-p, kind="stable")[: min(k, len(p))]
    return float(np.mean(w[top]))


def profit_weighted_accuracy(called_up: Any, returns: Any) -> float:
    """Sum of |return| over correct calls / sum of |return| over all scenarios (a call is correct when it says up
    and the return is positive, or does not say up and the return is not positive); NaN when every return is 0."""
    c, r = _bool(called_up), np.asarray(returns, dtype=np.float64)
    weight = np.abs(r)
    total = float(weight.sum())
    if not total > 0:
        return math.nan
    correct = c == (r > 0)
    return float(weight[correct].sum() / total)


@dataclass(frozen=True, slots=True)
class SignalMetrics:
    """Every signal metric with its bootstrap interval (scenarios resampled together).

    Attributes:
        n: scenarios.
        base_rate: share of winning trades (what always calling up would get right).
        accuracy: directional accuracy.
        brier: Brier score of the stated probability.
        ece: expected calibration error.
        calibration: the reliability table behind the ECE.
        precision_at_k: win rate of the k most confident calls.
        k: the k of `precision_at_k`.
        profit_weighted_accuracy: accuracy weighted by absolute realised return.
    """

    n: int
    base_rate: float
    accuracy: Estimate
    brier: Estimate
    ece: Estimate
    calibration: tuple[CalibrationBin, ...]
    precision_at_k: Estimate
    k: int
    profit_weighted_accuracy: Estimate


def signal_metrics(called_up: Any, probability: Any, won: Any, returns: Any, *, k: int | None = None,
                   bins: int = DEFAULT_BINS, n_resamples: int = DEFAULT_RESAMPLES,
                   confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> SignalMetrics:
    """All signal metrics of aligned per-scenario arrays (k defaults to a tenth of the scenarios, at least 1)."""
    c, p, w, r = _bool(called_up), _prob(probability), _bool(won), np.asarray(returns, dtype=np.float64)
    n = len(c)
    kk = k if k is not None else max(1, n // 10)
    opts: dict[str, Any] = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    return SignalMetrics(
        n=n,
        base_rate=float(np.mean(w)) if n else math.nan,
        accuracy=bootstrap_ci(directional_accuracy, c, w, **opts),
        brier=bootstrap_ci(brier_score, p, w, **opts),
        ece=bootstrap_ci(lambda pp, ww: expected_calibration_error(pp, ww, bins), p, w, **opts),
        calibration=reliability(p, w, bins),
        precision_at_k=bootstrap_ci(lambda pp, ww: precision_at_k(pp, ww, kk), p, w, **opts),
        k=kk,
        profit_weighted_accuracy=bootstrap_ci(profit_weighted_accuracy, c, r, **opts),
    )
