"""PSR, MinTRL and DSR against published figures; Sharpe intervals; the can-rank verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from domain.evals.sharpe import (
    Moments,
    can_rank,
    deflated_sharpe_ratio,
    deflated_sharpe_ratio_from_moments,
    expected_max_sharpe,
    min_track_record_length,
    min_track_record_length_from_moments,
    probabilistic_sharpe_ratio,
    psr_from_moments,
    sharpe_interval,
    sharpe_ratio,
)


def normal(sharpe_annual: float, n: int) -> Moments:
    return Moments(sharpe_annual / math.sqrt(252), 0.0, 3.0, n)


def test_six_months_need_an_annualised_sharpe_near_2_35_for_a_psr_of_95_percent() -> None:
    assert psr_from_moments(normal(2.35, 126)) == pytest.approx(0.95, abs=0.002)
    assert psr_from_moments(normal(1.0, 126)) < 0.8


def test_a_true_sharpe_of_one_needs_about_684_sessions() -> None:
    assert min_track_record_length_from_moments(normal(1.0, 10)) == pytest.approx(684, abs=1)


def test_min_track_record_length_is_where_the_psr_reaches_the_confidence() -> None:
    m = Moments(0.08, -0.5, 5.0, 10)
    n = min_track_record_length_from_moments(m, benchmark=0.2)
    at = Moments(m.sharpe, m.skew, m.kurtosis, round(n))
    assert psr_from_moments(at, benchmark=0.2) == pytest.approx(0.95, abs=0.002)
    assert min_track_record_length_from_moments(m, benchmark=5.0) == math.inf


def test_the_deflated_sharpe_ratio_reproduces_the_example_of_bailey_and_lopez_de_prado_2014() -> None:
    # annualised Sharpe 2.5 over 1250 daily returns (250 a year), skew -3, kurtosis 10, after 100 trials whose
    # annualised Sharpe ratios vary with variance 0.5: E[max SR] = 0.1132 a day, DSR = 0.9004
    assert expected_max_sharpe(100, 0.5 / 250) == pytest.approx(0.1132, abs=1e-4)
    m = Moments(2.5 / math.sqrt(250), -3.0, 10.0, 1250)
    assert deflated_sharpe_ratio_from_moments(m, 100, 0.5, periods_per_year=250) == pytest.approx(0.9004, abs=5e-4)


def test_negative_skew_and_fat_tails_lower_the_psr() -> None:
    assert psr_from_moments(Moments(0.1, -2.0, 9.0, 200)) < psr_from_moments(Moments(0.1, 0.0, 3.0, 200))


def test_psr_from_returns_uses_their_sample_moments() -> None:
    r = np.random.default_rng(3).standard_t(5, 300) * 0.01 + 0.0008
    m = Moments.of(r)
    assert m.sharpe == pytest.approx(np.mean(r) / np.std(r, ddof=1))
    assert m.skew == pytest.approx(stats.skew(r)) and m.kurtosis == pytest.approx(stats.kurtosis(r) + 3)
    assert probabilistic_sharpe_ratio(r) == pytest.approx(psr_from_moments(m))
    assert min_track_record_length(r) == pytest.approx(min_track_record_length_from_moments(m))
    assert deflated_sharpe_ratio(r, 1, 0.5) == pytest.approx(probabilistic_sharpe_ratio(r))
    assert deflated_sharpe_ratio(r, 50, 0.5) < probabilistic_sharpe_ratio(r)


def test_flat_or_too_short_returns_are_refused() -> None:
    with pytest.raises(ValueError, match="never change"):
        Moments.of([0.01, 0.01, 0.01])
    with pytest.raises(ValueError, match="at least 3"):
        Moments.of([0.01, 0.02])
    assert math.isnan(sharpe_ratio([0.01, 0.01]))


def test_sharpe_ratio_by_hand() -> None:
    r = [0.01, -0.005, 0.02]
    assert sharpe_ratio(r) == pytest.approx(0.008333333 / 0.012583057 * math.sqrt(252), rel=1e-6)


def test_a_sharpe_interval_covers_the_true_sharpe_of_a_seeded_series() -> None:
    r = np.random.default_rng(8).normal(0.0005, 0.01, 750)
    est = sharpe_interval(r, n_resamples=1000, seed=1)
    assert est.low < 0.0005 / 0.01 * math.sqrt(252) < est.high
    assert est.value == pytest.approx(sharpe_ratio(r))


def test_two_strategies_of_the_same_quality_over_six_months_are_too_short_to_rank() -> None:
    verdicts = []
    for seed in range(50):
        rng = np.random.default_rng(1000 + seed)
        common = rng.normal(0.0004, 0.01, 126)
        verdicts.append(can_rank(common + rng.normal(0, 0.004, 126), common + rng.normal(0, 0.004, 126),
                                 n_resamples=400, seed=seed))
    # nominally 5% false rankings; the percentile interval is a little narrow on short windows (about 8% here)
    assert sum(v.rankable for v in verdicts) <= 6
    v = verdicts[0]
    assert not v.rankable and v.leader is None
    assert v.message.startswith("too short to rank: 126 sessions")
    assert v.sessions_needed is not None and v.sessions_needed > 126


def test_a_clear_difference_ranks() -> None:
    rng = np.random.default_rng(22)
    common = rng.normal(0.0, 0.01, 500)
    v = can_rank(common + rng.normal(0.0, 0.002, 500), common + rng.normal(0.002, 0.002, 500), n_resamples=1000)
    assert v.rankable and v.leader == "b" and v.difference.high < 0
    assert "b ranks higher over 500 sessions" in v.message


def test_fewer_than_twenty_sessions_are_not_even_tried() -> None:
    v = can_rank([0.01] * 10, [0.0] * 10)
    assert not v.rankable and "fewer than the 20 needed" in v.message
    with pytest.raises(ValueError, match="aligned"):
        can_rank([0.01] * 30, [0.0] * 29)
