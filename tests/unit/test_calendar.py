"""NyseCalendar against known NYSE sessions, holidays, early closes and DST; SimClock and SystemClock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from adapters.calendar import NyseCalendar, SystemClock
from adapters.inmemory.clock import SimClock
from domain.ports.clock import Clock, MarketCalendar

NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def cal() -> NyseCalendar:
    return NyseCalendar()


def ny(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=NY)


def test_implements_the_ports(cal: NyseCalendar) -> None:
    assert isinstance(cal, MarketCalendar)
    assert isinstance(SystemClock(), Clock)
    assert isinstance(SimClock(datetime(2024, 1, 2, tzinfo=UTC)), Clock)


def test_independence_day_week_2024(cal: NyseCalendar) -> None:
    assert cal.sessions(date(2024, 7, 1), date(2024, 7, 7)) == [
        date(2024, 7, 1),
        date(2024, 7, 2),
        date(2024, 7, 3),
        date(2024, 7, 5),
    ]
    assert not cal.is_session(date(2024, 7, 4))
    with pytest.raises(ValueError, match="not an NYSE trading day"):
        cal.session_open(date(2024, 7, 4))


def test_early_close_on_july_3_2024(cal: NyseCalendar) -> None:
    assert cal.session_open(date(2024, 7, 3)) == ny(2024, 7, 3, 9, 30)
    assert cal.session_close(date(2024, 7, 3)) == ny(2024, 7, 3, 13)
    assert cal.session_close(date(2024, 7, 3)).tzinfo == UTC
    assert cal.is_open(ny(2024, 7, 3, 12, 59))
    assert not cal.is_open(ny(2024, 7, 3, 13, 0))
    assert not cal.is_open(ny(2024, 7, 3, 14, 0))


def test_day_after_thanksgiving_closes_early(cal: NyseCalendar) -> None:
    assert cal.session_close(date(2023, 11, 24)) == ny(2023, 11, 24, 13)
    assert not cal.is_session(date(2023, 11, 23))


@pytest.mark.parametrize(
    ("day", "open_utc", "close_utc"),
    [
        (date(2024, 3, 8), datetime(2024, 3, 8, 14, 30, tzinfo=UTC), datetime(2024, 3, 8, 21, tzinfo=UTC)),
        (date(2024, 3, 11), datetime(2024, 3, 11, 13, 30, tzinfo=UTC), datetime(2024, 3, 11, 20, tzinfo=UTC)),
        (date(2024, 11, 1), datetime(2024, 11, 1, 13, 30, tzinfo=UTC), datetime(2024, 11, 1, 20, tzinfo=UTC)),
        (date(2024, 11, 4), datetime(2024, 11, 4, 14, 30, tzinfo=UTC), datetime(2024, 11, 4, 21, tzinfo=UTC)),
    ],
)
def test_open_and_close_follow_daylight_saving(
    cal: NyseCalendar, day: date, open_utc: datetime, close_utc: datetime
) -> None:
    assert cal.session_open(day) == open_utc
    assert cal.session_close(day) == close_utc


def test_is_open_boundaries(cal: NyseCalendar) -> None:
    assert not cal.is_open(ny(2024, 7, 2, 9, 29))
    assert cal.is_open(ny(2024, 7, 2, 9, 30))
    assert cal.is_open(ny(2024, 7, 2, 15, 59))
    assert not cal.is_open(ny(2024, 7, 2, 16, 0))
    assert not cal.is_open(ny(2024, 7, 6, 12))  # Saturday
    assert not cal.is_open(ny(2024, 12, 25, 12))


def test_previous_session_is_the_last_closed_one(cal: NyseCalendar) -> None:
    assert cal.previous_session(ny(2024, 7, 3, 13, 0)) == date(2024, 7, 3)  # early close counts
    assert cal.previous_session(ny(2024, 7, 3, 12, 59)) == date(2024, 7, 2)
    assert cal.previous_session(ny(2024, 7, 5, 10)) == date(2024, 7, 3)
    assert cal.previous_session(ny(2024, 7, 8, 8)) == date(2024, 7, 5)  # Monday pre-market
    assert cal.previous_session(ny(2024, 7, 2, 16, 0)) == date(2024, 7, 2)


def test_next_session_skips_weekends_and_holidays(cal: NyseCalendar) -> None:
    assert cal.next_session(date(2024, 7, 3)) == date(2024, 7, 5)
    assert cal.next_session(date(2024, 7, 5)) == date(2024, 7, 8)
    assert cal.next_session(date(2024, 7, 4)) == date(2024, 7, 5)
    assert cal.next_session(date(2024, 12, 31)) == date(2025, 1, 2)


def test_special_closures(cal: NyseCalendar) -> None:
    assert not cal.is_session(date(2012, 10, 29))  # Hurricane Sandy
    assert not cal.is_session(date(2018, 12, 5))  # President Bush's funeral
    assert cal.is_session(date(2022, 6, 21)) and not cal.is_session(date(2022, 6, 20))  # Juneteenth from 2022


def test_range_widens_on_demand() -> None:
    cal = NyseCalendar(2020, 2021)
    assert cal.sessions(date(2024, 7, 1), date(2024, 7, 5))[-1] == date(2024, 7, 5)
    assert cal.previous_session(datetime(1999, 12, 31, 22, tzinfo=UTC)) == date(1999, 12, 31)
    assert cal.next_session(date(2037, 12, 31)).year == 2038


def test_naive_datetimes_are_refused(cal: NyseCalendar) -> None:
    naive = datetime(2024, 7, 2, 12)  # noqa: DTZ001 - naive on purpose: the calendar must refuse it
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.is_open(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.previous_session(naive)


def test_system_clock_is_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo == UTC
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=1)


def test_sim_clock_moves_only_forward_unless_reset() -> None:
    clock = SimClock(ny(2024, 7, 2, 9, 30))
    assert clock.now() == datetime(2024, 7, 2, 13, 30, tzinfo=UTC)
    assert clock.now().tzinfo == UTC
    assert clock.advance(timedelta(minutes=30)) == datetime(2024, 7, 2, 14, tzinfo=UTC)
    clock.set(datetime(2024, 7, 3, tzinfo=UTC))
    with pytest.raises(ValueError, match="cannot move back"):
        clock.set(datetime(2024, 7, 2, tzinfo=UTC))
    with pytest.raises(ValueError, match="negative"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2024, 7, 4))  # noqa: DTZ001 - naive on purpose: the clock must refuse it
    clock.reset(datetime(2020, 1, 1, tzinfo=UTC))
    assert clock.now() == datetime(2020, 1, 1, tzinfo=UTC)
