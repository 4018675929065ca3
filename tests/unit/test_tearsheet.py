"""The backtest tearsheet: percentages shown as percentages, monthly and yearly returns that compound to the run's,
drawdowns, rolling Sharpe, results per symbol and per exit reason, and a report.html that carries every section,
its charts inline and nothing fetched from elsewhere."""

from __future__ import annotations

import csv
import math
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.reports.backtest_report import write_report
from adapters.reports.tearsheet_data import (
    daily_returns,
    drawdowns,
    exit_kind,
    monthly_returns,
    per_exit,
    per_symbol,
    rolling_sharpe,
    value_curves,
    yearly_returns,
)
from adapters.reports.tearsheet_format import pct, ratio, usd
from adapters.reports.tearsheet_notes import masked
from application.backtest import BacktestResult, EquityRow
from application.breaker_history import BreakerHistory, BreakerTrip, ShadowPeriod
from application.round_trips import round_trip_returns, round_trips
from domain.analytics import performance
from domain.models.trading import Fill, Side

D = Decimal
T0 = datetime(2023, 12, 4, 14, 31, tzinfo=UTC)
STOP = "stop exit: sell all 0.65 BA ≈ $151.91 — stop: price 232.7600 is through the stop 232.8300"
TAKE = "exit: sell all 4.6 MU ≈ $182.85 — take profit: price 39.6000 >= 38.5800 (kept by Quorum)"
TREND = "exit: sell all 7.4 AMD ≈ $94.29 — trend broke: price 12.83 vs 50d avg 13.05, 20d return -10.2%"


def fill(symbol: str, side: Side, qty: str, px: str, days: int, reason: str = "", fee: str = "0.01") -> Fill:
    return Fill(f"c{symbol}{days}{side.value}", symbol, side, D(qty), D(px), D(fee), T0 + timedelta(days=days),
                reason)


FILLS = [fill("AAA", Side.BUY, "10", "10", 0), fill("AAA", Side.SELL, "10", "9", 3, STOP),
         fill("BBB", Side.BUY, "2", "50", 1), fill("BBB", Side.SELL, "2", "60", 11, TAKE),
         fill("AAA", Side.BUY, "5", "10", 20), fill("AAA", Side.SELL, "5", "11", 30, TREND),
         fill("CCC", Side.BUY, "1", "30", 31)]


# ---------------------------------------------------------------- formatting

def test_fractions_are_shown_as_percentages_and_money_as_dollars() -> None:
    assert pct(0.1062) == "10.62%" and pct(0.1062, signed=True) == "+10.62%" and pct(-0.0492) == "-4.92%"
    assert pct(0.7045, digits=0) == "70%" and pct(-0.000001, signed=True) == "0.00%"
    assert pct(None) == pct(float("nan")) == pct("not a number") == "n/a"
    assert pct("inf") == pct(math.inf) == "∞" and ratio("-inf") == "-∞"
    assert ratio(1.5487955) == "1.55" and ratio(None) == "n/a"
    assert usd(1234.5) == "$1,234.50" and usd(D("-8.36")) == "-$8.36" and usd("32.74", signed=True) == "+$32.74"
    assert usd(0.00012, digits=4) == "$0.0001"


# ---------------------------------------------------------------- returns

CURVE = [(date(2023, 11, 30), 100.0), (date(2023, 12, 15), 105.0), (date(2023, 12, 29), 110.0),
         (date(2024, 1, 10), 104.5), (date(2024, 1, 31), 99.0), (date(2024, 2, 1), 99.99)]


def test_monthly_returns_run_month_end_to_month_end_from_the_starting_value_and_compound_to_the_total() -> None:
    months = monthly_returns(CURVE)
    assert months == {2023: {12: pytest.approx(0.10)}, 2024: {1: pytest.approx(-0.10), 2: pytest.approx(0.01)}}
    compounded = math.prod(1 + r for year in months.values() for r in year.values())
    assert compounded - 1 == pytest.approx(99.99 / 100 - 1)
    assert yearly_returns(CURVE) == {2023: pytest.approx(0.10), 2024: pytest.approx(99.99 / 110 - 1)}
    assert monthly_returns([]) == {} and monthly_returns(CURVE[:1]) == {}


def test_drawdowns_are_measured_from_the_high_before_them() -> None:
    assert drawdowns([100, 120, 90, 130, 117]) == pytest.approx([0, 0, -0.25, 0, -0.1])
    assert daily_returns([100, 110, 99]) == pytest.approx([0.1, -0.1])


def test_rolling_sharpe_needs_a_full_window_and_varying_returns() -> None:
    r = [0.01, 0.02, -0.01, 0.0, 0.0, 0.0]
    out = rolling_sharpe(r, 3)
    assert out[:2] == [None, None]
    assert out[2] == pytest.approx(0.02 / 3 / 0.015275252 * math.sqrt(252), rel=1e-6)
    assert out[-1] is None, "no dispersion: no ratio"


def test_the_curves_start_from_the_starting_cash_on_the_session_before_the_run() -> None:
    r = _result()
    curves = value_curves(r)
    assert curves["quorum"][0] == (date(2023, 12, 1), 650.0) and curves["quorum"][-1] == (date(2024, 1, 5), 700.0)
    assert curves["spy_buy_and_hold"][0] == (date(2023, 12, 1), 650.0)


# ---------------------------------------------------------------- trades

