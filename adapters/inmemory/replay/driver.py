"""`ReplayDriver`: moves an exchange through replayed history up to a time, event by event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from adapters.inmemory.exchange import Exchange
from adapters.inmemory.replay.timeline import BAR_END, BAR_OPEN, CLOSE, OPEN, Event, Timeline, ohlc
from domain.models.trading import Fill
from domain.money import price
from domain.ports.clock import MarketCalendar


class ReplayDriver:
    """Feeds the events of a `Timeline` into an `Exchange` in time order.

    Args:
        exchange: the exchange model (of the in-memory broker or of the emulator).
        timeline: the replayed history.
        calendar: the exchange calendar.
        move_clock: moves the clock the exchange reads (never backwards).
        cursor: events at or before this time are taken as already replayed.

    Attributes:
        credit_dividends: whether the history's cash dividends are credited (at the open of each ex-date,
            before the session opens); on unless a simulation's policy says otherwise (`application.dividends`).
    """

    def __init__(self, exchange: Exchange, timeline: Timeline, calendar: MarketCalendar,
                 move_clock: Callable[[datetime], None], cursor: datetime) -> None:
        self.exchange, self.timeline, self.calendar = exchange, timeline, calendar
        self._move, self.cursor = move_clock, cursor
        self.credit_dividends = True

    def advance_to(self, at: datetime) -> list[Fill]:
        """Process every price event up to `at`, then move the clock to `at`. Prices are fed in symbol order, so
        fills made by one event come out in the same order whatever the data's file order.

        Requested cancellations complete first. Then: session opens (the cash dividends going ex that day are
        credited first, when `credit_dividends`; then DAY orders of earlier sessions expire, waiting
        orders fill at the open), intraday bars (their open printed at their start, their range at their end),
        session closes (daily ranges of symbols without intraday bars, DAY expiry, last equity); finally, inside a
        session, symbols without intraday bars print their open again at `at` (the only price known from daily bars).

        Returns:
            The fills made.

        Raises:
            ValueError: `at` is naive.
        """
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"advance_to needs an aware datetime, got {at!r}")
        self.exchange.settle_cancels()
        fills: list[Fill] = []
        batch: list[Event] = []
        for event in self.timeline.events(self.cursor, at):
            if batch and (batch[0].at, batch[0].rank) != (event.at, event.rank):
                fills += self._process(batch)
                batch = []
            batch.append(event)
        if batch:
            fills += self._process(batch)
        self._move(at)
        fills += self._print_daily_opens(at)
        self.cursor = max(self.cursor, at)
        return fills

    def _process(self, batch: list[Event]) -> list[Fill]:
        first = batch[0]
        self._move(first.at)
        ex, tl = self.exchange, self.timeline
        if first.rank == OPEN and first.day is not None:
            due = tl.dividends(first.day) if self.credit_dividends else {}
            if due:
                ex.pay_dividends(first.day, due)
            return ex.open_session(first.day, {s: b[0] for s, b in sorted(tl.daily(first.day).items())})
        if first.rank == CLOSE and first.day is not None:
            day = first.day
            if ex.session != day:
                return []
            daily = dict(sorted(tl.daily(day).items()))
            ranges = {s: b for s, b in daily.items() if not tl.has_intraday(s, day)}
            return ex.close_session(day, {s: b[3] for s, b in daily.items()}, ranges)
        if ex.session is None:
            return []
        if first.rank == BAR_OPEN:
            return ex.price_update(first.at, {e.symbol: price(e.bar.open) for e in batch if e.bar is not None})
        if first.rank == BAR_END:
            return ex.range_update(first.at, {e.symbol: ohlc(e.bar) for e in batch if e.bar is not None})
        return []

    def _print_daily_opens(self, at: datetime) -> list[Fill]:
        day = self.exchange.session
        if day is None or not self.calendar.session_open(day) < at < self.calendar.session_close(day):
            return []
        opens = {s: b[0] for s, b in sorted(self.timeline.daily(day).items()) if not self.timeline.has_intraday(s, day)}
        return self.exchange.price_update(at, opens) if opens else []
