"""Metrics of the validator's approvals against the outcomes of the trades it judged, with bootstrap intervals.

A rejection is a prediction that the trade loses. Per scenario (aligned arrays): `approved` and `won` (the
labelled trade's realised return > 0).

- precision of rejections: the share of rejected trades that lost;
- recall of rejections: the share of losing trades that were rejected;
- win rate of approved trades against the base rate of all candidates, and their difference (the lift: what
  the validator adds; above zero only when it keeps the better trades).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.evals.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, Array, Estimate, bootstrap_ci


def _mean_where(values: Array, mask: Array) -> float:
    return float(np.mean(values[mask])) if mask.any() else math.nan


def rejection_precision(approved: Any, won: Any) -> float:
    """Share of rejected trades that lost (NaN when nothing was rejected)."""
    a, w = np.asarray(approved, dtype=bool), np.asarray(won, dtype=bool)
    return _mean_where(~w, ~a)


def rejection_recall(approved: Any, won: Any) -> float:
    """Share of losing trades that were rejected (NaN when nothing lost)."""
    a, w = np.asarray(approved, dtype=bool), np.asarray(won, dtype=bool)
    return _mean_where(~a, ~w)


def approved_win_rate(approved: Any, won: Any) -> float:
    """Win rate of the approved trades (NaN when nothing was approved)."""
    a, w = np.asarray(approved, dtype=bool), np.asarray(won, dtype=bool)
    return _mean_where(w, a)


def approval_lift(approved: Any, won: Any) -> float:
    """Win rate of approved trades minus the win rate of all candidates."""
    w = np.asarray(won, dtype=bool)
    return approved_win_rate(approved, won) - float(np.mean(w))


@dataclass(frozen=True, slots=True)
class ValidatorMetrics:
    """The validator's metrics.

    Attributes:
        n: candidates judged.
        rejection_rate: share rejected.
        base_win_rate: win rate of all candidates.
        rejection_precision: share of rejected trades that lost.
        rejection_recall: share of losing trades rejected.
        approved_win_rate: win rate of approved trades.
        lift: approved win rate minus base win rate.
    """

    n: int
    rejection_rate: float
    base_win_rate: float
    rejection_precision: Estimate
    rejection_recall: Estimate
    approved_win_rate: Estimate
    lift: Estimate


def validator_metrics(approved: Any, won: Any, *, n_resamples: int = DEFAULT_RESAMPLES,
                      confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> ValidatorMetrics:
    """Validator metrics of aligned per-candidate arrays."""
    a, w = np.asarray(approved, dtype=bool), np.asarray(won, dtype=bool)
    opts: dict[str, Any] = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    n = len(a)
    return ValidatorMetrics(
        n=n,
        rejection_rate=float(np.mean(~a)) if n else math.nan,
        base_win_rate=float(np.mean(w)) if n else math.nan,
        rejection_precision=bootstrap_ci(rejection_precision, a, w, **opts),
        rejection_recall=bootstrap_ci(rejection_recall, a, w, **opts),
        approved_win_rate=bootstrap_ci(approved_win_rate, a, w, **opts),
        lift=bootstrap_ci(approval_lift, a, w, **opts),
    )
