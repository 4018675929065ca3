"""Metric picker: hard filters with inclusive boundaries, reasons with numbers, liquidity score."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import pytest

from domain.discovery.beta import daily_returns, rolling_beta
from domain.discovery.config import MetricFilterSettings
from domain.discovery.metric_picker import MetricPicker
from domain.discovery.picker import PickerContext, PickerResult, SymbolPicker, UniverseSnapshot

NAN = math.nan
N_DAYS = 30
MARKET = np.random.default_rng(7).normal(0.0, 0.01, N_DAYS - 1)

# Loose settings: each test tightens the filter it is about.
BASE = MetricFilterSettings(
    min_avg_volume=1_000,
    min_avg_dollar_volume=50_000,
    max_spread_pct=0.01,
    min_market_cap=1e9,
    max_market_cap=None,
    min_beta=None,
    max_beta=None,
    beta_window_days=20,
    volume_window_days=5,
    min_price=5.0,
)


def universe(**specs: dict[str, Any]) -> UniverseSnapshot:
    """One row per keyword: price (flat unless beta given), volume, spread, cap, beta, close/volume overrides."""
    closes, volumes = [], []
    for spec in specs.values():
        price = spec.get("price", 50.0)
        if "beta" in spec:
            close = price * np.cumprod(np.concatenate(([1.0], 1.0 + spec["beta"] * MARKET)))
        else:
            close = np.full(N_DAYS, price)
        closes.append(spec.get("close", close))
        volumes.append(spec.get("volumes", np.full(N_DAYS, float(spec.get("volume", 100_000)))))
    return UniverseSnapshot(
        as_of=date(2024, 5, 31),
        symbols=tuple(specs),
        close=np.array(closes, dtype=float),
        volume=np.array(volumes, dtype=float),
        spread_pct=np.array([s.get("spread", 0.001) for s in specs.values()]),
        sectors=tuple(s.get("sector") for s in specs.values()),
        market_caps=np.array([s.get("cap", 5e9) for s in specs.values()]),
        benchmark_close=400 * np.cumprod(np.concatenate(([1.0], 1.0 + MARKET))),
    )


def pick(settings: MetricFilterSettings, **specs: dict[str, Any]) -> dict[str, PickerResult]:
    results = MetricPicker(settings).pick(universe(**specs), PickerContext())
    assert [r.symbol for r in results] == list(specs)
    assert all(r.picker == "metric" for r in results)
    return {r.symbol: r for r in results}


def test_values_exactly_at_a_threshold_pass() -> None:
    got = pick(
        BASE,
        PRICE_EDGE={"price": 5.0, "volume": 10_000, "spread": 0.01, "cap": 1e9},  # price, dollar volume, spread, cap
        VOLUME_EDGE={"price": 50.0, "volume": 1_000},  # volume 1,000 and dollar volume 50,000
    )
    assert got["PRICE_EDGE"].passed and got["VOLUME_EDGE"].passed
    assert got["PRICE_EDGE"].reasons[0] == "passed all filters"


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"price": 100.0, "volume": 999}, "avg volume 999 < 1.0K shares"),
        ({"price": 24.9, "volume": 2_000}, "avg dollar volume $49.8K < $50.0K"),
        ({"price": 4.99, "volume": 20_000}, "price $4.99 < $5.00"),
        ({"spread": 0.0101}, "spread 1.01% > 1.00%"),
        ({"spread": NAN}, "unknown spread"),
        ({"cap": 9.99e8}, "market cap $999.0M < $1.0B"),
        ({"cap": NAN}, "unknown market cap"),
        ({"volumes": np.full(N_DAYS, NAN)}, "no volume in the last 5 sessions"),
        ({"close": np.concatenate((np.full(N_DAYS - 1, 50.0), [NAN]))}, "no close on the last session"),
    ],
)
def test_a_value_just_past_a_threshold_or_unknown_is_rejected_with_the_number(
    spec: dict[str, Any], reason: str
) -> None:
    got = pick(BASE, BAD=spec, GOOD={})["BAD"]
    assert not got.passed
    assert got.score == 0.0
    assert got.reasons == (reason,)


def test_values_that_would_print_like_the_threshold_show_every_digit() -> None:
    got = pick(BASE, BAD={"price": 100.0, "volume": 999.99})["BAD"]
    assert got.reasons == ("avg volume 999.99 < 1000.0 shares",)


def test_a_symbol_failing_several_filters_gets_every_reason_in_order() -> None:
    got = pick(BASE, BAD={"price": 4.0, "volume": 500, "spread": NAN, "cap": NAN}, GOOD={})["BAD"]
    assert got.reasons == (
        "avg volume 500 < 1.0K shares",
        "avg dollar volume $2.0K < $50.0K",
        "price $4.00 < $5.00",
        "unknown spread",
        "unknown market cap",
    )


def test_market_cap_maximum_and_unknown_cap_with_only_a_maximum() -> None:
    settings = BASE.model_copy(update={"min_market_cap": None, "max_market_cap": 5e9})
    got = pick(settings, EDGE={"cap": 5e9}, BIG={"cap": 5.1e9}, UNKNOWN={"cap": NAN})
    assert got["EDGE"].passed
    assert got["BIG"].reasons == ("market cap $5.1B > $5.0B",)
    assert got["UNKNOWN"].reasons == ("unknown market cap",)


def test_unknown_market_cap_passes_only_when_no_cap_bound_is_configured() -> None:
    settings = BASE.model_copy(update={"min_market_cap": None, "max_market_cap": None})
    assert pick(settings, UNKNOWN={"cap": NAN})["UNKNOWN"].passed


def test_beta_range_and_not_enough_history() -> None:
    settings = BASE.model_copy(update={"min_beta": 0.5, "max_beta": 2.5})
    short = np.concatenate((np.full(N_DAYS - 10, NAN), np.full(10, 50.0)))
    got = pick(
        settings,
        LOW={"beta": 0.4},
        MID={"beta": 1.0},
        HIGH={"beta": 2.6},
        YOUNG={"close": short},
    )
    assert got["MID"].passed
    assert got["MID"].details["beta"] == pytest.approx(1.0)
    assert got["LOW"].reasons == ("beta 0.40 < 0.50",)
    assert got["HIGH"].reasons == ("beta 2.60 > 2.50",)
    assert got["YOUNG"].reasons == ("not enough history for beta (needs 15 daily returns in the last 20 sessions)",)
    no_bounds = BASE.model_copy(update={"min_beta": None, "max_beta": None})
    assert pick(no_bounds, YOUNG={"close": short})["YOUNG"].passed


def test_beta_boundaries_are_inclusive() -> None:
    u = universe(X={"beta": 1.3})
    beta = float(rolling_beta(daily_returns(u.close), daily_returns(u.benchmark_close), 20)[0])
    at = BASE.model_copy(update={"min_beta": beta, "max_beta": beta})
    assert MetricPicker(at).pick(u, PickerContext())[0].passed
    above = BASE.model_copy(update={"min_beta": float(np.nextafter(beta, np.inf))})
    assert not MetricPicker(above).pick(u, PickerContext())[0].passed


def test_passing_symbols_score_half_to_one_by_liquidity_and_rejected_ones_zero() -> None:
    got = pick(
        BASE,
        THIN={"volume": 2_000},  # $100K a day
        MEDIUM={"volume": 20_000},  # $1M
        DEEP={"volume": 200_000},  # $10M
        REJECTED={"spread": 0.05, "volume": 2_000_000},
    )
    assert [got[s].score for s in ("THIN", "MEDIUM", "DEEP", "REJECTED")] == [0.5, 0.75, 1.0, 0.0]
    assert got["DEEP"].reasons == (
        "passed all filters",
        "liquidity percentile 1.00 among 3 passing (avg dollar volume $10.0M)",
    )
    assert got["REJECTED"].details["avg_dollar_volume"] == pytest.approx(100_000_000)
    assert set(got["THIN"].details) == {"avg_volume", "avg_dollar_volume", "price", "spread_pct", "market_cap", "beta"}


def test_evaluate_gives_the_same_verdicts_as_pick() -> None:
    u = universe(A={"volume": 500}, B={}, C={"spread": NAN})
    ev = MetricPicker(BASE).evaluate(u)
    results = MetricPicker(BASE).pick(u, PickerContext())
    assert ev.passed.tolist() == [r.passed for r in results] == [False, True, False]
    assert ev.score.tolist() == [r.score for r in results]


def test_is_a_symbol_picker() -> None:
    assert isinstance(MetricPicker(BASE), SymbolPicker)


def test_a_filter_without_data_for_any_symbol_is_skipped_with_its_reason() -> None:
    u = universe(A={"cap": NAN}, B={"cap": NAN, "volume": 500}, C={"cap": NAN, "volume": 200_000})
    ev = MetricPicker(BASE).evaluate(u)
    reason = "market cap filter skipped: no market cap known for any of the 3 symbols (minimum $1.0B not applied)"
    assert dict(ev.skipped) == {"market_cap": reason}
    got = {r.symbol: r for r in ev.results()}
    assert got["A"].passed and got["C"].passed
    assert got["A"].reasons[0] == "passed all filters" and got["A"].reasons[-1] == reason
    assert got["B"].reasons == ("avg volume 500 < 1.0K shares", "avg dollar volume $25.0K < $50.0K")  # others apply
    assert got["C"].score > got["A"].score  # and the liquidity ranking


def test_a_filter_with_data_for_some_symbols_still_rejects_the_unknown_ones() -> None:
    ev = MetricPicker(BASE).evaluate(universe(KNOWN={"cap": 5e9}, SMALL={"cap": 5e8}, UNKNOWN={"cap": NAN}))
    assert dict(ev.skipped) == {}
    got = {r.symbol: r for r in ev.results()}
    assert got["KNOWN"].passed and got["KNOWN"].reasons[-1].startswith("liquidity percentile")
    assert got["UNKNOWN"].reasons == ("unknown market cap",)
    assert got["SMALL"].reasons == ("market cap $500.0M < $1.0B",)


def test_spread_and_beta_without_data_for_any_symbol_are_skipped_too() -> None:
    settings = BASE.model_copy(update={"min_beta": 0.5, "max_beta": 2.5})
    short = np.concatenate((np.full(N_DAYS - 10, NAN), np.full(10, 50.0)))
    ev = MetricPicker(settings).evaluate(universe(A={"spread": NAN, "close": short}, B={"spread": NAN, "close": short}))
    assert ev.skipped == {
        "spread": "spread filter skipped: no quote known for any of the 2 symbols (maximum 1.00% not applied)",
        "beta": "beta filter skipped: not enough history for beta for any of the 2 symbols (needs 15 daily returns "
                "in the last 20 sessions; range 0.50..2.50 not applied)",
    }
    assert ev.passed.tolist() == [True, True]


def test_a_filter_without_a_bound_is_not_reported_as_skipped() -> None:
    settings = BASE.model_copy(update={"min_market_cap": None})
    assert dict(MetricPicker(settings).evaluate(universe(A={"cap": NAN})).skipped) == {}
