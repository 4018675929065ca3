"""Pure rules of the simulated broker: price increments, when resting orders trigger, day-trade counting."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from domain.models.trading import Fill, OrderRequest, OrderType, Side
from domain.money import QTY_STEP
from domain.risk.config import FeeSettings
from domain.risk.fees import fill_price

NEW_YORK = ZoneInfo("America/New_York")
_PENNY = Decimal("0.01")
_SUB_PENNY = Decimal("0.0001")


def tick_error(name: str, value: Decimal) -> str | None:
    """Why `value` is not a valid order price (Alpaca: whole cents from 1 USD, 1/100 cent below), or None."""
    step = _PENNY if value >= 1 else _SUB_PENNY
    if value != value.quantize(step):
        return f"{name} {value} is not a multiple of {step} (sub-penny increments are rejected)"
    return None


def qty_error(qty: Decimal) -> str | None:
    """Why `qty` is not a valid order quantity, or None."""
    if not qty.is_finite() or qty != qty.quantize(QTY_STEP):
        return f"qty {qty} has more than 9 decimal places"
    return None


def is_fractional(qty: Decimal) -> bool:
    """Whether `qty` has a fractional part."""
    return qty != qty.to_integral_value()


def price_at_open(request: OrderRequest, open_px: Decimal, fees: FeeSettings) -> Decimal | None:
    """Fill price of `request` against the opening print `open_px`, or None when it does not execute there."""
    side, kind = request.side, request.type
    if kind is OrderType.MARKET:
        return fill_price(side, open_px, fees)
    if kind is OrderType.LIMIT:
        limit = request.limit_price
        assert limit is not None
        if side is Side.BUY and open_px <= limit:
            return min(fill_price(side, open_px, fees), limit)
        if side is Side.SELL and open_px >= limit:
            return max(fill_price(side, open_px, fees), limit)
        return None
    stop = request.stop_price
    assert stop is not None
    if (side is Side.SELL and open_px <= stop) or (side is Side.BUY and open_px >= stop):
        return fill_price(side, open_px, fees)
    return None


def price_in_range(
    request: OrderRequest, open_px: Decimal, high: Decimal, low: Decimal, fees: FeeSettings
) -> Decimal | None:
    """Fill price of a resting limit or stop order touched during a session with this open/high/low, or None.

    A sell stop fills at min(open, stop) less slippage (a gap below the stop fills at the open); a buy stop at
    max(open, stop) plus slippage. A limit fills at its limit or better.
    """
    side, kind = request.side, request.type
    if kind is OrderType.LIMIT:
        limit = request.limit_price
        assert limit is not None
        if side is Side.BUY and low <= limit:
            return min(fill_price(side, min(open_px, limit), fees), limit)
        if side is Side.SELL and high >= limit:
            return max(fill_price(side, max(open_px, limit), fees), limit)
        return None
    if kind is OrderType.STOP:
        stop = request.stop_price
        assert stop is not None
        if side is Side.SELL and low <= stop:
            return fill_price(side, min(open_px, stop), fees)
        if side is Side.BUY and high >= stop:
            return fill_price(side, max(open_px, stop), fees)
    return None


def session_day(fill: Fill) -> date:
    """New York calendar day of a fill."""
    return fill.at.astimezone(NEW_YORK).date()


def count_day_trades(fills: Iterable[Fill], days: set[date]) -> int:
    """Day trades (a position opened and then reduced on the same day) on `days`.

    Per day and symbol, every reducing fill that follows same-day opening fills counts once, so
    buy-sell-buy-sell is two day trades and buy-buy-sell is one.
    """
    opened: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    held: dict[str, Decimal] = defaultdict(Decimal)
    count = 0
    for f in sorted(fills, key=lambda f: f.at):
        signed = f.qty if f.side is Side.BUY else -f.qty
        key = (session_day(f), f.symbol)
        before = held[f.symbol]
        held[f.symbol] = before + signed
        if before == 0 or (before > 0) == (signed > 0):
            opened[key] += abs(signed)
            continue
        if opened[key] > 0:
            if key[0] in days:
                count += 1
            opened[key] = max(opened[key] - abs(signed), Decimal(0))
    return count
