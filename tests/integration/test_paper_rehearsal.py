"""A rehearsal recorded as a paper campaign: the campaign starts before the first session, the daily report job
probes the chat and reports after each close (alerted), and at the end the rules the market did not trip are
drilled and every criterion is measured."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from application.paper.criteria import CRITERIA
from entrypoints.rehearsal import Rehearsal, RehearsalOptions
from entrypoints.settings import load_settings

pytestmark = pytest.mark.integration
REAL = Path(__file__).resolve().parents[1] / "fixtures" / "market"


async def test_a_rehearsal_recorded_as_a_campaign_measures_every_criterion(tmp_path: Path) -> None:
    opts = RehearsalOptions(date(2016, 3, 1), date(2016, 3, 3), tmp_path / "report", (REAL / "daily", REAL / "context"),
                            symbols=6, campaign="rehearsed")
    summary = await Rehearsal(load_settings(env="test"), opts, run_id="paper-campaign",
                              storage="memory").run()
    campaign = summary["campaign"]
    assert (campaign["name"], campaign["sessions"], campaign["target_sessions"]) == ("rehearsed", 3, 3)
    assert campaign["complete"] is True and campaign["scope"] == "rehearsal:paper-campaign"
    verdicts = {k["name"]: k["passed"] for k in campaign["criteria"]}
    assert list(verdicts) == list(CRITERIA)
    assert verdicts["no crash"] is True, campaign["criteria"]
    assert verdicts["every breaker rule exercised"] is True, "the rules the market did not trip were drilled"
    assert verdicts["chat answering"] is True, "the daily job probed the chat after every close"
    assert verdicts["evals passing"] is None, "a rehearsal runs no nightly evals"
    assert summary["invariants"]["violations"] == []
    alerts = [json.loads(line) for line in (tmp_path / "report" / "alerts.jsonl").read_text().splitlines()]
    reports = [a for a in alerts if a["type"] == "paper_report"]
    assert Counter(a["type"] for a in alerts)["paper_report"] == 3
    assert "session 3/3" in reports[-1]["title"] and "vs SPY" in reports[-1]["body"]
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["campaign"]["name"] == "rehearsed"
