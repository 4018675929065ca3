"""Daily returns and the vectorised, NaN-aware OLS beta against a benchmark."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.discovery.beta import daily_returns, default_min_observations, rolling_beta


def _ols_slope(y: np.ndarray, x: np.ndarray) -> float:
    design = np.column_stack([x, np.ones_like(x)])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(coef[0])


def test_daily_returns_are_close_to_close_and_nan_where_a_close_is_missing_or_not_positive() -> None:
    close = np.array([[100.0, 110.0, 99.0, np.nan, 50.0], [10.0, 0.0, 10.0, 11.0, 12.1]])
    r = daily_returns(close)
    assert r.shape == (2, 4)
    np.testing.assert_allclose(r[0, :2], [0.10, -0.10])
    assert np.isnan(r[0, 2]) and np.isnan(r[0, 3])
    assert np.isnan(r[1, 0]) and np.isnan(r[1, 1])
    np.testing.assert_allclose(r[1, 2:], [0.10, 0.10])
    np.testing.assert_allclose(daily_returns(np.array([4.0, 5.0])), [0.25])
    assert daily_returns(np.array([[4.0]])).shape == (1, 0)


def test_beta_is_two_when_returns_are_twice_the_benchmark() -> None:
    m = np.random.default_rng(1).normal(0, 0.01, 60)
    returns = np.vstack([2 * m, -0.5 * m, 2 * m + 0.001])
    beta = rolling_beta(returns, m, window=60)
    np.testing.assert_allclose(beta, [2.0, -0.5, 2.0], rtol=1e-12)


def test_beta_through_prices_recovers_the_constructed_beta() -> None:
    m = np.random.default_rng(2).normal(0.0005, 0.01, 130)
    spy = 400 * np.cumprod(np.concatenate(([1.0], 1 + m)))
    stock = 50 * np.cumprod(np.concatenate(([1.0], 1 + 2 * m)))
    beta = rolling_beta(daily_returns(stock[None, :]), daily_returns(spy), window=120)
    assert beta[0] == pytest.approx(2.0, rel=1e-9)


def test_beta_matches_a_least_squares_fit_on_random_data_over_the_last_window() -> None:
    rng = np.random.default_rng(3)
    m = rng.normal(0, 0.012, 200)
    returns = rng.uniform(-1, 3, (5, 1)) * m + rng.normal(0, 0.02, (5, 200))
    beta = rolling_beta(returns, m, window=120)
    for i in range(5):
        assert beta[i] == pytest.approx(_ols_slope(returns[i, -120:], m[-120:]), rel=1e-10)
        assert beta[i] == pytest.approx(np.polyfit(m[-120:], returns[i, -120:], 1)[0], rel=1e-10)


def test_beta_uses_only_days_where_both_returns_are_known() -> None:
    rng = np.random.default_rng(4)
    m = rng.normal(0, 0.01, 100)
    r = 1.3 * m + rng.normal(0, 0.01, 100)
    m_gappy = m.copy()
    r_gappy = r.copy()
    r_gappy[[5, 17, 40]] = np.nan
    m_gappy[[60, 61]] = np.nan
    keep = np.isfinite(r_gappy) & np.isfinite(m_gappy)
    beta = rolling_beta(r_gappy[None, :], m_gappy, window=100)
    assert beta[0] == pytest.approx(_ols_slope(r[keep], m[keep]), rel=1e-10)


def test_beta_is_nan_below_the_minimum_observations_and_when_the_benchmark_is_flat() -> None:
    m = np.random.default_rng(5).normal(0, 0.01, 40)
    r = np.tile(1.5 * m, (3, 1))
    r[0, :11] = np.nan  # 29 of 40 left: below the default 30 (75% of 40)
    r[1, :10] = np.nan  # exactly 30: enough
    assert default_min_observations(40) == 30
    beta = rolling_beta(r, m, window=40)
    assert np.isnan(beta[0])
    assert beta[1] == pytest.approx(1.5)
    assert beta[2] == pytest.approx(1.5)
    assert np.isnan(rolling_beta(r, m, window=40, min_observations=35)[1])
    assert np.isnan(rolling_beta(r[2:], np.full(40, 0.001), window=40)[0])
    assert np.isnan(rolling_beta(r[2:], np.zeros(40), window=40)[0])


def test_beta_window_longer_than_history_uses_what_there_is_or_reports_nan() -> None:
    m = np.random.default_rng(6).normal(0, 0.01, 30)
    assert rolling_beta((0.8 * m)[None, :], m, window=40)[0] == pytest.approx(0.8)  # 30 >= 30 needed
    assert np.isnan(rolling_beta((0.8 * m[:29])[None, :], m[:29], window=40)[0])


def test_beta_rejects_a_misaligned_benchmark() -> None:
    with pytest.raises(ValueError, match="benchmark_returns"):
        rolling_beta(np.zeros((2, 10)), np.zeros(9), window=5)
    with pytest.raises(ValueError, match="window"):
        rolling_beta(np.zeros((2, 10)), np.zeros(10), window=1)


@settings(max_examples=50, deadline=None)
@given(
    beta=st.floats(-3, 3),
    alpha=st.floats(-0.01, 0.01),
    noise=st.floats(0, 0.05),
    seed=st.integers(0, 2**32 - 1),
)
def test_beta_equals_the_ols_slope_for_any_linear_model(beta: float, alpha: float, noise: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.normal(0, 0.01, 50)
    r = alpha + beta * m + noise * rng.standard_normal(50)
    got = rolling_beta(r[None, :], m, window=50)[0]
    assert got == pytest.approx(_ols_slope(r, m), rel=1e-8, abs=1e-9)


def _closes(path: Path, date_col: str, close_col: str) -> dict[str, float]:
    with path.open() as fh:
        return {
            row[date_col]: float(row[close_col]) for row in csv.DictReader(fh) if row[close_col] not in ("", "null")
        }


def test_beta_of_a_real_stock_against_spy_matches_a_least_squares_fit(shared_data: Path) -> None:
    stock_file = shared_data / "daily" / "sp500_2013_2018" / "AAPL_data.csv"
    spy_file = shared_data / "daily" / "context" / "SPY.csv"
    if not stock_file.exists() or not spy_file.exists():
        pytest.skip("AAPL_data.csv or SPY.csv missing from the shared data")
    stock = _closes(stock_file, "date", "close")
    spy = _closes(spy_file, "Date", "Close")
    days = sorted(d for d in spy if "2016-01-01" <= d <= "2017-12-31")
    close = np.array([[stock.get(d, math.nan) for d in days]])
    bench = np.array([spy[d] for d in days])
    r, m = daily_returns(close), daily_returns(bench)
    beta = rolling_beta(r, m, window=250)[0]
    keep = np.isfinite(r[0, -250:]) & np.isfinite(m[-250:])
    assert keep.sum() >= 240
    assert beta == pytest.approx(_ols_slope(r[0, -250:][keep], m[-250:][keep]), rel=1e-9)
    assert 0.5 < beta < 2.0  # a large-cap stock moves with the market
