"""Where an order executes against a price print or a bar, and what a buy is worth for buying power.

A print is one price at one instant (a session open, a bar's open, a quote): market orders fill there,
stops and limits that it crosses too. A bar's range (open, high, low) triggers resting stops and limits:
a sell stop fills at min(open, stop) less slippage (a gap below the stop fills at the open), a buy stop at
max(open, stop) plus slippage, a limit at its limit or better. Slippage and fees come from `FeeSettings`.
"""

from __future__ import annotations

from decimal import ROUND_UP, Decimal

from adapters.inmemory.exchange.model import ExchangeOrder, Kind
from domain.models.trading import Side
from domain.money import CENT
from domain.risk.config import FeeSettings
from domain.risk.fees import fill_price


def at_print(order: ExchangeOrder, px: Decimal, fees: FeeSettings) -> tuple[Decimal | None, bool]:
    """Fill price of `order` against the print `px` (None: no fill) and whether a stop-limit is now triggered."""
    side, kind = order.side, order.kind
    if kind is Kind.MARKET:
        return fill_price(side, px, fees), False
    if kind is Kind.LIMIT:
        return _limit_at(side, _limit(order), px, fees), False
    stop = _stop(order)
    crossed = order.triggered or (px <= stop if side is Side.SELL else px >= stop)
    if not crossed:
        return None, False
    if kind is Kind.STOP:
        return fill_price(side, px, fees), True
    return _limit_at(side, _limit(order), px, fees), True


def in_range(order: ExchangeOrder, open_px: Decimal, high: Decimal, low: Decimal,
             fees: FeeSettings) -> tuple[Decimal | None, bool]:
    """Fill price of a resting stop or limit touched by a bar with this open/high/low (None: no fill), and
    whether a stop-limit is now triggered. Market orders never fill on a range (they fill at prints)."""
    side, kind = order.side, order.kind
    high, low = max(high, open_px), min(low, open_px)
    if kind is Kind.LIMIT:
        return _limit_in_range(side, _limit(order), open_px, high, low, fees), False
    if kind not in (Kind.STOP, Kind.STOP_LIMIT):
        return None, False
    base = _stop_base(order, open_px, high, low)
    if base is None:
        return None, False
    if kind is Kind.STOP:
        return fill_price(side, base, fees), True
    return _stop_limit_in_range(side, base, _limit(order), high, low, fees), True


def _limit_in_range(side: Side, limit: Decimal, open_px: Decimal, high: Decimal, low: Decimal,
                    fees: FeeSettings) -> Decimal | None:
    if side is Side.BUY and low <= limit:
        return min(fill_price(side, min(open_px, limit), fees), limit)
    if side is Side.SELL and high >= limit:
        return max(fill_price(side, max(open_px, limit), fees), limit)
    return None


def _stop_base(order: ExchangeOrder, open_px: Decimal, high: Decimal, low: Decimal) -> Decimal | None:
    """The price a stop triggered within the bar executes from (before slippage), or None if it is not reached."""
    stop = _stop(order)
    if order.triggered:
        return open_px
    if order.side is Side.SELL and low <= stop:
        return min(open_px, stop)
    if order.side is Side.BUY and high >= stop:
        return max(open_px, stop)
    return None


def _stop_limit_in_range(side: Side, base: Decimal, limit: Decimal, high: Decimal, low: Decimal,
                         fees: FeeSettings) -> Decimal | None:
    if side is Side.SELL:
        if base >= limit:
            return max(fill_price(side, base, fees), limit)
        return limit if high >= limit else None
    if base <= limit:
        return min(fill_price(side, base, fees), limit)
    return limit if low <= limit else None


def buy_valuation(kind: Kind, limit: Decimal | None, stop: Decimal | None, last: Decimal,
                  collar_pct: Decimal) -> Decimal:
    """Price per share a buy is valued at for buying power: a limit at its limit, anything that may execute as
    a market order at the higher of the last price and its stop, plus the collar, rounded up to the cent."""
    if kind is Kind.LIMIT and limit is not None:
        return limit
    if kind is Kind.STOP_LIMIT and limit is not None:
        return limit
    base = max(last, stop) if stop is not None else last
    return (base * (1 + collar_pct)).quantize(CENT, rounding=ROUND_UP)


def _limit_at(side: Side, limit: Decimal, px: Decimal, fees: FeeSettings) -> Decimal | None:
    if side is Side.BUY and px <= limit:
        return min(fill_price(side, px, fees), limit)
    if side is Side.SELL and px >= limit:
        return max(fill_price(side, px, fees), limit)
    return None


def _limit(order: ExchangeOrder) -> Decimal:
    if order.limit_price is None:
        raise ValueError(f"order {order.id} of type {order.kind} has no limit price")
    return order.limit_price


def _stop(order: ExchangeOrder) -> Decimal:
    if order.stop_price is None:
        raise ValueError(f"order {order.id} of type {order.kind} has no stop price")
    return order.stop_price
