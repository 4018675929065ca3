"""The NYSE calendar (exchange_calendars "XNYS") and the system wall clock.

Building an exchange_calendars calendar takes a few hundred milliseconds, so the
schedule is built once per process, lazily, and kept as sorted Python lists that
answer every query with a bisect. The default range is 1990..2035; a query
outside it widens the range (down to 1885, up to 2099) instead of guessing.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from domain.ports.clock import Clock, MarketCalendar

NEW_YORK = ZoneInfo("America/New_York")
_MIN_YEAR = 1885
_MAX_YEAR = 2099
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class _Schedule:
    first_year: int
    last_year: int
    days: list[date]
    opens: list[datetime]
    closes: list[datetime]
    index: dict[date, int]


@lru_cache(maxsize=8)
def _build_schedule(first_year: int, last_year: int) -> _Schedule:
    import exchange_calendars as xcals  # slow import: only when a calendar is first needed

    cal = xcals.get_calendar("XNYS", start=f"{first_year}-01-01", end=f"{last_year}-12-31")
    sched = cal.schedule
    days = [ts.date() for ts in sched.index]
    opens = [ts.to_pydatetime().astimezone(UTC) for ts in sched["open"]]
    closes = [ts.to_pydatetime().astimezone(UTC) for ts in sched["close"]]
    return _Schedule(first_year, last_year, days, opens, closes, {d: i for i, d in enumerate(days)})


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got naive {at!r}")


class NyseCalendar(MarketCalendar):
    """Regular NYSE sessions, holidays and early closes, all times in UTC.

    Args:
        first_year: first year of the initially built schedule.
        last_year: last year of the initially built schedule.
    """

    def __init__(self, first_year: int = 1990, last_year: int = 2035) -> None:
        if not _MIN_YEAR <= first_year <= last_year <= _MAX_YEAR:
            raise ValueError(f"years must satisfy {_MIN_YEAR} <= first_year <= last_year <= {_MAX_YEAR}")
        self._years = (first_year, last_year)
        self._sched: _Schedule | None = None
        self._lock = threading.Lock()

    @property
    def tz(self) -> tzinfo:
        """America/New_York."""
        return NEW_YORK

    def _schedule(self, year: int | None = None) -> _Schedule:
        sched = self._sched
        if sched is not None and (year is None or sched.first_year <= year <= sched.last_year):
            return sched
        with self._lock:
            first, last = self._years
            if year is not None:
                if not _MIN_YEAR <= year <= _MAX_YEAR:
                    raise ValueError(f"NYSE calendar covers {_MIN_YEAR}..{_MAX_YEAR}, got year {year}")
                first, last = min(first, year - 1, _MAX_YEAR), max(last, year + 1)
                first, last = max(first, _MIN_YEAR), min(last, _MAX_YEAR)
            self._years = (first, last)
            self._sched = _build_schedule(first, last)
            return self._sched

    def _for_day(self, day: date) -> _Schedule:
        return self._schedule(day.year)

    def _for_instant(self, at: datetime) -> _Schedule:
        _require_aware(at)
        u = at.astimezone(UTC)
        self._schedule(u.year)
        # The sessions either side of `at` may fall in the neighbouring year: cover them too.
        self._schedule(min(max((u - _DAY).year, _MIN_YEAR), _MAX_YEAR))
        return self._schedule(min(max((u + _DAY).year, _MIN_YEAR), _MAX_YEAR))

    def is_session(self, day: date) -> bool:
        """Whether `day` is a trading day."""
        return day in self._for_day(day).index

    def is_open(self, at: datetime) -> bool:
        """Whether the regular session is open at `at` (open <= at < close)."""
        s = self._for_instant(at)
        i = bisect.bisect_right(s.opens, at) - 1
        return i >= 0 and at < s.closes[i]

    def sessions(self, start: date, end: date) -> list[date]:
        """Trading days between `start` and `end`, inclusive."""
        if end < start:
            return []
        self._for_day(start)
        s = self._for_day(end)
        return s.days[bisect.bisect_left(s.days, start) : bisect.bisect_right(s.days, end)]

    def _index(self, day: date) -> tuple[_Schedule, int]:
        s = self._for_day(day)
        i = s.index.get(day)
        if i is None:
            raise ValueError(f"{day.isoformat()} is not an NYSE trading day")
        return s, i

    def session_open(self, day: date) -> datetime:
        """Open of the regular session on trading day `day` (UTC).

        Raises:
            ValueError: `day` is not a trading day.
        """
        s, i = self._index(day)
        return s.opens[i]

    def session_close(self, day: date) -> datetime:
        """Close of the regular session on trading day `day` (UTC), early closes included.

        Raises:
            ValueError: `day` is not a trading day.
        """
        s, i = self._index(day)
        return s.closes[i]

    def previous_session(self, at: datetime) -> date:
        """The last trading day whose session closed at or before `at`."""
        s = self._for_instant(at)
        i = bisect.bisect_right(s.closes, at) - 1
        while i < 0:
            if s.first_year <= _MIN_YEAR:
                raise ValueError(f"no NYSE session closed at or before {at.isoformat()}")
            s = self._schedule(max(s.first_year - 10, _MIN_YEAR))
            i = bisect.bisect_right(s.closes, at) - 1
        return s.days[i]

    def next_session(self, day: date) -> date:
        """The first trading day strictly after `day`."""
        s = self._for_day(day)
        i = bisect.bisect_right(s.days, day)
        while i >= len(s.days):
            if s.last_year >= _MAX_YEAR:
                raise ValueError(f"no NYSE session after {day.isoformat()} before {_MAX_YEAR + 1}")
            s = self._schedule(min(s.last_year + 10, _MAX_YEAR))
            i = bisect.bisect_right(s.days, day)
        return s.days[i]


class SystemClock(Clock):
    """The wall clock, in UTC. Only live programs use it; backtests use `SimClock`."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        return datetime.now(UTC)
