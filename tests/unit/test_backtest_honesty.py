"""Honest backtests: trades are round trips (fills counted apart), benchmarks pay Quorum's costs and get its
dividends, dividends count for everyone or no one, and the universe's survivorship is stated."""

from __future__ import annotations

import csv
import itertools
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from adapters.calendar import NyseCalendar
from adapters.inmemory.market_data import DailyBarMarketData
from adapters.inmemory.universe_file import read_universe, read_universes
from adapters.reports.backtest_report import write_report
from application.backtest import BacktestResult, EquityRow
from application.benchmarks import benchmarks, buy_and_hold
from application.dividends import DividendPayment, DividendPolicy, dividend_policy
from application.membership import Membership, non_members, survivorship
from application.round_trips import round_trip_returns, round_trips
from domain.analytics import performance
from domain.errors import DataError
from domain.models.market import BarSeries
from domain.models.trading import Fill, Side
from domain.money import money
from domain.risk.config import FeeSettings
from entrypoints.commands.backtest import _table

D = Decimal
CAL = NyseCalendar()
T0 = datetime(2024, 7, 1, 14, 0, tzinfo=UTC)
FREE = FeeSettings(slippage_bps=D(0), commission_per_order=D(0), sec_fee_per_million=D(0), taf_per_share=D(0))


def fill(symbol: str, side: Side, qty: str, px: str, hours: int, fee: str = "0") -> Fill:
    return Fill(f"c{hours}", symbol, side, D(qty), D(px), D(fee), T0 + timedelta(hours=hours))


# ---------------------------------------------------------------- round trips

FILLS = [fill("AAA", Side.BUY, "10", "10", 0, "0.10"),
         fill("AAA", Side.SELL, "4", "12", 1, "0.02"),     # partial take-profit
         fill("BBB", Side.BUY, "5", "20", 2),
         fill("AAA", Side.SELL, "6", "9", 3, "0.02"),      # the stop closes the rest: one round trip
         fill("BBB", Side.SELL, "5", "22", 4),
         fill("AAA", Side.BUY, "3", "10", 5)]              # still open: not a round trip


def test_a_round_trip_runs_from_flat_to_flat_whatever_the_partial_sells() -> None:
    trips = round_trips(FILLS)
    assert [(t.symbol, t.fills) for t in trips] == [("AAA", 3), ("BBB", 2)]
    aaa = trips[0]
    assert (aaa.cost, aaa.proceeds) == (D("100.10"), D("48.00") - D("0.02") + D("54.00") - D("0.02"))
    assert aaa.pnl == D("1.86") and aaa.closed_at == FILLS[3].at
    assert round_trip_returns(FILLS) == [pytest.approx(101.96 / 100.10 - 1), pytest.approx(0.1)]


def test_adding_to_a_position_stays_one_round_trip_and_win_rate_is_over_round_trips() -> None:
    fills = [fill("AAA", Side.BUY, "1", "10", 0), fill("AAA", Side.BUY, "1", "12", 1),
             fill("AAA", Side.SELL, "1", "13", 2), fill("AAA", Side.SELL, "1", "8", 3)]
    (trip,) = round_trips(fills)
    assert (trip.qty, trip.cost, trip.proceeds, trip.fills) == (D(2), D(22), D(21), 4)
    perf = performance([(date(2024, 7, 1), D(100)), (date(2024, 7, 2), D(99))], trade_returns=round_trip_returns(fills))
    assert (perf.trades, perf.win_rate) == (1, 0.0), "one losing round trip, though one of its sells made money"


# ---------------------------------------------------------------- benchmarks

SESSIONS = CAL.sessions(date(2024, 6, 28), date(2024, 7, 5))  # the session before the run, then the run's


def series(symbol: str, opens: list[float], closes: list[float]) -> BarSeries:
    o, c = np.array(opens), np.array(closes)
    return BarSeries(symbol, tuple(SESSIONS), o, np.maximum(o, c) + 1, np.minimum(o, c) - 1, c, np.full(len(o), 1e6))


SPY = series("SPY", [99, 100, 101, 102, 103], [100, 101, 102, 103, 104])


