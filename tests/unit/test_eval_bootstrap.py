"""Bootstrap intervals: coverage on seeded samples, stationary blocks, the paired regression flag."""

from __future__ import annotations

import math

import numpy as np
import pytest

from domain.evals.bootstrap import (
    Estimate,
    bootstrap_ci,
    default_block_length,
    paired_bootstrap,
    stationary_indices,
)


def test_a_95_percent_interval_of_the_mean_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(42)
    covered = sum(bootstrap_ci(np.mean, rng.normal(1.0, 2.0, 80), n_resamples=400, seed=s).excludes(1.0) is False
                  for s in range(300))
    assert 0.90 <= covered / 300 <= 0.98


def test_the_interval_width_is_what_the_standard_error_says() -> None:
    x = np.random.default_rng(7).normal(0.0, 1.0, 400)
    est = bootstrap_ci(np.mean, x, n_resamples=3000, seed=1)
    assert est.value == pytest.approx(float(np.mean(x)))
    assert est.high - est.low == pytest.approx(2 * 1.96 / math.sqrt(400), rel=0.12)
    assert est.n == 400 and est.confidence == 0.95


def test_the_same_seed_gives_the_same_interval() -> None:
    x = np.random.default_rng(3).normal(size=50)
    assert bootstrap_ci(np.mean, x, seed=9) == bootstrap_ci(np.mean, x, seed=9)
    assert bootstrap_ci(np.mean, x, seed=9) != bootstrap_ci(np.mean, x, seed=10)


def test_300_scenarios_at_60_percent_accuracy_give_about_5_5_points_either_side() -> None:
    hits = np.array([1] * 180 + [0] * 120)
    est = bootstrap_ci(np.mean, hits, n_resamples=3000, seed=2)
    assert est.value == pytest.approx(0.6)
    assert (est.high - est.low) / 2 == pytest.approx(0.055, abs=0.006)


def test_an_undefined_statistic_gives_nan_not_a_guess() -> None:
    def precision(x: np.ndarray) -> float:
        return float(np.mean(x[x > 0])) if (x > 0).any() else math.nan

    est = bootstrap_ci(precision, np.zeros(100), n_resamples=200)
    assert math.isnan(est.value) and math.isnan(est.low) and math.isnan(est.high)
    assert not est.excludes(0.5)
    assert est.to_dict()["low"] is None


def test_arrays_of_different_lengths_or_no_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        bootstrap_ci(lambda a, b: 0.0, [1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least one observation"):
        bootstrap_ci(np.mean, [])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(np.mean, [1.0], confidence=1.0)


def test_stationary_blocks_continue_with_probability_one_minus_one_over_the_block_length() -> None:
    idx = stationary_indices(200, 300, 8.0, np.random.default_rng(0))
    assert idx.shape == (300, 200) and idx.min() >= 0 and idx.max() < 200
    follows = np.diff(idx, axis=1) % 200 == 1
    assert follows.mean() == pytest.approx(1 - 1 / 8, abs=0.01)
    assert (idx[:, 1:][follows & (idx[:, :-1] == 199)] == 0).all()


def test_a_stationary_interval_of_a_trending_series_mean_is_wider_than_an_independent_one() -> None:
    rng = np.random.default_rng(5)
    ar = np.zeros(500)
    for t in range(1, 500):
        ar[t] = 0.8 * ar[t - 1] + rng.normal()
    iid = bootstrap_ci(np.mean, ar, seed=1)
    block = bootstrap_ci(np.mean, ar, seed=1, block_length=20)
    assert block.high - block.low > 1.8 * (iid.high - iid.low)


def test_default_block_length_is_the_cube_root() -> None:
    assert default_block_length(1000) == 10.0 and default_block_length(1) == 1.0


def _accuracy_pair(seed: int, drop: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-scenario hits of two agents on the same 300 scenarios: each scenario has its own difficulty, both
    agents draw their hit independently from it; the candidate's chance is `drop` lower."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.3, 0.95, 300)
    return (rng.random(300) < p).astype(float), (rng.random(300) < p - drop).astype(float)


def test_a_paired_bootstrap_flags_a_real_drop_as_a_regression() -> None:
    flagged = [paired_bootstrap(*_accuracy_pair(s, 0.2), n_resamples=400, seed=s) for s in range(40)]
    assert sum(c.regression for c in flagged) >= 38
    assert not any(c.improvement for c in flagged)
    c = flagged[0]
    assert c.difference.high < 0 and c.candidate < c.baseline and c.verdict.startswith("regression")


def test_a_paired_bootstrap_does_not_flag_noise() -> None:
    runs = [paired_bootstrap(*_accuracy_pair(100 + s, 0.0), n_resamples=400, seed=s) for s in range(100)]
    false_alarms = sum(c.regression for c in runs)
    assert false_alarms <= 8  # a one-sided 2.5% test: about 2.5 in 100 expected
    quiet = next(c for c in runs if not c.regression and not c.improvement)
    assert quiet.difference.low < 0 < quiet.difference.high
    assert quiet.verdict.startswith("no significant difference")


def test_lower_is_better_flips_the_side_of_a_regression() -> None:
    rng = np.random.default_rng(13)
    base_err = rng.uniform(0.0, 0.2, 300)
    worse = base_err + rng.uniform(0.02, 0.08, 300)
    assert paired_bootstrap(base_err, worse, better="lower", seed=1).regression
    assert paired_bootstrap(worse, base_err, better="lower", seed=1).improvement
    with pytest.raises(ValueError, match="better"):
        paired_bootstrap(base_err, worse, better="up")  # type: ignore[arg-type]


def test_pairing_cancels_what_both_share() -> None:
    rng = np.random.default_rng(14)
    shared = rng.normal(0, 1.0, 200)
    a, b = shared, shared + 0.05 + rng.normal(0, 0.05, 200)
    cmp = paired_bootstrap(a, b, seed=2)
    assert cmp.improvement
    unpaired_width = 2 * 1.96 * math.sqrt(2 / 200)
    assert cmp.difference.high - cmp.difference.low < unpaired_width / 10


def test_estimate_excludes() -> None:
    e = Estimate(0.1, 0.02, 0.2, 0.95, 10)
    assert e.excludes(0.0) and not e.excludes(0.1) and e.excludes(0.3)
