"""What Quorum sends to Alpaca: order bodies with money as strings, and the number/time helpers.

alpaca-py's request models (``MarketOrderRequest`` and friends) carry ``qty`` and prices as
``float``, so they are not used to build bodies: a float never reaches an order.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from domain.errors import OrderRejectedError
from domain.models.trading import OrderRequest, OrderType, Side, TimeInForce

CENT = Decimal("0.01")
SUB_PENNY = Decimal("0.0001")
_NANOS = re.compile(r"(\.\d{6})\d+")


def dec(value: Any) -> Decimal:
    """Decimal from an Alpaca number or numeric string (floats via their shortest repr)."""
    if value is None or isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    d = Decimal(str(value))
    if not d.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return d


def opt_dec(value: Any) -> Decimal | None:
    """Decimal, or None for null or empty."""
    return None if value is None or value == "" else dec(value)


def utc(value: str | datetime) -> datetime:
    """An RFC 3339 timestamp (nanoseconds allowed) or an aware datetime, as aware UTC."""
    if isinstance(value, datetime):
        at = value
    else:
        at = datetime.fromisoformat(_NANOS.sub(r"\1", value.replace("Z", "+00:00")))
    if at.tzinfo is None:
        raise ValueError(f"timestamp without timezone: {value!r}")
    return at.astimezone(UTC)


def rfc3339(at: datetime) -> str:
    """An aware datetime as Alpaca's RFC 3339 UTC text.

    Raises:
        ValueError: `at` is naive.
    """
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: Quorum passes timezone-aware UTC times")
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def wire(value: Decimal) -> str:
    """A Decimal as a plain string (no exponent, no float)."""
    text = format(value.normalize(), "f")
    return text if text not in ("-0", "") else "0"


def wire_price(value: Decimal) -> str:
    """A price Alpaca accepts: cents at or above 1 USD, four decimals below (sub-penny rule)."""
    step = CENT if value >= 1 else SUB_PENNY
    return wire(value.quantize(step, rounding=ROUND_HALF_EVEN))


def is_fractional(request: OrderRequest) -> bool:
    """Whether the order is for fractional shares (flagged, or a non-integral quantity)."""
    return request.fractional or request.qty != request.qty.to_integral_value()


def order_body(request: OrderRequest) -> dict[str, Any]:
    """The POST /v2/orders body for `request`.

    Time in force: a whole-share order is sent with the request's own ``time_in_force``. A
    ``bracket`` or ``oto`` order's legs take the parent's time in force (Alpaca accepts only ``day``
    or ``gtc`` for them, https://docs.alpaca.markets/docs/orders-at-alpaca#bracket-orders), so a
    DAY entry's protective stop would expire at the first close: the hard limits ask for GTC on
    whole-share entries with a stop, and this function never overrides what they chose.

    Fractional orders are plain DAY orders without legs: Alpaca accepts fractional quantities only
    with ``time_in_force=day`` and not in advanced (bracket/OTO) orders
    (https://docs.alpaca.markets/docs/trading-1#fractional-shares), so the protective stop of a fractional
    position is enforced by Quorum. A whole-share buy with a stop becomes a ``bracket`` order when a
    take-profit is given, else ``oto`` with only the stop-loss leg.

    Raises:
        OrderRejectedError: the request cannot be expressed (e.g. a limit order without a limit price).
    """
    fractional = is_fractional(request)
    body: dict[str, Any] = {
        "symbol": request.symbol,
        "qty": wire(request.qty),
        "side": request.side.value,
        "type": request.type.value,
        "time_in_force": TimeInForce.DAY.value if fractional else request.time_in_force.value,
        "client_order_id": request.client_order_id,
    }
    if request.type is OrderType.LIMIT:
        if request.limit_price is None:
            raise OrderRejectedError(f"limit order {request.client_order_id} has no limit price; nothing was sent")
        body["limit_price"] = wire_price(request.limit_price)
    if request.type is OrderType.STOP:
        if request.stop_price is None:
            raise OrderRejectedError(f"stop order {request.client_order_id} has no stop price; nothing was sent")
        body["stop_price"] = wire_price(request.stop_price)
    protective = request.side is Side.BUY and request.type is not OrderType.STOP and request.stop_price is not None
    if protective and not fractional and request.stop_price is not None:
        body["stop_loss"] = {"stop_price": wire_price(request.stop_price)}
        if request.take_profit_price is not None:
            body["order_class"] = "bracket"
            body["take_profit"] = {"limit_price": wire_price(request.take_profit_price)}
        else:
            body["order_class"] = "oto"
    return body
