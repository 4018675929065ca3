"""Metrics of the risk agent's sizing and stops against what the price did next, with bootstrap intervals.

Per scenario (aligned arrays): the proposed `stop_pct` and `position_pct`, the stock's `atr_pct` (14-day average
true range as a fraction of the price) and `stop_hit` (whether the proposed stop was touched within the time
limit on the scenario's forward path; `domain.evals.barriers.triple_barrier` answers that).

- stop distance in ATRs: a stop inside one day's range is noise, not protection (median and share below 1 ATR);
- stop-hit rate: the share of stops hit within the horizon;
- loss at the stop: position x stop distance, the share of equity lost if the stop fills at its level, and the
  share of scenarios where it stays within the loss limit (by default the daily loss limit);
- sizes within limits: position at most `max_position_pct` and stop within `min_stop_pct..max_stop_pct`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.evals.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, Array, Estimate, bootstrap_ci
from domain.risk.config import RiskSettings

TIGHT_STOP_ATR = 1.0


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The limits the sizes are checked against (from `RiskSettings`)."""

    max_position_pct: float
    min_stop_pct: float
    max_stop_pct: float
    loss_limit_pct: float

    @classmethod
    def of(cls, risk: RiskSettings) -> RiskLimits:
        """The limits of the risk settings; the loss limit is the daily loss limit."""
        return cls(risk.max_position_pct, risk.min_stop_pct, risk.max_stop_pct, risk.max_daily_loss_pct)


@dataclass(frozen=True, slots=True)
class RiskMetrics:
    """The risk agent's metrics.

    Attributes:
        n: scenarios.
        stop_atr_multiple: median stop distance in ATRs.
        tight_stop_share: share of stops closer than one ATR.
        stop_hit_rate: share of stops touched within the horizon.
        loss_at_stop: mean position x stop distance (share of equity).
        loss_within_limit: share of scenarios whose loss at the stop is within the loss limit.
        sizes_within_limits: share of scenarios whose size and stop are within the hard limits.
    """

    n: int
    stop_atr_multiple: Estimate
    tight_stop_share: Estimate
    stop_hit_rate: Estimate
    loss_at_stop: Estimate
    loss_within_limit: Estimate
    sizes_within_limits: Estimate


def _f(x: Any) -> Array:
    return np.asarray(x, dtype=np.float64)


def risk_metrics(stop_pct: Any, position_pct: Any, atr_pct: Any, stop_hit: Any, limits: RiskLimits, *,
                 n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                 seed: int = 0) -> RiskMetrics:
    """Risk metrics of aligned per-scenario arrays (scenarios with a non-positive ATR count as tight stops)."""
    stop, pos, atr = _f(stop_pct), _f(position_pct), _f(atr_pct)
    hit = np.asarray(stop_hit, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        multiple = np.where(atr > 0, stop / np.where(atr > 0, atr, 1.0), 0.0)
    loss = pos * stop
    within = (pos <= limits.max_position_pct + 1e-12) & (stop >= limits.min_stop_pct - 1e-12) & (
        stop <= limits.max_stop_pct + 1e-12)
    opts: dict[str, Any] = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}

    def share(x: Array) -> float:
        return float(np.mean(x))

    return RiskMetrics(
        n=len(stop),
        stop_atr_multiple=bootstrap_ci(lambda m: float(np.median(m)), multiple, **opts),
        tight_stop_share=bootstrap_ci(share, multiple < TIGHT_STOP_ATR, **opts),
        stop_hit_rate=bootstrap_ci(share, hit, **opts),
        loss_at_stop=bootstrap_ci(share, loss, **opts),
        loss_within_limit=bootstrap_ci(share, loss <= limits.loss_limit_pct + 1e-12, **opts),
        sizes_within_limits=bootstrap_ci(share, within, **opts),
    )
