"""Signal, risk and validator metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from domain.evals.risk_metrics import RiskLimits, risk_metrics
from domain.evals.signal_metrics import (
    brier_score,
    directional_accuracy,
    expected_calibration_error,
    precision_at_k,
    profit_weighted_accuracy,
    reliability,
    signal_metrics,
)
from domain.evals.validator_metrics import (
    approval_lift,
    approved_win_rate,
    rejection_precision,
    rejection_recall,
    validator_metrics,
)
from domain.risk.config import RiskSettings

CALLED = [True, True, False, False, True]
WON = [True, False, False, True, True]
PROB = [0.9, 0.6, 0.2, 0.4, 0.7]
RETURNS = [0.10, -0.02, -0.05, 0.01, 0.03]


def test_directional_accuracy_counts_calls_that_match_the_outcome() -> None:
    assert directional_accuracy(CALLED, WON) == pytest.approx(3 / 5)


def test_brier_score_by_hand() -> None:
    assert brier_score([0.8, 0.3], [True, False]) == pytest.approx((0.04 + 0.09) / 2)
    assert brier_score([0.5] * 4, [True, False, True, False]) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="within"):
        brier_score([1.2], [True])


def test_expected_calibration_error_by_hand() -> None:
    # two bins: [0, .5) holds 0.2 and 0.4 (mean 0.3, won 1 of 2), [.5, 1] holds 0.9, 0.6, 0.7 (mean 0.7333, 2 of 3)
    ece = expected_calibration_error(PROB, WON, bins=2)
    assert ece == pytest.approx(2 / 5 * abs(0.3 - 0.5) + 3 / 5 * abs(0.733333 - 2 / 3), abs=1e-6)
    table = reliability(PROB, WON, bins=2)
    assert [b.count for b in table] == [2, 3]
    assert table[1].mean_probability == pytest.approx(0.733333, abs=1e-6) and table[1].win_rate == pytest.approx(2 / 3)
    assert expected_calibration_error([0.0, 1.0, 1.0], [False, True, True]) == 0.0


def test_an_empty_bin_is_reported_as_such() -> None:
    table = reliability([0.95], [True], bins=4)
    assert [b.count for b in table] == [0, 0, 0, 1] and math.isnan(table[0].win_rate)


def test_precision_at_k_takes_the_most_confident_calls_first_ties_by_position() -> None:
    assert precision_at_k(PROB, WON, 2) == pytest.approx(1.0)
    assert precision_at_k(PROB, WON, 3) == pytest.approx(2 / 3)
    assert precision_at_k([0.5, 0.5, 0.5], [False, True, True], 1) == 0.0
    assert precision_at_k(PROB, WON, 50) == pytest.approx(3 / 5)


def test_profit_weighted_accuracy_weighs_each_call_by_the_size_of_the_move() -> None:
    # correct: 0.10 (up, won), -0.05 (not up, lost), 0.03 (up, won); wrong: -0.02, 0.01
    assert profit_weighted_accuracy(CALLED, RETURNS) == pytest.approx(0.18 / 0.21)
    assert math.isnan(profit_weighted_accuracy([True], [0.0]))


def test_signal_metrics_bundles_every_metric_with_an_interval_around_it() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 300)
    won = rng.random(300) < p
    called = p > 0.5
    r = np.where(won, 0.05, -0.04)
    m = signal_metrics(called, p, won, r, n_resamples=300)
    assert m.n == 300 and m.k == 30 and len(m.calibration) == 10
    for e in (m.accuracy, m.brier, m.precision_at_k, m.profit_weighted_accuracy):
        assert e.low <= e.value <= e.high
    assert m.ece.low < m.ece.high  # the ECE is biased upwards: resamples of a calibrated sample look worse
    assert m.brier.value < 0.25 and m.ece.value < 0.1
    assert m.accuracy.value == pytest.approx(directional_accuracy(called, won))


def test_risk_metrics_by_hand() -> None:
    limits = RiskLimits.of(RiskSettings())
    m = risk_metrics(stop_pct=[0.05, 0.01, 0.20, 0.04], position_pct=[0.25, 0.10, 0.30, 0.5],
                     atr_pct=[0.02, 0.02, 0.04, 0.0], stop_hit=[True, True, False, False], limits=limits,
                     n_resamples=200)
    assert m.n == 4
    assert m.stop_atr_multiple.value == pytest.approx(np.median([2.5, 0.5, 5.0, 0.0]))
    assert m.tight_stop_share.value == pytest.approx(0.5)
    assert m.stop_hit_rate.value == pytest.approx(0.5)
    assert m.loss_at_stop.value == pytest.approx((0.0125 + 0.001 + 0.06 + 0.02) / 4)
    assert m.loss_within_limit.value == pytest.approx(3 / 4)  # 6% > the 3% daily loss limit
    assert m.sizes_within_limits.value == pytest.approx(2 / 4)  # 20% stop and 50% size break the limits


def test_validator_metrics_by_hand() -> None:
    approved = [True, False, False, True, True, False]
    won = [True, False, True, False, True, False]
    assert rejection_precision(approved, won) == pytest.approx(2 / 3)
    assert rejection_recall(approved, won) == pytest.approx(2 / 3)
    assert approved_win_rate(approved, won) == pytest.approx(2 / 3)
    assert approval_lift(approved, won) == pytest.approx(2 / 3 - 1 / 2)
    m = validator_metrics(approved, won, n_resamples=200)
    assert m.n == 6 and m.rejection_rate == 0.5 and m.base_win_rate == 0.5
    assert m.lift.value == pytest.approx(1 / 6)


def test_nothing_rejected_leaves_rejection_precision_undefined() -> None:
    m = validator_metrics([True] * 20, [True, False] * 10, n_resamples=100)
    assert math.isnan(m.rejection_precision.value) and math.isnan(m.rejection_precision.low)
    assert m.rejection_recall.value == 0.0 and m.lift.value == 0.0
