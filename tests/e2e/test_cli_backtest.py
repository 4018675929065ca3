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
        [sys.executable, "-m", "entrypoints.cli", "backtest", "--start", "2024-01-02", "--end", "2024-02-29",
         "--symbols", "6", "--seed", "3", "--report", str(report), "--json"],
        capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["start"] == "2024-01-02" and summary["end"] == "2024-02-29"
    sessions = NyseCalendar().sessions(date(2024, 1, 2), date(2024, 2, 29))
    assert summary["starting_cash"] == "650" and summary["sessions"] == len(sessions) == 41
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
