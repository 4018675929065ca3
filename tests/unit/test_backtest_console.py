"""What `quorum backtest` replays without --data (the shipped real bars, found from the installed project, not the
working directory) and the summary table it ends with: Quorum beside SPY and the equal-weight universe."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from entrypoints import shipped_data
from entrypoints.cli import app
from entrypoints.commands.backtest_table import summary_table
from entrypoints.shipped_data import shipped_data_dirs, shown

ROOT = Path(__file__).resolve().parents[2]

SUMMARY: dict[str, Any] = {
    "start": "2017-08-08", "end": "2018-02-07", "sessions": 127, "symbols": ["AAPL", "MSFT", "AMZN"],
    "total_return": 0.0943, "annualized_return": 0.1878, "sharpe": 1.7046, "max_drawdown": 0.0492,
    "win_rate": 0.5455, "exposure": 0.3842, "final_equity": "711.31", "round_trips": 11, "fills": 22,
    "fees": "0.22", "llm_cost_usd": 0.0,
    "dividends": {"counted": False, "reason": "no dividend information", "credited": "0"},
    "survivorship": {"statement": "Survivorship bias: today's members"},
    "data": "replay of data/daily/sp500_2013_2018, data/daily/context",
    "benchmarks": {
        "spy_buy_and_hold": {"total_return": 0.0811, "annualized_return": 0.1606, "sharpe": 1.5488,
                             "max_drawdown": 0.0790, "final_equity": 702.73, "fees": 0.0},
        "equal_weight_universe": {"total_return": 0.1382, "annualized_return": 0.2803, "sharpe": 1.7512,
                                  "max_drawdown": 0.0808, "final_equity": 739.81, "fees": 0.0}},
    "breaker": {"trips": [{}], "resumes": [], "shadow_sessions": 93, "halted_share": 0.7045,
                "resume_policy": "approve-when-eligible"},
}


def _rendered(summary: dict[str, Any]) -> list[str]:
    console = Console(width=80, record=True)
    console.print(summary_table(summary))
    return [line.rstrip() for line in console.export_text().splitlines()]


def _row(lines: list[str], label: str) -> list[str]:
    (line,) = [x for x in lines if x.startswith(f"│ {label} ")]
    return [cell.strip() for cell in line.strip("│").split("│")[1:]]


def test_the_table_sets_quorum_beside_spy_and_the_equal_weight_universe_in_percentages() -> None:
    lines = _rendered(SUMMARY)
    assert lines[0].strip() == "Backtest 2017-08-08 → 2018-02-07 (127 sessions, 3 stocks)"
    assert _row(lines, "total return") == ["+9.43%", "+8.11%", "+13.82%"]
    assert _row(lines, "Quorum ahead by") == ["", "+1.32 pts", "-4.39 pts"]
    assert _row(lines, "annualised") == ["+18.78%", "+16.06%", "+28.03%"]
    assert _row(lines, "sharpe") == ["1.70", "1.55", "1.75"]
    assert _row(lines, "max drawdown") == ["4.92%", "7.90%", "8.08%"]
    assert _row(lines, "win rate") == ["54.55%", "", ""]
    assert _row(lines, "avg. invested") == ["38.42%", "~100%", "~100%"]
    assert _row(lines, "final equity") == ["$711.31", "$702.73", "$739.81"]
    assert _row(lines, "halted (shadow mode)") == ["93 sessions, 70%", "", ""]
    assert "market: replay of data/daily/sp500_2013_2018, data/daily/context" in lines


def test_every_row_of_the_table_fits_on_one_line_of_an_80_column_console() -> None:
    lines = _rendered(SUMMARY)
    body = [x for x in lines if x.startswith("│")]
    assert all(re.match(r"│ \S", x) for x in body), "a row label wrapped onto a second line"
    assert len(body) == 13


def test_unknown_benchmark_figures_read_n_a() -> None:
    summary = {**SUMMARY, "benchmarks": {"spy_buy_and_hold": {"total_return": None},
                                         "equal_weight_universe": {"total_return": 0.1}}}
    lines = _rendered(summary)
    assert _row(lines, "total return") == ["+9.43%", "n/a", "+10.00%"]
    assert _row(lines, "Quorum ahead by") == ["", "n/a", "-0.57 pts"]


def test_the_shipped_data_is_found_from_the_installed_project_whatever_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stocks, context = shipped_data_dirs()
    assert stocks == ROOT / "data" / "daily" / "sp500_2013_2018" and context == ROOT / "data" / "daily" / "context"
    assert (stocks / "AAPL_data.csv.gz").is_file() and (context / "SPY.csv.gz").is_file()
    assert [shown(stocks), shown(context), shown(tmp_path)] == [
        "data/daily/sp500_2013_2018", "data/daily/context", str(tmp_path)]


def test_without_the_shipped_data_the_backtest_says_to_pass_data_or_synthetic(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shipped_data, "SHIPPED_DATA", (tmp_path / "sp500", tmp_path / "context"))
    (tmp_path / "context").mkdir()
    out = CliRunner().invoke(app, ["backtest"])
    assert out.exit_code == 2
    assert "the shipped market data is missing" in out.output and str(tmp_path / "sp500") in out.output
    assert "pass --data DIR (daily OHLCV CSVs) or --synthetic" in out.output


def test_synthetic_and_data_together_are_refused(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["backtest", "--synthetic", "--data", str(tmp_path)])
    assert out.exit_code == 2 and "give either --data or --synthetic, not both" in out.output
