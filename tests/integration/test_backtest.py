"""Backtests on the same code as live: exact ledger, no look-ahead, real bars."""

from __future__ import annotations

import csv
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from adapters.inmemory.market_data import DailyBarMarketData, ReplayMarketData, SyntheticMarket
from adapters.reports.backtest_report import write_report
from domain.models.market import BarSeries
from domain.money import price
from tests.support.ledger import replay_ledger
from tests.support.world import CALENDAR, make_world

START, END = date(2024, 1, 2), date(2024, 4, 30)


async def _run(world, start: date = START, end: date = END, report: Path | None = None):  # type: ignore[no-untyped-def]
    result = await world.app.runner.run(run_id="t", start=start, end=end,
                                        symbols=world.app.symbols)
    if report is not None:
        write_report(result, report, {"test": True})
    return result


def _closes(market: DailyBarMarketData):  # type: ignore[no-untyped-def]
    def close(symbol: str, day: date) -> Decimal:
        series = market.series(symbol)
        assert series is not None
        return price(series.close[series.index_of(day)])

    return close


async def test_ledger_replays_to_the_cent(tmp_path: Path) -> None:
    world = await make_world(start=START, end=END, n=15, seed=11)
    result = await _run(world, report=tmp_path)
    assert result.fills, "the period should produce trades"
    assert result.failed_cycles == 0
    rows = list(csv.DictReader((tmp_path / "equity.csv").open()))
    replayed = replay_ledger(tmp_path, Decimal(650), _closes(world.app.market))
    for row, (day, cash, equity) in zip(rows, replayed, strict=True):
        assert Decimal(row["cash"]) == cash, f"cash differs on {day}"
        assert Decimal(row["equity"]) == equity, f"equity differs on {day}"
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("start", "end", "starting_cash", "final_equity", "total_return", "annualized_return", "sharpe",
                "sortino", "max_drawdown", "win_rate", "round_trips", "fills", "fees", "dividends", "survivorship",
                "benchmarks", "settings"):
        assert key in summary
    assert summary["settings"]["test"] is True
    assert Decimal(summary["final_equity"]) == Decimal(rows[-1]["equity"])
    assert summary["fills"] == len(list(csv.DictReader((tmp_path / "trades.csv").open())))
    assert summary["round_trips"] == len(list(csv.DictReader((tmp_path / "round_trips.csv").open())))
    assert 0 < summary["round_trips"] < summary["fills"]
    assert (tmp_path / "equity.png").stat().st_size > 1000 and (tmp_path / "report.html").exists()
    decisions = [json.loads(line) for line in (tmp_path / "decisions.jsonl").open()]
    assert {"symbol", "signal", "risk", "validator_rules", "validator_agent", "limits", "final"} <= set(decisions[0])


def _perturbed(market: SyntheticMarket, after: date) -> DailyBarMarketData:
    rng = np.random.default_rng(99)
    changed: dict[str, BarSeries] = {}
    for symbol in market.symbols:
        s = market.series(symbol)
        assert s is not None
        k = sum(1 for d in s.days if d <= after)
        factor, widen = np.ones(len(s)), np.zeros(len(s))
        factor[k:] = rng.uniform(0.7, 1.3, len(s) - k)
        widen[k:] = 0.01
        vol = s.volume.copy()
        vol[k:] = vol[k:] * rng.uniform(0.2, 5, len(s) - k)
        changed[symbol] = BarSeries(symbol, s.days, s.open * factor, s.high * factor * (1 + widen),
                                    s.low * factor * (1 - widen), s.close * factor, vol)
    return DailyBarMarketData(changed, CALENDAR)


async def test_no_look_ahead_decisions_ignore_every_later_bar() -> None:
    end = date(2024, 3, 28)
    cut = date(2024, 2, 29)
    base = SyntheticMarket(seed=5, n_symbols=12, start=date(2023, 1, 1), end=end, calendar=CALENDAR)
    first = await make_world(start=START, end=end, market=base)
    original = await _run(first, end=end)
    second = await make_world(start=START, end=end, market=_perturbed(base, cut), scope="backtest:test")
    assert second.app.symbols == first.app.symbols
    altered = await _run(second, end=end)

    def upto(decisions: list[dict], day: date) -> list[dict]:  # type: ignore[type-arg]
        return [d for d in decisions if date.fromisoformat(d["day"]) <= day]

    assert upto(original.decisions, cut) == upto(altered.decisions, cut)
    assert len(upto(original.decisions, cut)) > 0
    assert original.decisions != altered.decisions, "changing later bars must change later decisions"


def _link_subset(shared: Path, tmp: Path, tickers: list[str]) -> Path:
    data = tmp / "data"
    data.mkdir()
    for t in tickers:
        (data / f"{t}_data.csv").symlink_to(shared / "daily" / "sp500_2013_2018" / f"{t}_data.csv")
    for f in (shared / "daily" / "context").glob("*.csv"):
        (data / f.name).symlink_to(f)
    return data


async def test_backtest_on_real_bars_reconciles(shared_data: Path, tmp_path: Path) -> None:
    tickers = ["AAPL", "MSFT", "JPM", "XOM", "JNJ", "PG", "NVDA", "AMZN", "HD", "KO"]
    data = _link_subset(shared_data, tmp_path, tickers)
    market = ReplayMarketData([data], CALENDAR)
    start, end = date(2016, 1, 4), date(2016, 6, 30)
    world = await make_world(start=start, end=end, n=10, market=market)
    assert set(world.app.symbols) <= set(tickers)
    report = tmp_path / "report"
    result = await _run(world, start, end, report)
    assert result.failed_cycles == 0
    assert len(result.equity) == len(CALENDAR.sessions(start, end))
    replayed = replay_ledger(report, Decimal(650), _closes(market))
    rows = list(csv.DictReader((report / "equity.csv").open()))
    assert [Decimal(r["cash"]) for r in rows] == [c for _, c, _ in replayed]
    assert [Decimal(r["equity"]) for r in rows] == [e for _, _, e in replayed]
    spy = result.benchmarks["spy_buy_and_hold"]["total_return"]
    assert spy is not None and -0.5 < spy < 0.5


@pytest.mark.parametrize("months", [0, 121])
def test_backtest_cli_rejects_bad_periods(months: int) -> None:
    from typer.testing import CliRunner

    from entrypoints.cli import app

    out = CliRunner().invoke(app, ["backtest", "--months", str(months)])
    assert out.exit_code == 2 and "--months must be between 1 and 120" in out.output
