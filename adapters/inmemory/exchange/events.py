"""Market events the exchange model is driven by: cash dividends, session opens, price prints, bar ranges,
session closes.

Each event first completes requested cancellations (the exchange's processing step), then executes what
the prices allow, in order of submission. Fills are stamped with the event's time, never earlier.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

from adapters.inmemory.exchange.core import ExchangeCore
from adapters.inmemory.exchange.ledger import CashActivity
from adapters.inmemory.exchange.model import ExchangeOrder, Kind
from adapters.inmemory.exchange.pricing import at_print, in_range
from domain.models.trading import Fill

OHLC = tuple[Decimal, Decimal, Decimal, Decimal]
_RESTING_ORDER = ((Kind.STOP, Kind.STOP_LIMIT), (Kind.LIMIT,))


class MarketEvents(ExchangeCore):
    """Feeds prices to the order book."""

    def pay_dividends(self, day: date, per_share: Mapping[str, Decimal]) -> list[CashActivity]:
        """Cash dividends of the symbols going ex on `day`, per share: credited at that session's open, before
        the session opens (`open_session`), to the shares held at the previous close (a short pays them), as DIV
        activities. Symbols not held get nothing.

        Raises:
            ValueError: `day` is not after the last session opened, or an amount is not a positive Decimal.
            TypeError: an amount is not a Decimal.
        """
        if self._last_open_day is not None and day <= self._last_open_day:
            raise ValueError(f"dividends of {day} come before its session opens (last opened: {self._last_open_day})")
        at = self.calendar.session_open(day)
        amounts = {s: self.checked_price(s, a) for s, a in per_share.items()}
        return [self.ledger.credit_dividend(s, amounts[s], at, self._ids.new())
                for s in sorted(amounts) if self.ledger.qty(s) != 0]

    def open_session(self, day: date, opens: Mapping[str, Decimal]) -> list[Fill]:
        """The session of `day` opened at `opens`: DAY orders of earlier sessions expire, and orders waiting for
        this session execute against the opening print, at the open.

        Raises:
            ValueError: `day` is not a session, is before the last session opened, or is already open.
            TypeError: a price is not a Decimal.
        """
        at = self.calendar.session_open(day)
        if self._last_open_day is not None and day <= self._last_open_day:
            raise ValueError(f"session {day} is not after the last session opened ({self._last_open_day})")
        prices = {s: self.checked_price(s, p) for s, p in opens.items()}
        self.settle_cancels()
        self._expire(before=day)
        self._session, self._last_open_day = day, day
        return self._prints(at, prices)

    def price_update(self, at: datetime, prices: Mapping[str, Decimal]) -> list[Fill]:
        """Prices printed at `at` during the open session: market orders sent at or before `at` fill, resting
        stops and limits these prices cross execute.

        Raises:
            ValueError: no session is open, or `at` is outside it.
        """
        self._require_session(at)
        checked = {s: self.checked_price(s, p) for s, p in prices.items()}
        self.settle_cancels()
        return self._prints(at, checked)

    def range_update(self, end: datetime, bars: Mapping[str, OHLC]) -> list[Fill]:
        """Bars (open, high, low, close) that ended at `end`: resting stops and limits active before `end` that a
        bar touched execute at `end` (stops before limits: when both legs of a bracket were touched the worse
        outcome is assumed); the last price becomes the close."""
        self._require_session(end)
        checked = {s: tuple(self.checked_price(s, p) for p in b) for s, b in bars.items()}
        if any(len(b) != 4 for b in checked.values()):
            raise ValueError("bars must be (open, high, low, close) tuples")
        self.settle_cancels()
        fills = self._ranges(end, checked)  # type: ignore[arg-type]
        for s, b in checked.items():
            self._set_price(s, b[3], end)
        return fills

    def close_session(self, day: date, closes: Mapping[str, Decimal],
                      ranges: Mapping[str, OHLC] | None = None) -> list[Fill]:
        """The session of `day` closed: resting orders execute on `ranges` (daily bars, for symbols without
        intraday bars), market orders still waiting fill at the closing print, DAY orders and their legs
        expire, and the equity at `closes` becomes `last_equity`.

        Raises:
            ValueError: the session of `day` is not the open one.
        """
        if self._session != day:
            raise ValueError(f"the session of {day} is not open (open: {self._session})")
        at = self.calendar.session_close(day)
        checked_closes = {s: self.checked_price(s, p) for s, p in closes.items()}
        checked_ranges = {s: tuple(self.checked_price(s, p) for p in b) for s, b in (ranges or {}).items()}
        if any(len(b) != 4 for b in checked_ranges.values()):
            raise ValueError("bars must be (open, high, low, close) tuples")
        self.settle_cancels()
        fills = self._ranges(at, checked_ranges)  # type: ignore[arg-type]
        for symbol, px in checked_closes.items():
            self._set_price(symbol, px, at)
            for order in self._eligible(symbol, at, day):
                if order.kind is Kind.MARKET and order.is_open:
                    fill = self._execute(order, at_print(order, px, self.fees)[0] or px, at)
                    if fill is not None:
                        fills.append(fill)
        self._expire(through=day)
        self.last_equity = self.equity()
        self._lastday.update(self._prices)
        self._session, self._last_closed = None, day
        return fills

    def _prints(self, at: datetime, prices: Mapping[str, Decimal]) -> list[Fill]:
        fills: list[Fill] = []
        day = self._open_day()
        for symbol, px in prices.items():
            self._set_price(symbol, px, at)
            for order in self._eligible(symbol, at, day):
                if not order.is_open or order.active_since is None:
                    continue
                fill_px, triggered = at_print(order, px, self.fees)
                order.triggered = order.triggered or triggered
                if fill_px is not None:
                    fill = self._execute(order, fill_px, at)
                    if fill is not None:
                        fills.append(fill)
        return fills

    def _ranges(self, end: datetime, bars: Mapping[str, OHLC]) -> list[Fill]:
        fills: list[Fill] = []
        day = self._open_day()
        for symbol, (o, h, lo, _c) in bars.items():
            for kinds in _RESTING_ORDER:
                for order in self._eligible(symbol, end, day):
                    active = order.active_since
                    if order.kind not in kinds or not order.is_open or active is None or active >= end:
                        continue
                    fill_px, triggered = in_range(order, o, h, lo, self.fees)
                    order.triggered = order.triggered or triggered
                    if fill_px is not None:
                        fill = self._execute(order, fill_px, end)
                        if fill is not None:
                            fills.append(fill)
        return fills

    def _eligible(self, symbol: str, at: datetime, day: date) -> list[ExchangeOrder]:
        """Open orders of `symbol` sent at or before `at` for this session or an earlier one, oldest first."""
        return [o for o in self.book.open_orders(symbol) if o.session_day <= day and o.submitted_at <= at]

    def _require_session(self, at: datetime) -> None:
        day = self._session
        if day is None:
            raise ValueError(f"no session is open at the exchange at {at.isoformat()}")
        if not self.calendar.session_open(day) <= at <= self.calendar.session_close(day):
            raise ValueError(f"{at.isoformat()} is outside the session of {day}")

    def _open_day(self) -> date:
        """The open session's day (callers checked there is one)."""
        if self._session is None:
            raise ValueError("no session is open at the exchange")
        return self._session
