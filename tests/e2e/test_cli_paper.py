"""`quorum paper start|status|drill|stop` and `quorum rehearse --campaign` from the command line, on a real
database."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from entrypoints.cli import app

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "market"


def test_start_status_drill_and_stop_a_campaign(pg_url: str) -> None:
    runner = CliRunner(env={**os.environ, "DATABASE_URL": pg_url, "QUORUM_BROKER__PROVIDER": "sim"})
    scope = ["--scope", "test:paper-cli"]
    out = runner.invoke(app, ["paper", "status", *scope])
    assert out.exit_code == 1 and "no paper campaign" in out.output
    out = runner.invoke(app, ["paper", "start", "--name", "cli", "--days", "10", *scope])
    assert out.exit_code == 0 and "paper campaign cli started" in out.output and "10 sessions" in out.output
    out = runner.invoke(app, ["paper", "start", "--name", "second", *scope])
    assert out.exit_code == 1 and "still active" in out.output
    out = runner.invoke(app, ["paper", "drill", *scope])
    assert out.exit_code == 0 and out.output.count("tripped ") == 4
    out = runner.invoke(app, ["paper", "status", "--json", *scope])
    doc = json.loads(out.stdout)
    verdicts = {k["name"]: k["passed"] for k in doc["criteria"]}
    assert doc["name"] == "cli" and doc["target_sessions"] == 10 and doc["met"] is False
    assert verdicts["every breaker rule exercised"] is True and verdicts["win rate > 50%"] is None
    out = runner.invoke(app, ["paper", "status", *scope])
    assert out.exit_code == 0 and "every breaker rule exercised" in out.output and "PASS" in out.output
    out = runner.invoke(app, ["paper", "stop", *scope])
    assert out.exit_code == 0 and "paper campaign cli stopped" in out.output


def test_a_rehearsal_is_recorded_as_a_campaign(pg_url: str, tmp_path: Path) -> None:
    runner = CliRunner(env={**os.environ, "DATABASE_URL": pg_url})
    out = runner.invoke(app, ["rehearse", "--data", str(REAL / "daily"), "--data", str(REAL / "context"),
                              "--start", "2016-03-01", "--end", "2016-03-02", "--symbols", "6",
                              "--report", str(tmp_path / "r"), "--campaign", "rehearsal-check"])
    assert out.exit_code == 0, out.output
    assert "paper campaign rehearsal-check: session 2/2" in out.output and "no crash" in out.output
    campaign = json.loads((tmp_path / "r" / "summary.json").read_text())["campaign"]
    verdicts = {k["name"]: k["passed"] for k in campaign["criteria"]}
    assert verdicts["no crash"] is True and verdicts["chat answering"] is True
    assert verdicts["every breaker rule exercised"] is True