def test_round_trips_keep_what_closed_them_and_the_exits_are_grouped_by_kind() -> None:
    trips = round_trips(FILLS)
    assert [t.exit_reason for t in trips] == [STOP, TAKE, TREND]
    assert [exit_kind(t.exit_reason) for t in trips] == ["stop", "take profit", "trend exit"]
    assert exit_kind("protective stop") == "stop" and exit_kind("take profit") == "take profit"
    assert exit_kind("kill switch by admin") == "kill switch" and exit_kind("exit: sell all — weak outlook") == \
        "signal exit"
    groups = {g.name: g for g in per_exit(trips)}
    assert list(groups) == ["stop", "take profit", "trend exit"]
    assert (groups["stop"].trips, groups["stop"].wins, groups["stop"].pnl) == (1, 0, D("-10.02"))
    assert groups["take profit"].avg_return == pytest.approx(119.99 / 100.01 - 1)


def test_results_per_symbol_come_from_round_trips_and_fees_from_every_fill() -> None:
    rows = per_symbol(round_trips(FILLS), FILLS)
    assert [g.name for g in rows] == ["BBB", "CCC", "AAA"], "best P&L first"
    aaa = rows[2]
    assert (aaa.trips, aaa.wins, aaa.win_rate, aaa.fees) == (2, 1, 0.5, D("0.04"))
    assert aaa.pnl == D("-10.02") + D("4.98") and aaa.best == pytest.approx(54.99 / 50.01 - 1)
    assert aaa.avg_days == pytest.approx((3 + 10) / 2) and aaa.open_at_end == 0
    assert (rows[1].trips, rows[1].open_at_end, rows[1].avg_return) == (0, D(1), None)


# ---------------------------------------------------------------- the page

def _result() -> BacktestResult:
    days = [date(2023, 12, 4) + timedelta(days=i) for i in range(0, 33)]
    days = [d for d in days if d.weekday() < 5]
    values = [D(650) + D(50) * i / (len(days) - 1) for i in range(len(days))]
    values[5] = D(600)
    rows = [EquityRow(d, v, v, D(0)) for d, v in zip(days, values, strict=True)]
    prev = date(2023, 12, 1)
    curve = [(prev, D(650)), *((r.day, r.equity) for r in rows)]
    perf = performance(curve, trade_returns=round_trip_returns(FILLS))
    spy = [(prev, D(650)), *((d, D(650) + i) for i, d in enumerate(days, 1))]
    spy_figures: dict[str, float | None] = {"total_return": 0.05, "annualized_return": 0.4, "sharpe": 2.0,
                                            "max_drawdown": 0.01, "final_equity": 683.0, "fees": 0.0, "dividends": 0.0}
    bench = {"spy_buy_and_hold": spy_figures}
    r = BacktestResult("r1", "backtest:r1", days[0], days[-1], D(650), ["AAA", "BBB", "CCC"], rows, FILLS, [],
                       perf, bench, llm_cost_usd=0.0123, benchmark_curves={"spy_buy_and_hold": spy})
    r.extra["breaker"] = BreakerHistory(
        "never", (BreakerTrip(datetime(2023, 12, 12, 20, tzinfo=UTC), "drawdown", "too deep"),), (), (),
        (ShadowPeriod(date(2023, 12, 13), date(2023, 12, 15), 3),), 3, 0.12)
    return r


def test_the_report_is_a_self_contained_tearsheet_with_percentages(tmp_path: Path) -> None:
    summary = write_report(_result(), tmp_path, {"llm": {"openai_api_key": "sk-very-secret", "max_output_tokens": 9},
                                                 "database_url": "postgresql://q:hunter2@db/q"})
    page = (tmp_path / "report.html").read_text()
    for section in ("equity", "performance", "drawdown", "monthly", "rolling-sharpe", "symbols", "exits", "costs",
                    "breaker", "honesty", "settings"):
        assert f"id='{section}'" in page, section
    assert len(re.findall(r"<figure class='chart' data-chart='[\w-]+'><svg", page)) == 3
    assert not re.search(r"""(src|href)=['"](https?:)?//""", page) and "<script" not in page and "<link" not in page
    assert f"{summary['total_return'] * 100:+.2f}%" == "+7.69%" and "+7.69%" in page
    main = re.sub(r"<svg.*?</svg>", "", page[:page.index("id='fields'")], flags=re.DOTALL)
    assert "0.0769" not in main, "raw fractions only in the summary.json appendix"
    monthly = page[page.index("id='monthly'"):page.index("id='rolling-sharpe'")]
    assert "+6.09%" in monthly and "+1.51%" in monthly, "December 689.58 / 650, January 700 / 689.58"
    assert "$0.0123" in page and "trend exit" in page and "Resume policy of this simulation: <b>never</b>" in page
    assert "sk-very-secret" not in page and "hunter2" not in page and "max_output_tokens" in page
    assert (tmp_path / "equity.png").stat().st_size > 10_000
    trips = list(csv.DictReader((tmp_path / "round_trips.csv").open()))
    assert [t["exit"] for t in trips] == ["stop", "take profit", "trend exit"]


def test_secrets_in_settings_are_masked_and_the_rest_is_kept() -> None:
    shown = masked({"broker": {"alpaca_secret_key": "abc", "alpaca_api_key": None, "paper": True},
                    "redis_url": "redis://:pw@localhost:6379/0", "llm": {"max_output_tokens": 4096}})
    assert shown == {"broker": {"alpaca_secret_key": "***", "alpaca_api_key": None, "paper": True},
                     "redis_url": "redis://***@localhost:6379/0", "llm": {"max_output_tokens": 4096}}
