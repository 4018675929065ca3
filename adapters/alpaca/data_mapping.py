"""Alpaca market data (validated by alpaca-py's ``alpaca.data.models``) as domain bars and quotes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alpaca.data.models import Bar as SdkBar
from alpaca.data.models import Snapshot as SdkSnapshot
from alpaca.data.models import Trade as SdkTrade

from adapters.alpaca.sdk import as_object, validated
from adapters.alpaca.wire import utc
from domain.errors import DataError
from domain.models.bar import Bar
from domain.models.market import Quote


@dataclass(frozen=True, slots=True)
class LatestTrade:
    """The last trade of a symbol."""

    symbol: str
    price: float
    size: float
    at: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Alpaca's snapshot of a symbol: quote, last trade, current minute and daily bars."""

    symbol: str
    quote: Quote | None
    trade: LatestTrade | None
    minute_bar: Bar | None
    daily_bar: Bar | None
    prev_daily_bar: Bar | None


def _bar(b: SdkBar) -> Bar:
    return Bar(b.symbol, utc(b.timestamp), b.open, b.high, b.low, b.close, b.volume)


def _trade(t: SdkTrade) -> LatestTrade:
    return LatestTrade(t.symbol, t.price, t.size, utc(t.timestamp))


def bar_from_json(symbol: str, raw: Any) -> Bar:
    """One bar of /v2/stocks/bars (``t`` is the bar's start).

    Raises:
        DataError: alpaca-py's `Bar` rejects it.
    """
    return _bar(validated(f"a bar of {symbol}", DataError, SdkBar, symbol, as_object(raw, "a bar", DataError)))


def trade_from_json(symbol: str, raw: Any) -> LatestTrade:
    """A latest trade (``p`` price, ``s`` size, ``t`` time).

    Raises:
        DataError: alpaca-py's `Trade` rejects it.
    """
    trade = validated(f"a trade of {symbol}", DataError, SdkTrade, symbol, as_object(raw, "a trade", DataError))
    return _trade(trade)


def snapshot_from_json(symbol: str, raw: Any) -> Snapshot:
    """One symbol of GET /v2/stocks/snapshots.

    The quote's `last` is the latest trade price (the mid when there is no trade) and its `at`
    the later of the quote and trade times.

    Raises:
        DataError: alpaca-py's `Snapshot` rejects it.
    """
    snap = validated(f"a snapshot of {symbol}", DataError, SdkSnapshot, symbol,
                     as_object(raw, "a snapshot", DataError))
    trade = _trade(snap.latest_trade) if snap.latest_trade else None
    q = snap.latest_quote
    quote = None
    if q or trade:
        bid = q.bid_price if q else 0.0
        ask = q.ask_price if q else 0.0
        times = [utc(q.timestamp)] if q else []
        times += [trade.at] if trade else []
        last = trade.price if trade else ((bid + ask) / 2 if bid > 0 and ask > 0 else 0.0)
        quote = Quote(symbol, bid, ask, last, max(times))

    def bar(b: SdkBar | None) -> Bar | None:
        return _bar(b) if b is not None else None

    return Snapshot(symbol, quote, trade, bar(snap.minute_bar), bar(snap.daily_bar), bar(snap.previous_daily_bar))
