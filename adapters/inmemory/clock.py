"""SimClock: the simulated clock backtests and tests move by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.ports.clock import Clock


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"SimClock needs a timezone-aware datetime, got naive {at!r}")
    return at.astimezone(UTC)


class SimClock(Clock):
    """A clock that only moves when told to, always in UTC.

    Time never runs backwards by accident: `set` and `advance` refuse to go to
    the past (a backtest that rewinds would see its own future). `reset` is the
    explicit way to rewind, e.g. between two backtest runs.

    Args:
        start: the initial time (timezone-aware; stored in UTC).
    """

    def __init__(self, start: datetime) -> None:
        self._now = _utc(start)

    def now(self) -> datetime:
        """The current simulated time (UTC)."""
        return self._now

    def set(self, at: datetime) -> None:
        """Move the clock to `at`, which must not be earlier than now.

        Raises:
            ValueError: `at` is naive or earlier than the current time.
        """
        at = _utc(at)
        if at < self._now:
            raise ValueError(f"SimClock cannot move back from {self._now.isoformat()} to {at.isoformat()}")
        self._now = at

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by `delta` (>= 0) and return the new time."""
        if delta < timedelta(0):
            raise ValueError(f"SimClock cannot advance by a negative {delta}")
        self._now += delta
        return self._now

    def reset(self, at: datetime) -> None:
        """Move the clock to `at`, earlier or later."""
        self._now = _utc(at)
