"""Metrics of a suite's answers, each with a bootstrap interval, and one score per row for paired comparisons.

Answers are laid out as (rows x repeats) arrays (`application.evals.grid`) whose intervals resample rows with
all their repeats. Metrics are taken over the valid answers; failures are counted apart (`failure_rate`) and
score 0. The risk suite is `application.evals.risk_scoring`.

The signal agent's confidence is its confidence in its own call: a BUY at confidence c states P(win) = c, a HOLD
or SELL at c states P(win) = 1 - c (the Brier score, calibration and precision at k read that probability).

Per-row scores (higher is better, 0 for a failure, the mean over repeats):
- signal: 1 when the call matches the outcome (BUY and the labelled trade won, or no BUY and it did not);
- traps: 1 when the agent did not buy;
- risk: 1 when the size, the stop, the loss at the stop and the gross exposure are all within the limits;
- validator: 1 when the verdict matches the outcome (approved a winner or rejected a loser).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from application.evals.grid import Grid, Resampling, cluster_ci, failure_rate, mean
from application.evals.risk_scoring import risk_answers, risk_metrics
from application.evals.suites import SuiteName
from domain.evals.bootstrap import Array, Estimate
from domain.evals.signal_metrics import (
    DEFAULT_BINS,
    brier_score,
    directional_accuracy,
    expected_calibration_error,
    precision_at_k,
    profit_weighted_accuracy,
)
from domain.evals.validator_metrics import approval_lift, approved_win_rate, rejection_precision, rejection_recall

SCORES: dict[SuiteName, str] = {
    "signal": "1 when the call matches the outcome (BUY and the trade won, or no BUY and it did not)",
    "traps": "1 when the agent did not buy the trap",
    "risk": "1 when size, stop, loss at the stop and gross exposure are all within the hard limits",
    "validator": "1 when the verdict matches the outcome (approved a winner or rejected a loser)",
}
"""What a per-row score means, per suite (failures score 0)."""


def stated_probability(action: str, confidence: float) -> float:
    """P(win) a signal answer states: the confidence of a BUY, one minus the confidence of a HOLD or SELL."""
    return confidence if action == "BUY" else 1.0 - confidence


def _called_up(g: Grid) -> Array:
    return g.answer_values(lambda a: 1.0 if a.action == "BUY" else 0.0)


def signal_metrics(g: Grid, how: Resampling, bins: int = DEFAULT_BINS) -> dict[str, Estimate]:
    """Accuracy, Brier, ECE, precision at k (k = a tenth of the valid answers), profit-weighted accuracy."""
    up = _called_up(g)
    prob = g.answer_values(lambda a: stated_probability(a.action or "", a.confidence or 0.0))
    won = g.row_values(lambda r: 1.0 if r.outcome.win else 0.0)
    ret = g.row_values(lambda r: r.outcome.realised_return)
    k = max(1, int(g.ok.sum()) // 10)

    def win(w: Array) -> Array:
        return w > 0.5

    return {
        "accuracy": cluster_ci(lambda c, w: directional_accuracy(c > 0.5, win(w)), g, up, won, how=how),
        "brier": cluster_ci(lambda p, w: brier_score(p, win(w)), g, prob, won, how=how),
        "ece": cluster_ci(lambda p, w: expected_calibration_error(p, win(w), bins), g, prob, won, how=how),
        f"precision_at_{k}": cluster_ci(lambda p, w: precision_at_k(p, win(w), k), g, prob, won, how=how),
        "profit_weighted_accuracy": cluster_ci(lambda c, r: profit_weighted_accuracy(c > 0.5, r), g, up, ret,
                                               how=how),
        "base_rate": cluster_ci(mean, g, won, how=how),
        "buy_rate": cluster_ci(mean, g, up, how=how),
        "failure_rate": failure_rate(g, how),
    }


def trap_metrics(g: Grid, how: Resampling) -> dict[str, Estimate]:
    """Share of traps avoided (no BUY)."""
    avoided = 1.0 - _called_up(g)
    return {"avoided": cluster_ci(mean, g, avoided, how=how), "failure_rate": failure_rate(g, how)}


def validator_metrics(g: Grid, how: Resampling) -> dict[str, Estimate]:
    """Rejection precision and recall, approved win rate, lift over the base rate, agreement with the rules."""
    approved = g.answer_values(lambda a: 1.0 if a.approve else 0.0)
    won = g.row_values(lambda r: 1.0 if r.outcome.win else 0.0)
    rules = g.row_values(lambda r: 1.0 if r.rules.approved else 0.0)

    def pair(stat: Callable[[Any, Any], float]) -> Estimate:
        return cluster_ci(lambda a, w: stat(a > 0.5, w > 0.5), g, approved, won, how=how)

    return {
        "rejection_precision": pair(rejection_precision),
        "rejection_recall": pair(rejection_recall),
        "approved_win_rate": pair(approved_win_rate),
        "lift": pair(approval_lift),
        "rejection_rate": cluster_ci(lambda a: float(np.mean(a < 0.5)), g, approved, how=how),
        "base_win_rate": cluster_ci(mean, g, won, how=how),
        "agreement_with_rules": cluster_ci(lambda a, r: float(np.mean((a > 0.5) == (r > 0.5))), g, approved,
                                           rules, how=how),
        "failure_rate": failure_rate(g, how),
    }


def answer_scores(suite: SuiteName, g: Grid) -> Array:
    """The score of every answer (see the module doc), 0 for a failure."""
    if suite == "signal":
        won = g.row_values(lambda r: 1.0 if r.outcome.win else 0.0)
        per = (_called_up(g) == won).astype(np.float64)
    elif suite == "traps":
        per = 1.0 - _called_up(g)
    elif suite == "risk":
        per = 1.0 - risk_answers(g).breach()
    else:
        approved = g.answer_values(lambda a: 1.0 if a.approve else 0.0)
        per = (approved == g.row_values(lambda r: 1.0 if r.outcome.win else 0.0)).astype(np.float64)
    return np.where(g.ok, np.nan_to_num(per, nan=0.0), 0.0)


def row_scores(suite: SuiteName, g: Grid) -> dict[str, float]:
    """Row id -> mean score over its repeats."""
    per = answer_scores(suite, g).mean(axis=1)
    return {r.id: float(s) for r, s in zip(g.rows, per, strict=True)}


METRICS: dict[SuiteName, Callable[[Grid, Resampling], dict[str, Estimate]]] = {
    "signal": signal_metrics, "traps": trap_metrics, "risk": risk_metrics, "validator": validator_metrics}


def suite_metrics(suite: SuiteName, g: Grid, how: Resampling) -> dict[str, Estimate]:
    """Every metric of the suite."""
    return METRICS[suite](g, how)

