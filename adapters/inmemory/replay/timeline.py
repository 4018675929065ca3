"""The price events of replayed history, in time order: session opens and closes, intraday bars.

An intraday bar gives two events: its open price is printed at its start (market orders waiting fill there),
its range at its end (stops and limits it touched execute). Only regular-session bars trade: the emulator
does not model extended hours.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from adapters.inmemory.exchange import OHLC
from adapters.inmemory.exchange.rules import ny_date
from adapters.inmemory.market_data import DailyBarMarketData
from domain.models.bar import Bar
from domain.money import price
from domain.ports.clock import MarketCalendar

T = TypeVar("T")
BAR_END, CLOSE, OPEN, BAR_OPEN = 0, 1, 2, 3
_FAR_PAST = datetime(1900, 1, 1, tzinfo=UTC)
_FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends (the in-memory market data's methods), without a loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("the coroutine suspended; it needs an event loop")


@dataclass(frozen=True, slots=True, order=True)
class Event:
    """One thing that happens at `at` (events at the same time run in `rank` order)."""

    at: datetime
    rank: int
    symbol: str = ""
    day: date | None = None
    bar: Bar | None = None


def ohlc(bar: Bar) -> OHLC:
    """A bar's prices as Decimals on the price tick."""
    return price(bar.open), price(bar.high), price(bar.low), price(bar.close)


class Timeline:
    """Events of a `DailyBarMarketData` (daily bars plus the intraday bars it holds) on a calendar."""

    def __init__(self, market: DailyBarMarketData, calendar: MarketCalendar) -> None:
        self.market = market
        self.calendar = calendar
        raw: dict[str, list[Bar]] = run_sync(market.minute_bars(market.symbols, start=_FAR_PAST, end=_FAR_FUTURE))
        self.intervals = {s: _interval(bars) for s, bars in raw.items()}
        self.bars: dict[str, list[Bar]] = {}
        self._starts: dict[str, list[datetime]] = {}
        self._intraday_days: dict[str, set[date]] = {}
        for symbol, bars in raw.items():
            kept = [b for b in bars if self._in_session(b.at, self.intervals[symbol])]
            self.bars[symbol] = kept
            self._starts[symbol] = [b.at for b in kept]
            self._intraday_days[symbol] = {ny_date(b.at) for b in kept}

    def has_intraday(self, symbol: str, day: date) -> bool:
        """Whether `symbol` has regular-session intraday bars on `day`."""
        return day in self._intraday_days.get(symbol, set())

    def daily(self, day: date) -> dict[str, OHLC]:
        """Daily (open, high, low, close) of every symbol with a bar on `day`."""
        return self.market.ohlc_on(day)

    def dividends(self, day: date) -> dict[str, Decimal]:
        """Cash dividend per share of every symbol going ex on `day`."""
        return self.market.dividends.on(day)

    def events(self, after: datetime, until: datetime) -> list[Event]:
        """Events with `after < at <= until`, in the order they happen."""
        out: list[Event] = []
        for day in self.calendar.sessions(ny_date(after) - timedelta(days=1), ny_date(until) + timedelta(days=1)):
            opens, closes = self.calendar.session_open(day), self.calendar.session_close(day)
            if after < opens <= until:
                out.append(Event(opens, OPEN, day=day))
            if after < closes <= until:
                out.append(Event(closes, CLOSE, day=day))
        for symbol, starts in self._starts.items():
            length = self.intervals[symbol]
            bars = self.bars[symbol]
            for i in range(bisect.bisect_right(starts, after - length), bisect.bisect_right(starts, until)):
                bar = bars[i]
                if after < bar.at <= until:
                    out.append(Event(bar.at, BAR_OPEN, symbol, ny_date(bar.at), bar))
                if after < bar.at + length <= until:
                    out.append(Event(bar.at + length, BAR_END, symbol, ny_date(bar.at), bar))
        out.sort(key=lambda e: (e.at, e.rank, e.symbol))
        return out

    def bars_between(self, symbol: str, start: datetime, end: datetime) -> list[Bar]:
        """Regular-session intraday bars of `symbol` with `start <= at < end`."""
        starts = self._starts.get(symbol, [])
        return self.bars.get(symbol, [])[bisect.bisect_left(starts, start):bisect.bisect_left(starts, end)]

    def _in_session(self, at: datetime, length: timedelta) -> bool:
        day = ny_date(at)
        try:
            opens, closes = self.calendar.session_open(day), self.calendar.session_close(day)
        except ValueError:
            return False
        return opens <= at and at + length <= closes


def _interval(bars: list[Bar]) -> timedelta:
    gaps = Counter(b.at - a.at for a, b in itertools.pairwise(bars) if b.at > a.at)
    return gaps.most_common(1)[0][0] if gaps else timedelta(minutes=1)

