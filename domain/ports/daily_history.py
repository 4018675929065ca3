"""Ports of `quorum data fetch`: a source of past daily bars and the store they are written to."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class DailyRecord:
    """One session of one symbol as stored for backtests.

    Attributes:
        day: the session.
        open: the split-adjusted open (so are `high`, `low` and `close`: the prices traded in a backtest).
        high: split-adjusted high.
        low: split-adjusted low.
        close: split-adjusted close.
        volume: split-adjusted volume.
        adj_close: the close adjusted for splits and dividends (None when the source has none), from which the
            backtest's loader derives cash dividends.
    """

    day: date
    open: float
    high: float
    low: float
    close: float
    volume: float
    adj_close: float | None


@runtime_checkable
class DailyHistorySource(Protocol):
    """Where past daily bars come from (a market data API)."""

    def pages(self, symbol: str, start: date, end: date) -> AsyncIterator[list[DailyRecord]]:
        """The sessions of `symbol` from `start` to `end` (inclusive), oldest first, a page at a time.

        Raises:
            BrokerError: the source refused or failed (rate limits and outages already retried).
            DataError: an answer cannot be read.
            ConfigurationError: the account cannot read this data at all (e.g. its data plan).
        """
        ...

    async def listed(self, symbol: str) -> bool | None:
        """Whether the source knows `symbol` at all (None when it cannot tell)."""
        ...


@runtime_checkable
class DailyHistoryStore(Protocol):
    """Where fetched bars are kept, one series per symbol; every write replaces a series whole (atomically)."""

    def read(self, symbol: str) -> list[DailyRecord]:
        """The stored sessions of `symbol`, oldest first (empty when none).

        Raises:
            DataError: the stored series cannot be read.
        """
        ...

    def write(self, symbol: str, records: Sequence[DailyRecord]) -> None:
        """Replace the stored series of `symbol` by `records` (oldest first), all or nothing."""
        ...

    def covered(self, symbol: str) -> tuple[date, date] | None:
        """The span known to be complete for `symbol` (first, last day asked for), or None."""
        ...

    def set_covered(self, symbol: str, span: tuple[date, date] | None) -> None:
        """Record (or forget, with None) the span known to be complete for `symbol`."""
        ...
