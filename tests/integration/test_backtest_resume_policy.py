"""A simulation has nobody to approve a breaker resume: its policy says what happens, the report says which
policy ran, every trip, every resume and how much of the run was halted (a 5-year run once measured 3.7 years
of a halted account without saying so)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from adapters.reports.backtest_report import write_report
from entrypoints.settings import load_settings
from tests.support.world import CALENDAR, make_world

pytestmark = pytest.mark.integration
START, END = date(2024, 3, 1), date(2024, 8, 30)
EASY_RESUME = {"breaker": {"resume_min_win_streak": 1, "resume_min_sharpe_7d": -100.0, "resume_max_drawdown_pct": 0.9}}


async def run(policy: str, tmp_path: Path) -> dict[str, Any]:
    world = await make_world(settings=load_settings(env="test", risk=EASY_RESUME), end=END)
    first_days = set(CALENDAR.sessions(START, END)[:3])
    real = world.app.market.latest_quotes

    async def flaky(symbols: Any, *, as_of: Any) -> Any:  # the quote feed is down for the first three sessions
        if as_of.astimezone(CALENDAR.session_open(START).tzinfo).date() in first_days:
            raise RuntimeError("quote feed down")
        return await real(symbols, as_of=as_of)

    world.app.market.latest_quotes = flaky  # type: ignore[method-assign]
    world.app.runner.resume_policy = policy  # type: ignore[assignment]
    result = await world.app.runner.run(run_id=policy, start=START, end=END,
                                        symbols=world.app.symbols)
    return write_report(result, tmp_path / policy, {})


async def test_approve_when_eligible_resumes_and_never_stays_halted(tmp_path: Path) -> None:
    approve = await run("approve-when-eligible", tmp_path)
    never = await run("never", tmp_path)
    for summary in (approve, never):
        b = summary["breaker"]
        assert [t["trigger"] for t in b["trips"]][:1] == ["system_errors"]
        assert b["resume_policy"] in (approve["breaker"]["resume_policy"], never["breaker"]["resume_policy"])
    a, n = approve["breaker"], never["breaker"]
    assert a["resumes"] and a["resumes"][0]["by"] == "simulation (approve-when-eligible)"
    assert n["resumes"] == [] and n["shadow_periods"][-1].get("open") is True
    assert n["halted_share"] > 0.9 > a["halted_share"]
    assert approve["fills"] > never["fills"] == 0
    html = (tmp_path / "never" / "report.html").read_text()
    assert "Resume policy of this simulation: <b>never</b>" in html and "system_errors" in html
