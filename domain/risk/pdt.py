"""Pattern-day-trader bookkeeping (FINRA Rule 4210).

A margin account under $25,000 that makes four or more day trades within five
business days is flagged as a pattern day trader and restricted for 90 days.
A day trade is a buy and a sell of the same security on the same trading day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal

from domain.models.trading import Fill, Position, Side
from domain.risk.config import RiskSettings


def trading_day(at: datetime, tz: tzinfo) -> date:
    """The exchange-calendar date of a timezone-aware instant.

    Raises:
        ValueError: `at` is naive (its day would depend on the machine's timezone).
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"timestamp {at.isoformat()} has no timezone; cannot tell its trading day")
    return at.astimezone(tz).date()


def count_day_trades(fills: Sequence[Fill], *, sessions: Sequence[date], tz: tzinfo) -> int:
    """Day trades among `fills` made on any of `sessions`.

    Fills are grouped by symbol and exchange-timezone day; each group counts
    min(buy orders, sell orders) day trades. Several partial fills of one order
    (same `client_order_id`) are one order. Counting by min() regardless of
    the order of buys and sells never undercounts.

    Args:
        fills: executions, in any order; fills outside `sessions` are ignored.
        sessions: the trading days of the window (the last 5 business days).
        tz: the exchange timezone (America/New_York).

    Returns:
        The number of day trades in the window.

    Raises:
        ValueError: a fill has a naive timestamp.
    """
    window = set(sessions)
    buys: defaultdict[tuple[str, date], set[str]] = defaultdict(set)
    sells: defaultdict[tuple[str, date], set[str]] = defaultdict(set)
    for i, fill in enumerate(fills):
        day = trading_day(fill.at, tz)
        if day not in window:
            continue
        order_key = fill.client_order_id or f"#fill-{i}"
        book = buys if fill.side is Side.BUY else sells
        book[(fill.symbol, day)].add(order_key)
    return sum(min(len(orders), len(sells.get(key, ()))) for key, orders in buys.items())


def opened_today(position: Position, *, today: date, tz: tzinfo) -> bool:
    """Whether `position` was opened on the trading day `today`, so closing it now is a day trade.

    A position with no known opening time counts as opened today: misjudging
    it the other way could get the account flagged as a pattern day trader.
    """
    if position.opened_at is None or position.opened_at.utcoffset() is None:
        return True
    return trading_day(position.opened_at, tz) == today


def pdt_restricted(equity: Decimal, day_trades_used: int, settings: RiskSettings) -> bool:
    """Whether one more day trade would get the account flagged as a pattern day trader.

    True when equity is below the PDT threshold (or unknown) and the day trades of
    the last 5 business days already reach the allowed number.
    """
    small = not equity.is_finite() or equity < settings.pdt_equity_threshold
    return small and day_trades_used >= settings.pdt_max_day_trades
