"""Shared discovery measures, 0..1 scalings, and the universe snapshot."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from domain.discovery.picker import PickerResult, UniverseSnapshot
from domain.discovery.scoring import (
    annualised_volatility,
    average_dollar_volume,
    average_volume,
    compact_dollars,
    compact_number,
    compact_numbers,
    minmax_scale,
    nan_mean,
    percentile_rank,
    sector_balance_scores,
    sector_exposures,
    signed_percents,
    trailing_return,
    triangular_membership,
)
from domain.models.market import BarSeries, Quote
from domain.ports.market_data import FundamentalsRecord

NAN = math.nan


def test_average_volume_and_dollar_volume_over_the_window_skip_missing_days() -> None:
    close = np.array([[10.0, 20.0, 30.0, 40.0], [5.0, 5.0, NAN, 5.0], [NAN, NAN, NAN, NAN]])
    volume = np.array([[1.0, 100.0, 200.0, 300.0], [10.0, 20.0, NAN, 40.0], [NAN, NAN, NAN, NAN]])
    np.testing.assert_allclose(average_volume(volume, 3)[:2], [200.0, 30.0])
    # (30*200 + 40*300) / 2, and 5*40 alone (the other day is missing)
    np.testing.assert_allclose(average_dollar_volume(close, volume, 2)[:2], [9000.0, 200.0])
    expected = [(20 * 100 + 30 * 200 + 40 * 300) / 3, (5 * 20 + 5 * 40) / 2]
    np.testing.assert_allclose(average_dollar_volume(close, volume, 3)[:2], expected)
    assert np.isnan(average_volume(volume, 3)[2]) and np.isnan(average_dollar_volume(close, volume, 3)[2])
    np.testing.assert_allclose(average_volume(volume, 10)[:1], [601.0 / 4])  # window longer than history
    assert np.isnan(nan_mean(np.array([[1.0, NAN, NAN]]), min_observations=2)[0])


def test_annualised_volatility_is_the_sample_stdev_times_sqrt_252() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.02, (3, 80))
    r[1, 70] = NAN
    vol = annualised_volatility(r, 60)
    assert vol[0] == pytest.approx(np.std(r[0, -60:], ddof=1) * math.sqrt(252))
    kept = r[1, -60:][np.isfinite(r[1, -60:])]
    assert vol[1] == pytest.approx(np.std(kept, ddof=1) * math.sqrt(252))
    r[2, -60:-14] = NAN  # 14 of 60 left, 45 needed
    assert np.isnan(annualised_volatility(r, 60)[2])
    assert annualised_volatility(np.array([[0.01, -0.01]]), 2)[0] == pytest.approx(math.sqrt(2e-4 * 252))


def test_trailing_return_with_and_without_skipping_the_last_day() -> None:
    close = np.array([[100.0, 110.0, 121.0, 133.1], [100.0, NAN, 50.0, 60.0]])
    np.testing.assert_allclose(trailing_return(close, 2), [133.1 / 110 - 1, NAN])
    np.testing.assert_allclose(trailing_return(close, 2, skip=1), [0.21, -0.5])
    np.testing.assert_allclose(trailing_return(close, 3), [0.331, -0.4])
    assert np.isnan(trailing_return(close, 4)).all()


def test_percentile_rank_scales_ranks_to_0_1_averages_ties_and_keeps_nan() -> None:
    np.testing.assert_allclose(percentile_rank(np.array([30.0, 10.0, 20.0])), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(percentile_rank(np.array([5.0, NAN, 1.0, 5.0, 3.0])), [5 / 6, NAN, 0.0, 5 / 6, 1 / 3])
    np.testing.assert_allclose(percentile_rank(np.array([NAN, 7.0])), [NAN, 0.5])
    assert np.isnan(percentile_rank(np.array([NAN, NAN]))).all()
    np.testing.assert_allclose(percentile_rank(np.array([2.0, 2.0, 2.0])), [0.5, 0.5, 0.5])


def test_minmax_scale_handles_nan_and_constant_input() -> None:
    np.testing.assert_allclose(minmax_scale(np.array([2.0, 4.0, NAN, 3.0])), [0.0, 1.0, NAN, 0.5])
    np.testing.assert_allclose(minmax_scale(np.array([3.0, 3.0, NAN])), [0.5, 0.5, NAN])
    assert np.isnan(minmax_scale(np.array([NAN]))).all()


def test_triangular_membership_prefers_the_peak_over_both_ends() -> None:
    x = np.array([0.05, 0.10, 0.20, 0.30, 0.50, 0.70, 0.90, NAN])
    np.testing.assert_allclose(triangular_membership(x, 0.10, 0.30, 0.70), [0, 0, 0.5, 1, 0.5, 0, 0, NAN], atol=1e-12)
    with pytest.raises(ValueError, match="need low < peak < high"):
        triangular_membership(x, 0.3, 0.3, 0.7)


def test_sector_balance_is_1_for_new_sectors_and_falls_with_exposure() -> None:
    held = {"Energy": 0.2, "Financials": 0.5}
    watch = {"Energy": 1, "Health Care": 3}  # Energy 25% of the watchlist, Health Care 75%
    assert sector_exposures(held, watch) == {"Energy": 0.25, "Financials": 0.5, "Health Care": 0.75}
    scores = sector_balance_scores(["Utilities", "Energy", "Financials", None, "Health Care", "Energy"], held, watch)
    np.testing.assert_allclose(scores, [1.0, 1 - 0.25 / 0.4, 0.0, 0.5, 0.0, 1 - 0.25 / 0.4])
    np.testing.assert_allclose(sector_balance_scores(["Energy"], {"Energy": 0.1}, {}, saturation=0.2), [0.5])
    np.testing.assert_allclose(sector_balance_scores(["Energy"], {}, {}), [1.0])
    with pytest.raises(ValueError, match="share"):
        sector_exposures({"Energy": 25_000.0}, {})


def test_compact_formatting() -> None:
    values = [0, 999.4, 999.6, 3_200_000, 999_949, 999_960, 1e7, 2e9, 1.5e12, -3e6, NAN]
    expected = ["0", "999", "1.0K", "3.2M", "999.9K", "1.0M", "10.0M", "2.0B", "1.5T", "-3.0M", "n/a"]
    assert [compact_number(v) for v in values] == expected
    assert compact_numbers(np.array(values)) == expected
    assert compact_dollars(3_200_000) == "$3.2M"
    assert compact_numbers(np.array([3.2e6, NAN]), "$") == ["$3.2M", "n/a"]
    assert signed_percents(np.array([0.042, -0.061, NAN])) == ["+4.2%", "-6.1%", "n/a"]


def test_picker_result_rejects_a_score_outside_0_1() -> None:
    with pytest.raises(ValueError, match="score"):
        PickerResult("llm", "AAPL", 1.2, True, ())
    with pytest.raises(ValueError, match="score"):
        PickerResult("llm", "AAPL", NAN, True, ())
    assert PickerResult("llm", "AAPL", 1.0, True, ("x",)).details == {}


def _series(symbol: str, days: list[date], closes: list[float]) -> BarSeries:
    c = np.array(closes)
    return BarSeries(symbol, tuple(days), c, c, c, c, c * 1000)


def test_snapshot_aligns_bars_on_the_benchmark_days_up_to_as_of() -> None:
    days = [date(2024, 3, 1) + timedelta(days=i) for i in range(6)]
    spy = _series("SPY", days, [500, 501, 502, 503, 504, 505])
    bars = {
        "MSFT": _series("MSFT", days, [1, 2, 3, 4, 5, 6]),  # identical days, includes one after as_of
        "AAPL": _series("AAPL", [days[0], days[2], days[4]], [10, 30, 50]),  # gaps
        "NEW": _series("NEW", [days[3], days[4]], [7, 8]),  # short history
        "ODD": _series("ODD", [date(2024, 2, 1), days[1], days[2]], [0.5, 2, 3]),  # a day SPY does not have
    }
    at = datetime(2024, 3, 5, tzinfo=UTC)
    quotes = {
        "MSFT": Quote("MSFT", 99.0, 101.0, 100.0, at),
        "AAPL": Quote("AAPL", 0.0, 0.0, 10.0, at),  # empty book: unknown spread
    }
    fundamentals = {
        "MSFT": FundamentalsRecord("MSFT", "Information Technology", 3e12, date(2024, 3, 1)),
        "AAPL": FundamentalsRecord("AAPL", "Information Technology", None, date(2024, 3, 1)),
        "NEW": FundamentalsRecord("NEW", "Energy", 5e9, date(2024, 3, 10)),  # known only after as_of
    }
    snap = UniverseSnapshot.from_series(days[4], bars, spy, quotes, fundamentals)
    assert snap.symbols == ("AAPL", "MSFT", "NEW", "ODD")
    assert snap.n_days == 5
    np.testing.assert_array_equal(snap.benchmark_close, [500, 501, 502, 503, 504])
    np.testing.assert_array_equal(snap.close[0], [10, NAN, 30, NAN, 50])
    np.testing.assert_array_equal(snap.close[1], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(snap.close[2], [NAN, NAN, NAN, 7, 8])
    np.testing.assert_array_equal(snap.close[3], [NAN, 2, 3, NAN, NAN])  # the bar before the first SPY day is dropped
    np.testing.assert_array_equal(snap.volume[1], [1000, 2000, 3000, 4000, 5000])
    np.testing.assert_allclose(snap.spread_pct, [NAN, 0.02, NAN, NAN])
    np.testing.assert_array_equal(snap.market_caps, [NAN, 3e12, NAN, NAN])
    assert snap.sectors == ("Information Technology", "Information Technology", None, None)
    np.testing.assert_allclose(snap.returns[1], [1.0, 0.5, 1 / 3, 0.25])
    np.testing.assert_allclose(snap.benchmark_returns, np.diff([500, 501, 502, 503, 504]) / [500, 501, 502, 503])


def test_snapshot_validates_shapes_and_unique_symbols() -> None:
    ok = {
        "as_of": date(2024, 1, 2),
        "symbols": ("A", "B"),
        "close": np.ones((2, 3)),
        "volume": np.ones((2, 3)),
        "spread_pct": np.zeros(2),
        "sectors": (None, None),
        "market_caps": np.ones(2),
        "benchmark_close": np.ones(3),
    }
    UniverseSnapshot(**ok)  # type: ignore[arg-type]
    for field, bad, message in [
        ("symbols", ("A", "A"), "symbols must be unique"),
        ("volume", np.ones((2, 4)), "volume shape"),
        ("spread_pct", np.zeros(3), "spread_pct must have shape"),
        ("sectors", (None,), "sectors has 1 entries for 2 symbols"),
        ("benchmark_close", np.ones(2), "benchmark_close must have shape"),
        ("close", np.ones(3), "close must have shape"),
    ]:
        with pytest.raises(ValueError, match=message):
            UniverseSnapshot(**{**ok, field: bad})  # type: ignore[arg-type]
