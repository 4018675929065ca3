"""Clock and market calendar ports. Nothing in domain or application reads the wall clock."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Source of the current time (real in live mode, simulated in backtests)."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


@runtime_checkable
class MarketCalendar(Protocol):
    """Trading sessions of the exchange (NYSE)."""

    @property
    def tz(self) -> tzinfo:
        """The exchange's time zone (America/New_York): its dates are the trading days."""
        ...

    def is_open(self, at: datetime) -> bool:
        """Whether the regular session is open at `at`."""
        ...

    def sessions(self, start: date, end: date) -> list[date]:
        """Trading days between `start` and `end`, inclusive."""
        ...

    def session_open(self, day: date) -> datetime:
        """Open of the regular session on trading day `day` (UTC)."""
        ...

    def session_close(self, day: date) -> datetime:
        """Close of the regular session on trading day `day` (UTC)."""
        ...

    def previous_session(self, at: datetime) -> date:
        """The last trading day whose session closed at or before `at`."""
        ...

    def next_session(self, day: date) -> date:
        """The first trading day strictly after `day`."""
        ...
