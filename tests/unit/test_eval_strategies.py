"""Baseline strategies of the backtest eval: the days they trade, the names they pick, the costs they pay, and
that nothing decided at a close depends on a later bar."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from application.evals.strategies import (
    Order,
    TripShape,
    aligned,
    momentum,
    momentum_plan,
    momentum_ranking,
    random_entries,
    random_plan,
    replay,
    sma_cross,
    sma_cross_plan,
)
from domain.models.market import BarSeries
from domain.risk.config import FeeSettings

FREE = FeeSettings(commission_per_order=Decimal(0), sec_fee_per_million=Decimal(0), taf_per_share=Decimal(0),
                   slippage_bps=Decimal(0))
DAY0 = date(2024, 1, 1)


def days(n: int) -> tuple[date, ...]:
    return tuple(DAY0 + timedelta(days=i) for i in range(n))


Prices = Sequence[float] | np.ndarray


def series(symbol: str, closes: Prices, opens: Prices | None = None) -> BarSeries:
    c = np.asarray(closes, dtype=np.float64)
    o = np.asarray(opens if opens is not None else closes, dtype=np.float64)
    return BarSeries(symbol, days(len(c)), o, np.maximum(o, c) * 1.01, np.minimum(o, c) * 0.99, c,
                     np.full(len(c), 1e6))


def walk(symbol: str, n: int, seed: int) -> BarSeries:
    rng = np.random.default_rng(seed)
    closes = 50 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, n)))
    opens = closes * np.exp(rng.normal(0, 0.005, n))
    return series(symbol, closes, opens)


def test_sma_cross_enters_after_the_close_that_crosses_above_and_exits_after_the_one_below() -> None:
    # fast 2 / slow 4: day 5 closes with SMA2 11 > SMA4 10.5 (enter at day 6's open); day 9 closes with
    # SMA2 11 < SMA4 12.5 (exit at day 10's open). The window starts at day 3.
    s = series("X", [10, 10, 10, 10, 10, 12, 14, 14, 14, 8, 6, 6, 6])
    window = s.days[3:]
    plan = sma_cross_plan(s, window, fast=2, slow=4)
    assert plan == {3: [Order("X", buy=True)], 7: [Order("X", buy=False)]}
    run = sma_cross({"X": s}, window, Decimal(1000), FREE, fast=2, slow=4)
    assert run.fills == 2
    assert run.values[:3] == (Decimal(1000),) * 3  # nothing held before day 6's open
    assert run.values[-1] == run.values[-2] == run.values[-3]  # all cash after day 10's open


def test_sma_cross_without_enough_history_stays_out() -> None:
    s = series("X", [10, 11, 12, 13, 14])
    assert sma_cross_plan(s, s.days, fast=2, slow=10) == {}


def test_momentum_holds_the_best_returns_and_rotates_at_each_rebalance() -> None:
    # lookback 2: at day 2 A (+30%) and B (+20%) have risen most; at day 4 D (+44%) and C (+40%) have.
    bars = {"A": series("A", [10, 11, 13, 13, 12, 12]), "B": series("B", [10, 10.5, 12, 12, 11, 11]),
            "C": series("C", [10, 10, 10, 12, 14, 15]), "D": series("D", [10, 10, 9, 11, 13, 13])}
    window = days(6)[2:]
    assert momentum_ranking(bars, window[0], lookback=2, top=2) == ("A", "B")
    assert momentum_ranking(bars, window[2], lookback=2, top=2) == ("D", "C")
    plan = momentum_plan(bars, window, lookback=2, top=2, every=2)
    assert plan == {1: [Order("A", buy=True), Order("B", buy=True)],
                    3: [Order("A", buy=False), Order("B", buy=False), Order("D", buy=True), Order("C", buy=True)]}


def test_momentum_new_names_share_the_cash_equally() -> None:
    bars = {"A": series("A", [10, 11, 12, 12]), "B": series("B", [10, 10.5, 11, 11]),
            "C": series("C", [10, 9, 8, 8])}
    run = momentum(bars, days(4)[2:], Decimal("200.02"), FREE, lookback=2, top=2, every=5)
    # A (+20%) and B (+10%) are bought at day 3's open with 100.01 each, a cent kept back: 100/12 shares of A
    # and 100/11 of B, each 100.00 at the open and at the close, with 0.02 left in cash.
    assert run.fills == 2
    assert run.values[-1] == Decimal("200.02")


def test_random_entries_are_reproducible_and_keep_each_trip_shape() -> None:
    window = days(40)
    trips = [TripShape(3, Decimal(100)), TripShape(10, Decimal(250)), TripShape(1, Decimal(50))]
    a = random_plan(["A", "B", "C"], window, trips, seed=5)
    assert a == random_plan(["C", "B", "A"], window, trips, seed=5)
    assert any(random_plan(["A", "B", "C"], window, trips, seed=s) != a for s in range(6, 12))
    orders = [(k, o) for k, os in a.items() for o in os]
    for i, trip in enumerate(trips):
        (buy_at, buy), = [(k, o) for k, o in orders if o.buy and o.lot.endswith(f"#{i}")]
        (sell_at, _), = [(k, o) for k, o in orders if not o.buy and o.lot.endswith(f"#{i}")]
        assert sell_at - buy_at == trip.sessions
        assert buy.notional == trip.notional
        assert buy_at >= 1 and sell_at <= len(window) - 1
    bars = {s: walk(s, 40, seed) for seed, s in enumerate("ABC")}
    first = random_entries(bars, window, Decimal(1000), FREE, trips, seed=5)
    assert first == random_entries(bars, window, Decimal(1000), FREE, trips, seed=5)
    assert first.fills == 6


def test_a_trip_longer_than_the_window_is_held_as_long_as_the_window_allows() -> None:
    plan = random_plan(["A"], days(5), [TripShape(50, Decimal(10))], seed=1)
    assert plan == {1: [Order("A", True, Decimal(10), "A#0")], 4: [Order("A", False, lot="A#0")]}


def test_fees_and_slippage_reduce_equity_exactly_as_fee_settings_say() -> None:
    s = series("X", [100, 100, 110, 110], opens=[100, 100, 110, 110])
    plan = {1: [Order("X", buy=True)], 2: [Order("X", buy=False)]}
    fees = FeeSettings(commission_per_order=Decimal(1), slippage_bps=Decimal(0))
    # 1001.01 less the buy's $1 commission and the cent kept back buys exactly 10 shares at 100 (cash 0.01);
    # selling them at 110 gives 1100 less $1 commission, SEC fee 1100 x 27.80 / 1e6 = 0.03058 -> 0.04 and
    # TAF 10 x 0.000166 -> 0.01 (both rounded up).
    run = replay("x", {"X": s}, s.days, Decimal("1001.01"), fees, plan)
    assert run.values == (Decimal("1001.01"), Decimal("1000.01"), Decimal("1098.96"), Decimal("1098.96"))
    assert run.fees == Decimal("2.05")
    slipped = FeeSettings(commission_per_order=Decimal(0), sec_fee_per_million=Decimal(0), taf_per_share=Decimal(0),
                          slippage_bps=Decimal(10))
    # 10 bps: buy at 100.10 (10 shares for 1001.00), sell at 109.89.
    run = replay("x", {"X": s}, s.days, Decimal("1001.01"), slipped, plan)
    assert run.values[2] == Decimal("0.01") + Decimal("1098.90")
    assert run.fees == 0


def test_dividends_are_credited_on_the_ex_date_to_shares_held_at_the_previous_close() -> None:
    s = series("X", [100, 100, 100, 100])
    plan = {1: [Order("X", buy=True)]}
    run = replay("x", {"X": s}, s.days, Decimal("1000.01"), FREE, plan, {"X": {s.days[1]: Decimal(1),
                                                                              s.days[3]: Decimal(2)}})
    assert run.dividends == Decimal(20)  # bought at day 1's open: the day-1 ex-date pays nothing
    assert run.values[-1] == Decimal("1020.01")


def test_a_symbol_missing_a_session_of_the_window_is_left_out() -> None:
    full = series("A", [1, 2, 3, 4])
    gap = BarSeries("B", full.days[:2] + full.days[3:], full.open[:3], full.high[:3], full.low[:3], full.close[:3],
                    full.volume[:3])
    assert list(aligned({"A": full, "B": gap}, ["A", "B", "C"], full.days)) == ["A"]


def perturbed_after(bars: Mapping[str, BarSeries], cut: date, seed: int) -> dict[str, BarSeries]:
    """Every bar after `cut` scaled at random (opens, highs, lows, closes and volumes)."""
    rng = np.random.default_rng(seed)
    out = {}
    for s, b in bars.items():
        k = sum(1 for d in b.days if d <= cut)
        f = np.ones(len(b))
        f[k:] = rng.uniform(0.5, 1.5, len(b) - k)
        out[s] = BarSeries(s, b.days, b.open * f, b.high * f, b.low * f, b.close * f,
                           b.volume * f)
    return out


PLANS: dict[str, Callable[[Mapping[str, BarSeries], Sequence[date]], Any]] = {
    "sma_cross": lambda bars, window: {s: sma_cross_plan(b, window, 5, 20) for s, b in bars.items()},
    "momentum": lambda bars, window: momentum_plan(bars, window, lookback=5, top=2, every=3),
}


def _upto(plan: Any, k: int) -> Any:
    if all(isinstance(v, dict) for v in plan.values()):
        return {s: _upto(p, k) for s, p in plan.items()}
    return {i: orders for i, orders in plan.items() if i <= k}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_no_decision_depends_on_a_bar_after_its_close(name: str) -> None:
    bars = {s: walk(s, 160, seed) for seed, s in enumerate(["A", "B", "C", "D", "E"])}
    window = bars["A"].days[60:]
    plan = PLANS[name](bars, window)
    assert any(_upto(plan, len(window)).values()), "the plan should trade"
    later_changed = []
    for t in (0, 10, 37, 70, len(window) - 2):
        changed = PLANS[name](perturbed_after(bars, window[t], seed=t), window)
        # what was decided at closes 0..t fills at opens 1..t+1 and may not change
        assert _upto(changed, t + 1) == _upto(plan, t + 1), f"look-ahead at close {t}"
        later_changed.append(changed != plan)
    assert any(later_changed), "the perturbation should change later decisions, or the test proves nothing"


@pytest.mark.parametrize("strategy", ["sma_cross", "momentum"])
def test_values_up_to_a_close_do_not_depend_on_later_bars(strategy: str) -> None:
    bars = {s: walk(s, 160, seed) for seed, s in enumerate(["A", "B", "C", "D", "E"])}
    window = bars["A"].days[60:]

    def run(b: Mapping[str, BarSeries]) -> tuple[Decimal, ...]:
        if strategy == "sma_cross":
            return sma_cross(b, window, Decimal(1000), FeeSettings(), fast=5, slow=20).values
        return momentum(b, window, Decimal(1000), FeeSettings(), lookback=5, top=2, every=3).values

    base = run(bars)
    for t in (5, 50, 90):
        assert run(perturbed_after(bars, window[t], seed=t))[: t + 1] == base[: t + 1]
