"""When background jobs are due: market hours, holidays, early closes, DST, catch-up and grace (controlled clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from adapters.calendar.nyse import NyseCalendar
from application.schedule import (
    ScheduleConfig,
    alert_retry_due,
    due_jobs,
    due_slot,
    latest_slot,
    next_slot,
    session_slots,
    should_run,
)

CAL = NyseCalendar()
NY = ZoneInfo("America/New_York")


def ny(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), NY).astimezone(UTC)


TUE = date(2024, 3, 5)          # a normal session, 9:30-16:00 New York (EST)
SAT = date(2024, 3, 9)
JULY_4 = date(2024, 7, 4)       # holiday
BLACK_FRIDAY = date(2024, 11, 29)  # early close at 13:00


def test_cycle_slots_are_open_plus_five_then_every_n_minutes_until_the_close() -> None:
    slots = session_slots("cycle", TUE, CAL, ScheduleConfig())
    assert slots[:3] == [ny(TUE, 9, 35), ny(TUE, 10), ny(TUE, 10, 30)]
    assert slots[-1] == ny(TUE, 15, 30)
    assert len(slots) == 13
    fifteen = session_slots("cycle", TUE, CAL, ScheduleConfig(cycle_minutes=15))
    assert fifteen[:3] == [ny(TUE, 9, 35), ny(TUE, 9, 45), ny(TUE, 10)]
    assert fifteen[-1] == ny(TUE, 15, 45)


def test_a_cycle_is_due_once_per_slot() -> None:
    assert due_slot("cycle", ny(TUE, 9, 35, 12), CAL, None) == ny(TUE, 9, 35)
    assert not should_run("cycle", ny(TUE, 9, 35, 12), CAL, ny(TUE, 9, 35))
    assert not should_run("cycle", ny(TUE, 9, 59, 59), CAL, ny(TUE, 9, 35))
    assert due_slot("cycle", ny(TUE, 10, 0, 1), CAL, ny(TUE, 9, 35)) == ny(TUE, 10)


@pytest.mark.parametrize("now", [
    ny(TUE, 9, 0),            # before the open
    ny(TUE, 9, 34, 59),       # open, but before open + 5 minutes
    ny(TUE, 17, 0),           # after the close
    ny(SAT, 11, 0),           # weekend
    ny(JULY_4, 11, 0),        # holiday
])
def test_no_cycle_outside_market_hours(now: datetime) -> None:
    assert not should_run("cycle", now, CAL, None)


def test_a_missed_cycle_slot_is_not_caught_up_late() -> None:
    assert not should_run("cycle", ny(TUE, 10, 20), CAL, ny(TUE, 9, 35))   # 10:00 slot is 20 minutes old
    assert should_run("cycle", ny(TUE, 10, 9), CAL, ny(TUE, 9, 35))         # within the 10 minutes of grace
    tight = ScheduleConfig(cycle_minutes=5)
    assert due_slot("cycle", ny(TUE, 15, 59), CAL, None, tight) == ny(TUE, 15, 55)
    assert not should_run("cycle", ny(TUE, 16, 1), CAL, None, tight)        # grace never exceeds the interval


def test_early_close_ends_cycles_and_moves_the_after_close_jobs() -> None:
    cycles = session_slots("cycle", BLACK_FRIDAY, CAL, ScheduleConfig())
    assert cycles[-1] == ny(BLACK_FRIDAY, 12, 30)
    assert session_slots("daily_summary", BLACK_FRIDAY, CAL, ScheduleConfig()) == [ny(BLACK_FRIDAY, 13, 15)]
    assert not should_run("cycle", ny(BLACK_FRIDAY, 13, 30), CAL, None)


def test_slots_follow_daylight_saving_time_in_new_york() -> None:
    before, after = date(2024, 3, 8), date(2024, 3, 11)
    assert session_slots("cycle", before, CAL, ScheduleConfig())[0] == datetime(2024, 3, 8, 14, 35, tzinfo=UTC)
    assert session_slots("cycle", after, CAL, ScheduleConfig())[0] == datetime(2024, 3, 11, 13, 35, tzinfo=UTC)


def test_discovery_runs_every_four_hours_in_market_hours() -> None:
    assert session_slots("discovery", TUE, CAL, ScheduleConfig()) == [ny(TUE, 9, 30), ny(TUE, 13, 30)]
    assert due_slot("discovery", ny(TUE, 13, 31), CAL, ny(TUE, 9, 30)) == ny(TUE, 13, 30)
    assert not should_run("discovery", ny(TUE, 17, 31), CAL, ny(TUE, 13, 30))
    assert session_slots("discovery", TUE, CAL, ScheduleConfig(discovery_hours=2))[-1] == ny(TUE, 15, 30)


@pytest.mark.parametrize("kind", ["forward_returns", "market_conditions", "daily_summary"])
def test_after_close_jobs_run_once_per_session_and_catch_up_overnight(kind: str) -> None:
    slot = ny(TUE, 16, 15)
    assert not should_run(kind, ny(TUE, 16, 14), CAL, None)  # type: ignore[arg-type]
    assert due_slot(kind, ny(TUE, 16, 15), CAL, None) == slot  # type: ignore[arg-type]
    assert due_slot(kind, ny(TUE + timedelta(days=1), 8, 0), CAL, None) == slot  # type: ignore[arg-type]
    assert not should_run(kind, ny(TUE, 23, 0), CAL, slot)  # type: ignore[arg-type]
    friday = date(2024, 3, 8)
    assert due_slot(kind, ny(SAT, 10, 0), CAL, ny(TUE, 16, 15)) == ny(friday, 16, 15)  # type: ignore[arg-type]


def test_backup_runs_nightly_at_two_new_york_time_every_day() -> None:
    assert due_slot("backup", ny(SAT, 2, 0, 30), CAL, None) == ny(SAT, 2)
    assert not should_run("backup", ny(SAT, 1, 59), CAL, ny(SAT - timedelta(days=1), 2))
    assert not should_run("backup", ny(SAT, 9, 0), CAL, ny(SAT, 2))
    assert latest_slot("backup", ny(SAT, 1, 0), CAL) == ny(SAT - timedelta(days=1), 2)
    assert next_slot("backup", ny(SAT, 3, 0), CAL) == ny(SAT + timedelta(days=1), 2)
    later = ScheduleConfig(backup_time=time(3, 30))
    assert latest_slot("backup", ny(SAT, 4, 0), CAL, later) == ny(SAT, 3, 30)


def test_nightly_evals_run_at_two_new_york_time_in_winter_and_summer() -> None:
    summer = date(2024, 7, 10)
    assert due_slot("evals", ny(TUE, 2, 0, 30), CAL, None) == datetime(2024, 3, 5, 7, 0, tzinfo=UTC)      # EST
    assert due_slot("evals", ny(summer, 2, 0, 30), CAL, None) == datetime(2024, 7, 10, 6, 0, tzinfo=UTC)  # EDT
    assert due_slot("evals", ny(SAT, 2, 1), CAL, None) == ny(SAT, 2)                  # weekends too
    assert not should_run("evals", ny(SAT, 9, 0), CAL, ny(SAT, 2))
    assert not should_run("evals", ny(SAT, 15, 0), CAL, ny(SAT - timedelta(days=1), 2))   # past its grace
    assert next_slot("evals", ny(TUE, 2, 0), CAL, ScheduleConfig(evals_time=time(4, 30))) == ny(TUE, 4, 30)


@pytest.mark.parametrize(("night", "expected"), [
    # spring forward: 02:00-02:59 do not exist on 10 March 2024; the run is at 03:00 EDT = 07:00 UTC
    (date(2024, 3, 10), datetime(2024, 3, 10, 7, 0, tzinfo=UTC)),
    (date(2024, 3, 11), datetime(2024, 3, 11, 6, 0, tzinfo=UTC)),
    # fall back: 01:00-01:59 happen twice on 3 November 2024, 02:00 once (EST) = 07:00 UTC
    (date(2024, 11, 2), datetime(2024, 11, 2, 6, 0, tzinfo=UTC)),
    (date(2024, 11, 3), datetime(2024, 11, 3, 7, 0, tzinfo=UTC)),
])
def test_nightly_evals_fire_once_a_night_across_the_dst_changes(night: date, expected: datetime) -> None:
    fired, last = [], None
    now = datetime.combine(night, time(0), UTC)
    while now < datetime.combine(night + timedelta(days=1), time(0), UTC):   # tick every minute for a UTC day
        slot = due_slot("evals", now, CAL, last)
        if slot is not None:
            fired.append(slot)
            last = slot
        now += timedelta(minutes=1)
    assert fired == [expected]
    assert expected.astimezone(NY).hour in (2, 3) and expected.astimezone(NY).minute == 0


def test_next_cycle_after_friday_close_is_monday_open_plus_five() -> None:
    assert next_slot("cycle", ny(date(2024, 3, 8), 16, 1), CAL) == ny(date(2024, 3, 11), 9, 35)


def test_due_jobs_lists_every_kind_due_with_its_slot() -> None:
    last = {"cycle": ny(TUE, 15, 30), "discovery": ny(TUE, 13, 30)}
    assert due_jobs(ny(TUE, 16, 15, 5), CAL, last) == [
        ("forward_returns", ny(TUE, 16, 15)), ("market_conditions", ny(TUE, 16, 15)),
        ("daily_summary", ny(TUE, 16, 15)), ("paper_report", ny(TUE, 16, 15)),  # the backup slot is past its grace
        ("alerts", ny(TUE, 16, 15))]
    assert due_jobs(ny(TUE, 2, 0, 5), CAL, {"forward_returns": ny(TUE - timedelta(days=1), 16, 15),
                                            "alerts": ny(TUE, 2)}) == [
        ("market_conditions", ny(TUE - timedelta(days=1), 16, 15)),
        ("daily_summary", ny(TUE - timedelta(days=1), 16, 15)), ("paper_report", ny(TUE - timedelta(days=1), 16, 15)),
        ("backup", ny(TUE, 2)), ("evals", ny(TUE, 2))]


def test_ticking_through_two_days_fires_every_slot_exactly_once() -> None:
    """A scheduler ticking every minute (and a little late) dispatches each slot once, nothing outside hours."""
    config = ScheduleConfig()
    days = [TUE, TUE + timedelta(days=1)]
    fired: dict[str, list[datetime]] = {}
    last: dict[str, datetime] = {}
    now = ny(TUE, 0, 0, 7)
    while now < ny(days[-1] + timedelta(days=1), 0, 0):
        for kind, slot in due_jobs(now, CAL, last, config):
            fired.setdefault(kind, []).append(slot)
            last[kind] = slot
        now += timedelta(minutes=1)
    assert fired["cycle"] == [s for d in days for s in session_slots("cycle", d, CAL, config)]
    assert fired["discovery"] == [s for d in days for s in session_slots("discovery", d, CAL, config)]
    monday = TUE - timedelta(days=1)
    assert fired["daily_summary"] == [ny(d, 16, 15) for d in [monday, *days]]  # Monday's caught up at start
    assert fired["backup"] == [ny(d, 2) for d in days]                        # Monday's was too old
    assert fired["alerts"] == [ny(TUE, 0) + timedelta(minutes=m) for m in range(2 * 24 * 60)]


@pytest.mark.parametrize("now", [
    ny(TUE, 11, 42, 31),       # market hours
    ny(TUE, 3, 7, 0),          # night
    ny(SAT, 14, 0, 59),        # weekend
    ny(JULY_4, 23, 59, 59),    # holiday
])
def test_alerts_are_due_every_minute_whatever_the_market(now: datetime) -> None:
    minute = now.replace(second=0)
    assert due_slot("alerts", now, CAL, None) == minute
    assert due_slot("alerts", now, CAL, minute - timedelta(minutes=1)) == minute
    assert not should_run("alerts", now, CAL, minute)                        # once per minute
    assert due_slot("alerts", minute + timedelta(minutes=1), CAL, minute) == minute + timedelta(minutes=1)
    assert next_slot("alerts", now, CAL) == minute + timedelta(minutes=1)


def test_a_scheduler_down_for_an_hour_runs_the_alerts_job_once_for_the_current_minute() -> None:
    assert due_slot("alerts", ny(SAT, 10, 30, 5), CAL, ny(SAT, 9, 30)) == ny(SAT, 10, 30)
    assert not should_run("alerts", ny(SAT, 10, 30, 50), CAL, ny(SAT, 10, 30))   # the missed minutes are not replayed


def test_undelivered_alerts_are_retried_every_five_minutes_on_the_clock() -> None:
    hour = [ny(SAT, 9) + timedelta(minutes=m) for m in range(60)]
    assert [s for s in hour if alert_retry_due(s)] == [ny(SAT, 9, m) for m in range(0, 60, 5)]
    assert alert_retry_due(ny(TUE, 9, 35)) and not alert_retry_due(ny(TUE, 9, 36))
    hourly = ScheduleConfig(alert_retry_minutes=60)
    assert [s for s in hour if alert_retry_due(s, hourly)] == [ny(SAT, 9)]


def test_every_retry_mark_is_covered_once_when_the_alerts_job_runs_less_often() -> None:
    config = ScheduleConfig(alerts_minutes=2, alert_retry_minutes=5)
    start = ny(SAT, 9)
    slots = [due_slot("alerts", start + timedelta(seconds=20 * i), CAL, None, config) for i in range(3 * 60)]
    distinct = sorted({s for s in slots if s is not None})
    assert distinct == [start + timedelta(minutes=m) for m in range(0, 60, 2)]
    retried = [s for s in distinct if alert_retry_due(s, config)]
    assert retried == [start + timedelta(minutes=m) for m in (0, 6, 10, 16, 20, 26, 30, 36, 40, 46, 50, 56)]
    marks = [start + timedelta(minutes=m) for m in range(0, 60, 5)]
    assert all(sum(1 for s in retried if s - timedelta(minutes=2) < mark <= s) == 1 for mark in marks)


def test_naive_times_and_bad_config_are_refused() -> None:
    naive = datetime(2024, 3, 5, 15, 0)  # noqa: DTZ001 - naive on purpose: the schedule must refuse it
    with pytest.raises(ValueError, match="timezone-aware"):
        should_run("cycle", naive, CAL, None)
    with pytest.raises(ValueError, match="cycle_minutes"):
        ScheduleConfig(cycle_minutes=0)
    with pytest.raises(ValueError, match="alert_retry_minutes"):
        ScheduleConfig(alert_retry_minutes=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        alert_retry_due(naive)
