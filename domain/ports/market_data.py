"""Market data and fundamentals ports. Every read takes `as_of`: no bar from the future."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, runtime_checkable

from domain.models.bar import Bar
from domain.models.market import Asset, BarSeries, Quote


@runtime_checkable
class MarketData(Protocol):
    """Assets, daily and intraday bars, and quotes."""

    async def assets(self) -> list[Asset]:
        """Every US equity asset the source knows, tradable or not."""
        ...

    async def daily_bars(
        self, symbols: Sequence[str], *, as_of: datetime, lookback: int
    ) -> dict[str, BarSeries]:
        """Up to `lookback` daily bars per symbol whose session closed at or before `as_of`.

        Symbols without data are left out of the result.
        """
        ...

    async def minute_bars(self, symbols: Sequence[str], *, start: datetime, end: datetime) -> dict[str, list[Bar]]:
        """One-minute bars with `start <= bar.at < end` (bars that have completed by `end`)."""
        ...

    async def latest_quotes(self, symbols: Sequence[str], *, as_of: datetime) -> dict[str, Quote]:
        """The latest quote per symbol known at `as_of`."""
        ...


@dataclass(frozen=True, slots=True)
class FundamentalsRecord:
    """Sector and market capitalisation of a symbol as of a date."""

    symbol: str
    sector: str | None
    market_cap: float | None
    as_of: date


@runtime_checkable
class Fundamentals(Protocol):
    """Sector and market cap, as known at a date."""

    async def get(self, symbols: Sequence[str], *, as_of: date) -> dict[str, FundamentalsRecord]:
        """Latest record per symbol dated on or before `as_of`; unknown symbols are left out."""
        ...