def test_the_benchmark_buys_at_the_first_open_plus_slippage_and_pays_the_fee() -> None:
    fees = FeeSettings(slippage_bps=D(10), commission_per_order=D("1.00"))
    run = buy_and_hold([SPY], D(1000), fees)
    px = D("100.10")                                   # open of the first session, 10 bps against the buyer
    qty = ((D(1000) - D(1) - D("0.01")) / px).quantize(D("0.000000001"), rounding="ROUND_DOWN")
    left = D(1000) - money(qty * px) - D(1)
    assert run.fees == D(1)
    assert run.values[0] == D(1000) and run.values[1] == left + money(qty * 101)
    assert run.values[-1] == left + money(qty * 104)
    free = buy_and_hold([SPY], D(1000), FREE)
    assert free.values[-1] - run.values[-1] > D("1.9"), "the fee and the slippage cost the benchmark"


def test_a_benchmark_gets_the_dividends_of_shares_it_held_at_the_previous_close() -> None:
    ex_dates = {SESSIONS[1]: D("5"), SESSIONS[3]: D("0.50")}   # the first one goes ex before the buy
    run = buy_and_hold([SPY], D(1000), FREE, {"SPY": ex_dates})
    qty = ((D(1000) - D("0.01")) / D(100)).quantize(D("0.000000001"), rounding="ROUND_DOWN")
    assert run.dividends == money(qty * D("0.50"))
    priced = buy_and_hold([SPY], D(1000), FREE)
    assert [v - p for v, p in zip(run.values, priced.values, strict=True)] == [0, 0, 0, run.dividends, run.dividends]


async def test_benchmarks_report_their_fees_and_dividends_and_spy_returns_net_of_costs() -> None:
    market = DailyBarMarketData({"SPY": SPY, "AAA": series("AAA", [10, 10, 11, 12, 12], [10, 10.5, 11, 12, 12])}, CAL)
    fees = FeeSettings(slippage_bps=D(5), commission_per_order=D("0.50"))
    out = await benchmarks(market, CAL, ["AAA"], SESSIONS, D(650), fees=fees)
    assert out["spy_buy_and_hold"]["fees"] == 0.5 and out["equal_weight_universe"]["fees"] == 0.5
    assert out["spy_buy_and_hold"]["dividends"] == 0.0
    spy = buy_and_hold([SPY], D(650), fees).values
    assert out["_spy_returns"] == pytest.approx([float(b / a - 1) for a, b in itertools.pairwise(spy)])


# ---------------------------------------------------------------- dividends: alike or nobody

def test_dividends_count_only_when_every_traded_and_benchmark_symbol_has_them() -> None:
    assert dividend_policy({"AAA", "SPY", "XLK"}, {"AAA", "SPY"}).counted
    policy = dividend_policy({"SPY"}, {"AAA", "SPY"})
    assert not policy.counted and "AAA" in policy.reason and "price returns" in policy.reason
    assert policy.to_json() == {"counted": False, "reason": policy.reason, "credited": "0"}
    nothing = dividend_policy(set(), {"AAA", "SPY"})
    assert not nothing.counted and "no dividend information" in nothing.reason


# ---------------------------------------------------------------- survivorship and membership

def test_point_in_time_membership_excludes_a_symbol_that_was_not_a_member() -> None:
    pit = Membership("index", point_in_time=True, members={
        "AAA": ((date(2010, 1, 1), None),), "BBB": ((date(2010, 1, 1), date(2014, 12, 31)),),
        "CCC": ((date(2016, 1, 4), None),), "DDD": ((date(2010, 1, 1), date(2012, 1, 1)), (date(2015, 3, 2), None))})
    day = date(2015, 6, 1)
    assert pit.members_on(day) == {"AAA", "DDD"}
    assert non_members([pit], day, ["AAA", "BBB", "CCC", "DDD", "EEE"]) == {"BBB", "CCC", "EEE"}
    assert non_members([Membership("today's", point_in_time=False)], day, ["AAA"]) == frozenset()


