"""The market-hours guard of deploys (`quorum market-closed`, run by deploy/deploy.sh): a restart is refused from
shortly before the NYSE open until the close, on the real NYSE calendar (holidays and early closes)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from adapters.calendar.nyse import NyseCalendar
from entrypoints.commands.market import deploy_blocked

NY = ZoneInfo("America/New_York")
CAL = NyseCalendar()
MARGIN = timedelta(minutes=15)


def ny(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), NY).astimezone(UTC)


@pytest.mark.parametrize(("at", "blocked"), [
    (ny(date(2024, 3, 5), 9, 14), False),      # Tuesday, before the margin
    (ny(date(2024, 3, 5), 9, 15), True),       # 15 minutes before the open
    (ny(date(2024, 3, 5), 9, 30), True),
    (ny(date(2024, 3, 5), 12, 0), True),
    (ny(date(2024, 3, 5), 15, 59), True),
    (ny(date(2024, 3, 5), 16, 0), False),      # the close
    (ny(date(2024, 3, 5), 20, 0), False),
    (ny(date(2024, 3, 9), 12, 0), False),      # Saturday
    (ny(date(2024, 7, 4), 12, 0), False),      # Independence Day
    (ny(date(2024, 11, 29), 12, 30), True),    # day after Thanksgiving: open until 13:00
    (ny(date(2024, 11, 29), 13, 0), False),    # ... and closed after its early close
    (ny(date(2024, 3, 11), 9, 20), True),      # the Monday after the switch to daylight saving time
])
def test_a_deploy_is_refused_from_just_before_the_open_until_the_close(at: datetime, blocked: bool) -> None:
    assert (deploy_blocked(at, CAL, MARGIN) is not None) is blocked


def test_the_reason_names_the_session_and_its_close() -> None:
    reason = deploy_blocked(ny(date(2024, 11, 29), 9, 20), CAL, MARGIN)
    assert reason is not None and "2024-11-29" in reason and "opens at 09:30" in reason and "13:00" in reason
    assert "is open" in (deploy_blocked(ny(date(2024, 3, 5), 11), CAL, MARGIN) or "")


def test_no_margin_refuses_only_the_session_itself() -> None:
    assert deploy_blocked(ny(date(2024, 3, 5), 9, 29), CAL, timedelta(0)) is None
    assert deploy_blocked(ny(date(2024, 3, 5), 9, 30), CAL, timedelta(0)) is not None


def test_the_command_exits_1_during_the_session_and_0_outside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.calendar import nyse
    from entrypoints.cli import app

    now = [ny(date(2024, 3, 5), 11)]
    monkeypatch.setattr(nyse.SystemClock, "now", lambda self: now[0])
    during = CliRunner().invoke(app, ["market-closed"])
    assert during.exit_code == 1 and "market open" in during.output
    now[0] = ny(date(2024, 3, 5), 17)
    after = CliRunner().invoke(app, ["market-closed"])
    assert after.exit_code == 0 and "market closed" in after.output
    assert CliRunner().invoke(app, ["market-closed", "--margin", "-1"]).exit_code == 2
