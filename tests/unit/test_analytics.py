"""Performance analytics: every figure checked against empyrical, and the money arithmetic by hand."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import empyrical
import numpy as np
import pandas as pd
import pytest

from domain.analytics import (
    Performance,
    performance,
    performance_for_window,
    sharpe_ratio,
    time_weighted_returns,
    window_start,
)
from domain.money import money

REL = 1e-9


def sessions_from(start: date, n: int) -> list[date]:
    """n weekdays from `start`."""
    out: list[date] = []
    d = start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def random_equity(seed: int, n: int, start: Decimal = Decimal("650")) -> list[tuple[date, Decimal]]:
    rng = np.random.default_rng(seed)
    days = sessions_from(date(2021, 1, 4), n)
    values = float(start) * np.cumprod(1 + rng.normal(0.0005, 0.015, n))
    values[0] = float(start)
    return [(d, money(v)) for d, v in zip(days, values, strict=True)]


def float_returns(equity: list[tuple[date, Decimal]], flows: dict[date, float] | None = None) -> np.ndarray:
    """The returns as a user would compute them in a spreadsheet: (E_t - F_t) / E_{t-1} - 1."""
    e = pd.Series([float(v) for _, v in equity], index=[d for d, _ in equity])
    f = pd.Series({d: (flows or {}).get(d, 0.0) for d, _ in equity})
    return ((e - f) / e.shift(1) - 1).iloc[1:].to_numpy()


def assert_matches_empyrical(p: Performance, r: np.ndarray, *, bench: np.ndarray | None, rf: float) -> None:
    assert p.days == len(r)
    assert p.total_return == pytest.approx(empyrical.cum_returns_final(r), rel=REL)
    assert p.annualized_return == pytest.approx(empyrical.annual_return(r), rel=REL)
    assert p.sharpe == pytest.approx(empyrical.sharpe_ratio(r, risk_free=rf), rel=REL)
    assert p.sortino == pytest.approx(empyrical.sortino_ratio(r, required_return=rf), rel=REL)
    assert p.max_drawdown == pytest.approx(-empyrical.max_drawdown(r), rel=REL)
    assert p.volatility == pytest.approx(empyrical.annual_volatility(r), rel=REL)
    if bench is None:
        assert p.alpha is None
        assert p.beta is None
    else:
        alpha, beta = empyrical.alpha_beta(r, bench, risk_free=rf)
        assert p.alpha == pytest.approx(alpha, rel=1e-7, abs=1e-12)
        assert p.beta == pytest.approx(beta, rel=REL)


@pytest.mark.parametrize(
    ("seed", "n", "rf"), [(1, 30, 0.0), (2, 120, 0.0), (3, 252, 0.0001), (4, 500, 0.0), (5, 8, 0.0)]
)
def test_seeded_series_match_empyrical(seed: int, n: int, rf: float) -> None:
    equity = random_equity(seed, n)
    bench = np.random.default_rng(seed + 100).normal(0.0004, 0.01, n - 1)
    p = performance(equity, benchmark_returns=list(bench), risk_free=rf)
    r = float_returns(equity)
    np.testing.assert_allclose(time_weighted_returns(equity), r, rtol=0, atol=1e-14)
    assert_matches_empyrical(p, r, bench=bench, rf=rf)
    assert p.start == equity[0][0]
    assert p.end == equity[-1][0]
    assert p.profit == equity[-1][1] - equity[0][1]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_series_with_deposits_and_withdrawals_match_empyrical_on_time_weighted_returns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    days = sessions_from(date(2022, 3, 1), 200)
    flows: dict[date, float] = {days[i]: float(rng.choice([-200, 300, 1000])) for i in rng.choice(199, 8) + 1}
    value, equity = 1000.0, []
    for d, r in zip(days, rng.normal(0.0003, 0.012, len(days)), strict=True):
        value = value * (1 + r) + flows.get(d, 0.0) if equity else value
        equity.append((d, money(value)))
    flow_list = [(d, Decimal(str(a))) for d, a in flows.items()]
    p = performance(equity, flows=flow_list)
    r = float_returns(equity, flows)
    np.testing.assert_allclose(time_weighted_returns(equity, flow_list), r, rtol=0, atol=1e-14)
    assert_matches_empyrical(p, r, bench=None, rf=0.0)
    assert p.net_deposits == sum(Decimal(str(a)) for a in flows.values())
    assert p.profit == equity[-1][1] - equity[0][1] - p.net_deposits


def test_real_spy_curve_matches_empyrical(shared_data: Path) -> None:
    context = shared_data / "daily" / "context"
    if not (context / "SPY.csv").is_file() or not (context / "IWM.csv").is_file():
        pytest.skip(f"SPY.csv / IWM.csv not found in {context}")
    spy = pd.read_csv(context / "SPY.csv", index_col="Date", parse_dates=True)["Adj Close"]
    iwm = pd.read_csv(context / "IWM.csv", index_col="Date", parse_dates=True)["Adj Close"]
    both = pd.concat([spy, iwm], axis=1, keys=["spy", "iwm"]).dropna().loc["2012-01-01":"2017-12-31"]
    equity = [(ts.date(), money(650 * v / both["spy"].iloc[0])) for ts, v in both["spy"].items()]
    bench = both["iwm"].pct_change().iloc[1:].to_numpy()
    p = performance(equity, benchmark_returns=list(bench))
    assert p.days > 1000
    assert_matches_empyrical(p, float_returns(equity), bench=bench, rf=0.0)
    # A sanity anchor on real data: SPY moved with small caps, beta well between 0 and 1.5.
    assert p.beta is not None and 0.5 < p.beta < 1.2


def test_a_deposit_is_not_return_and_profit_is_relative_to_net_deposits() -> None:
    d = sessions_from(date(2024, 1, 2), 4)
    equity = [(d[0], Decimal("1000")), (d[1], Decimal("1010")), (d[2], Decimal("1510")), (d[3], Decimal("1525.10"))]
    p = performance(equity, flows=[(d[2], Decimal("500"))])
    assert list(time_weighted_returns(equity, [(d[2], Decimal("500"))])) == pytest.approx([0.01, 0.0, 0.01])
    assert p.total_return == pytest.approx(1.01 * 1.01 - 1)
    assert p.max_drawdown == 0.0
    assert p.net_deposits == Decimal("500")
    assert p.profit == Decimal("25.10")
    assert p.return_on_net_deposits == pytest.approx(25.10 / 1500)


def test_a_withdrawal_is_not_a_loss() -> None:
    d = sessions_from(date(2024, 1, 2), 3)
    equity = [(d[0], Decimal("1000")), (d[1], Decimal("700")), (d[2], Decimal("707"))]
    p = performance(equity, flows=[(d[1], Decimal("-300"))])
    assert p.total_return == pytest.approx(0.01)
    assert p.max_drawdown == 0.0
    assert p.profit == Decimal("7")
    assert p.return_on_net_deposits == pytest.approx(7 / 700)
    naive = performance(equity)
    assert naive.max_drawdown == pytest.approx(0.3)


def test_weekend_deposit_counts_on_next_session_and_opening_deposit_is_starting_equity() -> None:
    fri, mon = date(2024, 1, 5), date(2024, 1, 8)
    equity = [(fri, Decimal("1000")), (mon, Decimal("1200"))]
    flows = [(date(2024, 1, 1), Decimal("1000")), (date(2024, 1, 6), Decimal("200"))]
    p = performance(equity, flows=flows)
    assert p.total_return == pytest.approx(0.0)
    assert p.net_deposits == Decimal("200")
    assert p.profit == Decimal("0")


def test_funding_an_empty_account_is_not_return() -> None:
    d = sessions_from(date(2024, 1, 2), 3)
    equity = [(d[0], Decimal("0")), (d[1], Decimal("650")), (d[2], Decimal("663"))]
    p = performance(equity, flows=[(d[1], Decimal("650"))])
    assert list(time_weighted_returns(equity, [(d[1], Decimal("650"))])) == pytest.approx([0.0, 0.02])
    assert p.profit == Decimal("13")
    assert p.return_on_net_deposits == pytest.approx(0.02)


def test_trade_statistics_by_hand() -> None:
    equity = random_equity(7, 10)
    p = performance(equity, trade_returns=[0.05, -0.02, 0.0, 0.03, -0.04], exposure=[0.0, 0.5, 1.0, 0.25])
    assert p.trades == 5
    assert p.win_rate == pytest.approx(2 / 5)
    assert p.profit_factor == pytest.approx(0.08 / 0.06)
    assert p.exposure == pytest.approx(0.4375)


def test_trade_statistics_edge_cases() -> None:
    equity = random_equity(8, 5)
    assert performance(equity, trade_returns=[0.01, 0.02]).profit_factor == math.inf
    assert performance(equity, trade_returns=[-0.01]).profit_factor == 0.0
    assert performance(equity, trade_returns=[0.0]).profit_factor is None
    none = performance(equity)
    assert (none.win_rate, none.profit_factor, none.exposure, none.trades) == (None, None, None, 0)


def test_empty_and_single_point_series_give_none_not_errors() -> None:
    empty = performance([])
    assert empty.total_return is None and empty.sharpe is None and empty.max_drawdown is None
    assert (empty.start, empty.end, empty.days, empty.profit) == (None, None, 0, Decimal("0"))
    one = performance([(date(2024, 1, 2), Decimal("650"))], benchmark_returns=[])
    assert one.total_return is None and one.alpha is None and one.beta is None
    assert one.return_on_net_deposits == 0.0
    two = performance(random_equity(9, 2))
    assert two.total_return is not None and two.sharpe is None and two.volatility is None


def test_flat_and_steady_curves_agree_with_empyrical_on_infinities() -> None:
    days = sessions_from(date(2024, 1, 2), 6)
    flat = performance([(d, Decimal("650")) for d in days], benchmark_returns=[0.01, -0.01, 0.0, 0.02, 0.0])
    assert np.isnan(empyrical.sharpe_ratio(np.zeros(5)))
    assert flat.sharpe is None and flat.sortino is None
    assert flat.max_drawdown == 0.0 and flat.volatility == 0.0
    assert flat.beta == 0.0 and flat.alpha == 0.0
    steady = np.full(5, 0.01)
    equity = [(d, Decimal(100) * Decimal("1.01") ** i) for i, d in enumerate(days)]
    p = performance(equity, benchmark_returns=list(steady))
    assert p.sharpe == empyrical.sharpe_ratio(steady) == math.inf
    assert p.sortino == empyrical.sortino_ratio(steady) == math.inf
    assert p.beta is None and np.isnan(empyrical.beta(steady, steady))
    assert sharpe_ratio([-0.01, -0.01, -0.01]) == -math.inf


def test_to_dict_is_json_safe() -> None:
    p = performance(random_equity(10, 20), trade_returns=[0.02, 0.01], flows=[(date(2021, 1, 6), Decimal("10.50"))])
    d = json.loads(json.dumps(p.to_dict(), allow_nan=False))
    assert d["profit_factor"] == "inf" and float(d["profit_factor"]) == math.inf
    assert d["net_deposits"] == "10.50"
    assert d["start"] == "2021-01-04"
    assert d["sharpe"] == pytest.approx(p.sharpe)


def test_inconsistent_inputs_raise() -> None:
    equity = random_equity(11, 5)
    with pytest.raises(ValueError, match="increasing"):
        performance(list(reversed(equity)))
    with pytest.raises(ValueError, match="benchmark"):
        performance(equity, benchmark_returns=[0.01])


# ---- windows -------------------------------------------------------------------------------------------------

DAYS = sessions_from(date(2024, 1, 2), 30)
EQUITY = [(d, Decimal(1000 + 10 * i)) for i, d in enumerate(DAYS)]
AS_OF = DAYS[-1]


@pytest.mark.parametrize(("window", "first"), [("today", 29), ("week", 25), ("month", 9)])
def test_window_start_counts_sessions(window: str, first: int) -> None:
    assert window_start(window, AS_OF, DAYS) == DAYS[first]


def test_window_start_edges() -> None:
    assert window_start("all", AS_OF, DAYS) is None
    saturday = AS_OF + timedelta(days=(5 - AS_OF.weekday()) % 7)
    assert window_start("today", saturday, DAYS) == AS_OF
    assert window_start("month", DAYS[3], DAYS) == DAYS[0]
    assert window_start("week", DAYS[0] - timedelta(days=1), DAYS) is None
    with pytest.raises(ValueError, match="unknown window"):
        window_start("year", AS_OF, DAYS)


@pytest.mark.parametrize(("window", "base", "n"), [("today", 28, 1), ("week", 24, 5), ("month", 8, 21), ("all", 0, 29)])
def test_performance_for_window_measures_from_the_session_before(window: str, base: int, n: int) -> None:
    trades = [(d, 0.01 if i % 2 else -0.01) for i, d in enumerate(DAYS)]
    exposure = [(d, i / 100) for i, d in enumerate(DAYS)]
    bench = [(d, 0.001 * (i % 3)) for i, d in enumerate(DAYS)]
    p = performance_for_window(window, EQUITY, as_of=AS_OF, trades=trades, exposure=exposure, benchmark=bench)
    assert (p.start, p.end, p.days) == (DAYS[base], AS_OF, n)
    assert p.total_return == pytest.approx(float(EQUITY[-1][1] / EQUITY[base][1]) - 1)
    assert p.profit == EQUITY[-1][1] - EQUITY[base][1]
    first = 0 if window == "all" else base + 1
    assert p.trades == 30 - first
    assert p.exposure == pytest.approx(np.mean([i / 100 for i in range(first, 30)]))
    assert p.beta is None if n < 2 else p.beta is not None


def test_window_ignores_the_future_and_flows_outside_it() -> None:
    as_of = DAYS[20]
    flows = [(DAYS[10], Decimal("500")), (DAYS[19], Decimal("40")), (DAYS[25], Decimal("999"))]
    equity = [(d, e + (500 if i >= 10 else 0) + (40 if i >= 19 else 0)) for i, (d, e) in enumerate(EQUITY)]
    week = performance_for_window("week", equity, as_of=as_of, flows=flows)
    assert week.end == as_of
    assert week.net_deposits == Decimal("40")
    assert week.profit == Decimal("50")
    whole = performance_for_window("all", equity, as_of=as_of, flows=flows)
    assert whole.net_deposits == Decimal("540")
    assert whole.profit == Decimal("200")


def test_window_with_a_calendar_and_missing_benchmark() -> None:
    today = performance_for_window("today", EQUITY[:-1], as_of=AS_OF, sessions=DAYS)
    assert today.days == 0 and today.total_return is None
    with pytest.raises(ValueError, match="no return for"):
        performance_for_window("week", EQUITY, as_of=AS_OF, benchmark=[(DAYS[-1], 0.01)])