def test_the_statement_says_survivorship_plainly_for_todays_members_and_calmly_otherwise() -> None:
    today = survivorship([Membership("S&P 500 members of 2018-02-08", as_of=date(2018, 2, 8))])
    assert today.biased and today.statement.startswith(
        "Survivorship bias: the universe is index members as of 2018-02-08 (S&P 500 members of 2018-02-08)")
    undated = survivorship([Membership("some index")])
    assert undated.biased and undated.statement.startswith("Survivorship bias: the universe is today's index members")
    pit = survivorship([Membership("index", point_in_time=True, members={"AAA": ((date(2010, 1, 1), None),)})])
    assert not pit.biased and "bias" not in pit.statement
    unknown = survivorship([])
    assert unknown.membership == "unknown" and unknown.biased and "unknown" in unknown.statement


def test_universe_files_are_read_and_checked(tmp_path: Path) -> None:
    shipped = read_universes([Path(__file__).resolve().parents[2] / "data" / "daily" / "sp500_2013_2018", tmp_path])
    assert [(u.point_in_time, u.as_of) for u in shipped] == [(False, date(2018, 2, 8))]
    (tmp_path / "universe.json").write_text(json.dumps({"name": "x", "point_in_time": True,
                                                        "members": {"aaa": [["2015-01-02", None]]}}))
    assert read_universe(tmp_path / "universe.json").members == {"AAA": ((date(2015, 1, 2), None),)}
    (tmp_path / "universe.json").write_text(json.dumps({"name": "x", "point_in_time": True}))
    with pytest.raises(DataError, match="no members"):
        read_universe(tmp_path / "universe.json")


# ---------------------------------------------------------------- the report says all of it

def _result() -> BacktestResult:
    days = [date(2024, 7, 1), date(2024, 7, 2)]
    rows = [EquityRow(days[0], D(650), D(650), D(0)), EquityRow(days[1], D("652.15"), D("552.15"), D(100))]
    perf = performance([(date(2024, 6, 28), D(650)), *((r.day, r.equity) for r in rows)],
                       trade_returns=round_trip_returns(FILLS))
    payment = DividendPayment(T0 + timedelta(days=1), "AAA", D(3), D("0.25"), D("0.75"))
    bench = {"spy_buy_and_hold": {"total_return": 0.01, "fees": 0.5, "dividends": 0.3, "final_equity": 656.5},
             "equal_weight_universe": {"total_return": 0.02, "fees": 1.0, "dividends": 0.2, "final_equity": 663.0}}
    r = BacktestResult("r1", "backtest:r1", days[0], days[1], D(650), ["AAA", "BBB"], rows, FILLS, [], perf, bench,
                       dividends=DividendPolicy(True, "every symbol has dividend information", D("0.75")),
                       dividend_payments=[payment])
    r.extra["survivorship"] = survivorship([Membership("S&P 500 members of 2018-02-08", as_of=date(2018, 2, 8))])
    return r


def test_the_report_counts_round_trips_and_fills_apart_and_states_dividends_and_survivorship(tmp_path: Path) -> None:
    summary = write_report(_result(), tmp_path, {})
    assert (summary["round_trips"], summary["fills"]) == (2, 6) and "trades" not in summary
    assert summary["win_rate"] == 1.0
    assert summary["dividends"] == {"counted": True, "reason": "every symbol has dividend information",
                                    "credited": "0.75"}
    assert summary["survivorship"]["membership"] == "todays_members" and summary["survivorship"]["biased"]
    trips = list(csv.DictReader((tmp_path / "round_trips.csv").open()))
    assert [(t["symbol"], t["fills"], t["pnl"]) for t in trips] == [("AAA", "3", "1.86"), ("BBB", "2", "10.00")]
    (div,) = list(csv.DictReader((tmp_path / "dividends.csv").open()))
    assert (div["symbol"], div["qty"], div["per_share"], div["amount"]) == ("AAA", "3", "0.25", "0.75")
    page = (tmp_path / "report.html").read_text()
    assert "Survivorship bias" in page and "Dividends counted" in page and "<th>round_trips</th>" in page
    console = Console(width=200, record=True)
    console.print(_table(summary))
    text = console.export_text()
    assert "round trips / fills" in text and "2 / 6" in text and "$0.50" in text
    assert "dividends counted: every symbol" in text and "Survivorship bias: the universe is index members" in text


def test_a_result_without_a_membership_statement_says_membership_is_unknown(tmp_path: Path) -> None:
    r = _result()
    del r.extra["survivorship"]
    assert write_report(r, tmp_path, {})["survivorship"]["membership"] == "unknown"
