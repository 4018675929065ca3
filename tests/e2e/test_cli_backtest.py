"""`quorum backtest` end to end: embedded Postgres, the real embedding model, every report file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from adapters.calendar.nyse import NyseCalendar

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_backtest_cli_writes_the_report_and_stores_the_run(pg_url: str, tmp_path: Path) -> None:
    report = tmp_path / "report"
    env = {**os.environ, "DATABASE_URL": pg_url, "QUORUM_DATA_DIR": str(tmp_path / "q")}
    proc = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "backtest", "--synthetic", "--start", "2024-01-02", "--end",
         "2024-02-29", "--symbols", "6", "--seed", "3", "--report", str(report), "--json"],
        capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["start"] == "2024-01-02" and summary["end"] == "2024-02-29"
    sessions = NyseCalendar().sessions(date(2024, 1, 2), date(2024, 2, 29))
    assert summary["starting_cash"] == "650" and summary["sessions"] == len(sessions) == 41
    assert summary["data"] == "synthetic market (seed 3, 6 symbols)"
    assert summary["settings"]["risk"]["max_position_pct"] == 0.25
    assert summary["embedding_model"].endswith("all-MiniLM-L6-v2")
    assert {p.name for p in report.iterdir()} >= {"summary.json", "trades.csv", "equity.csv", "decisions.jsonl",
                                                  "equity.png", "report.html"}
    assert "sessions" in proc.stderr  # the progress bar

    async def stored() -> dict:  # type: ignore[type-arg]
        from adapters.postgres.engine import make_engine, make_sessionmaker
        from adapters.postgres.repo_records import PgStateRepository

        engine = make_engine(pg_url)
        async with make_sessionmaker(engine)() as session:
            doc = await PgStateRepository(session).load(summary["scope"], "backtest_run")
        await engine.dispose()
        assert doc is not None
        return doc

    import asyncio

    assert asyncio.run(stored())["final_equity"] == summary["final_equity"]


def test_backtest_replays_the_shipped_real_data_by_default_and_ends_with_the_table_and_the_report(
        pg_url: str, tmp_path: Path) -> None:
    data_dir = (tmp_path / "q").resolve()
    env = {**os.environ, "DATABASE_URL": pg_url, "QUORUM_DATA_DIR": str(data_dir)}
    proc = subprocess.run([str(Path(sys.executable).parent / "quorum"), "backtest", "--months", "1", "--symbols", "5"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line.rstrip() for line in proc.stdout.rstrip().splitlines()]
    assert lines[-1].startswith("Report: "), lines[-3:]
    report = Path(lines[-1].removeprefix("Report: "))
    assert report.is_absolute() and report.name == "report.html" and report.is_file()
    assert report.parent.parent == data_dir / "reports"
    summary = json.loads((report.parent / "summary.json").read_text())
    assert (summary["start"], summary["end"], summary["sessions"]) == ("2018-01-08", "2018-02-07", 22)
    assert summary["data"] == "replay of data/daily/sp500_2013_2018, data/daily/context"
    assert summary["fills"] > 0 and len(summary["symbols"]) == 5
    spy, ew = summary["benchmarks"]["spy_buy_and_hold"], summary["benchmarks"]["equal_weight_universe"]
    assert spy["total_return"] is not None and ew["total_return"] is not None

    assert lines[0].strip() == "Backtest 2018-01-08 → 2018-02-07 (22 sessions, 5 stocks)"
    (returns,) = [line for line in lines if line.startswith("│ total return ")]
    assert [c.strip() for c in returns.split("│")[2:5]] == [
        f"{summary['total_return']:+.2%}", f"{spy['total_return']:+.2%}", f"{ew['total_return']:+.2%}"]
    for label in ("sharpe", "max drawdown", "win rate"):
        assert any(line.startswith(f"│ {label} ") for line in lines), label
    bottom = max(i for i, line in enumerate(lines) if line.startswith("└"))
    assert lines[bottom + 1] == "market: replay of data/daily/sp500_2013_2018, data/daily/context"
    assert lines[-2] == "breaker resume policy of this simulation: approve-when-eligible"
