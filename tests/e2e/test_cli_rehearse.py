"""`quorum rehearse` from the command line: real sessions, the invariants line, the report, exit code 1 when an
invariant broke, one-line errors for bad options."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from entrypoints.cli import app

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "market"


def test_rehearse_two_real_sessions_on_postgres(pg_url: str, tmp_path: Path) -> None:
    runner = CliRunner(env={**os.environ, "DATABASE_URL": pg_url})
    out = runner.invoke(app, ["rehearse", "--data", str(REAL / "daily"), "--data", str(REAL / "context"),
                              "--start", "2016-03-01", "--end", "2016-03-02", "--symbols", "6",
                              "--report", str(tmp_path / "r")])
    assert out.exit_code == 0, out.output
    assert "invariants:" in out.output and "all held" in out.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["sessions"] == 2 and summary["invariants"]["violations"] == []


def test_a_broken_invariant_exits_1_and_is_printed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    async def broken(self: Any, emulator_hook: Any = None) -> dict[str, Any]:
        return {"start": "2016-03-01", "end": "2016-03-01", "sessions": 1, "total_return": 0.0,
                "annualized_return": 0.0, "sharpe": None, "max_drawdown": 0.0, "final_equity": "650",
                "round_trips": 0, "fills": 0, "fees": "0", "win_rate": None, "llm_cost_usd": 0.0, "cycles": 13,
                "dividends": {"counted": False, "reason": "no dividend information", "credited": "0"},
                "survivorship": {"membership": "unknown", "statement": "Index membership of the data is unknown"},
                "benchmarks": {"spy_buy_and_hold": {}, "equal_weight_universe": {}},
                "invariants": {"checked": 52, "violations": [{"at": "2016-03-01T15:05:00+00:00",
                                                              "rule": "position_protected",
                                                              "evidence": "AAPL: 3 held, GTC stop orders cover 0"}]}}

    monkeypatch.setattr("entrypoints.commands.rehearse.Rehearsal.run", broken)
    out = CliRunner().invoke(app, ["rehearse", "--report", str(tmp_path / "r")])
    assert out.exit_code == 1
    assert "1 VIOLATED" in out.output and "position_protected: AAPL: 3 held" in out.output


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "/nonexistent", "--start", "2016-03-01", "--end", "2016-03-02"], "is not a directory"),
    (["--data", str(REAL / "daily")], "give --start and --end"),
    (["--start", "2016-03-02", "--end", "2016-03-01"], "is after"),
    (["--resume", "sometimes"], "--resume must be one of"),
    (["--cash", "nan"], "--cash must be a positive amount"),
])
def test_bad_options_are_one_line_errors(args: list[str], message: str) -> None:
    out = CliRunner().invoke(app, ["rehearse", *args])
    assert out.exit_code == 2 and message in out.output
