"""Alpaca JSON <-> domain models. Money and quantities are Decimal, times timezone-aware UTC.

Parsing is all-or-nothing: a function either returns a complete domain object or raises
(`KeyError`, `TypeError`, `ValueError`, `decimal.InvalidOperation`); `parsed()` turns those
into one typed error naming what could not be read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, TypeVar

from domain.errors import OrderRejectedError, QuorumError
from domain.models.account import Account
from domain.models.bar import Bar
from domain.models.market import Asset, Quote
from domain.models.trading import Fill, Order, OrderRequest, OrderStatus, OrderType, Position, Side, TimeInForce
from domain.money import ZERO

T = TypeVar("T")

_STATUS = {
    "new": OrderStatus.NEW,
    "pending_new": OrderStatus.NEW,
    "accepted": OrderStatus.ACCEPTED,
    "accepted_for_bidding": OrderStatus.ACCEPTED,
    "held": OrderStatus.ACCEPTED,
    "pending_cancel": OrderStatus.ACCEPTED,
    "pending_replace": OrderStatus.ACCEPTED,
    "done_for_day": OrderStatus.ACCEPTED,
    "stopped": OrderStatus.ACCEPTED,
    "suspended": OrderStatus.ACCEPTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "calculated": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "replaced": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
}
_TYPE = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP,
         "stop_limit": OrderType.STOP, "trailing_stop": OrderType.STOP}
_NANOS = re.compile(r"(\.\d{6})\d+")
CENT = Decimal("0.01")
SUB_PENNY = Decimal("0.0001")


def parsed(what: str, error: type[QuorumError], parse: Callable[..., T], *args: Any) -> T:
    """`parse(*args)`, or `error` naming `what` when the payload is missing fields or malformed."""
    try:
        return parse(*args)
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError) as exc:
        raise error(f"Alpaca returned {what} Quorum cannot read ({type(exc).__name__}: {exc})") from None


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


def utc(value: str) -> datetime:
    """RFC 3339 timestamp (nanoseconds allowed) as an aware UTC datetime."""
    at = datetime.fromisoformat(_NANOS.sub(r"\1", value.replace("Z", "+00:00")))
    if at.tzinfo is None:
        raise ValueError(f"timestamp without timezone: {value!r}")
    return at.astimezone(UTC)


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

    Fractional orders are sent as plain day orders: Alpaca accepts fractional quantities only
    with ``time_in_force=day`` and without brackets, so the protective stop of such a position
    is enforced by Quorum. A whole-share buy with a stop becomes a ``bracket`` order when a
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


def account_from_json(d: dict[str, Any]) -> Account:
    """GET /v2/account."""
    return Account(
        cash=dec(d["cash"]),
        equity=dec(d["equity"]),
        buying_power=dec(d["buying_power"]),
        day_trade_count=int(d.get("daytrade_count") or 0),
        pattern_day_trader=bool(d.get("pattern_day_trader", False)),
        trading_blocked=bool(d.get("trading_blocked") or d.get("account_blocked")),
        status=str(d.get("status") or "ACTIVE"),
        currency=str(d.get("currency") or "USD"),
    )


def position_from_json(d: dict[str, Any]) -> Position:
    """One item of GET /v2/positions; `qty` negative for a short."""
    qty = dec(d["qty"])
    if d.get("side") == "short" and qty > 0:
        qty = -qty
    return Position(
        symbol=str(d["symbol"]).strip(),
        qty=qty,
        avg_entry_price=dec(d["avg_entry_price"]),
        fractional=qty != qty.to_integral_value(),
    )


def asset_from_json(d: dict[str, Any]) -> Asset:
    """One item of GET /v2/assets."""
    return Asset(
        symbol=str(d["symbol"]).strip(),
        exchange=str(d.get("exchange") or ""),
        tradable=bool(d.get("tradable", False)),
        shortable=bool(d.get("shortable", False)),
        fractionable=bool(d.get("fractionable", False)),
        status=str(d.get("status") or ""),
        asset_class=str(d.get("class") or d.get("asset_class") or "us_equity"),
        name=str(d.get("name") or ""),
    )


def _leg_prices(legs: list[dict[str, Any]]) -> tuple[Decimal | None, Decimal | None]:
    stop = take = None
    for leg in legs:
        kind = leg.get("type") or leg.get("order_type")
        if kind in ("stop", "stop_limit") and leg.get("stop_price") is not None:
            stop = dec(leg["stop_price"])
        elif kind == "limit" and leg.get("limit_price") is not None:
            take = dec(leg["limit_price"])
    return stop, take


def order_from_json(d: dict[str, Any]) -> Order:
    """An Alpaca order (with its bracket legs, if any) as a domain `Order`."""
    if d.get("qty") is None:
        raise ValueError(f"order {d.get('id')} has no qty (notional orders are not supported)")
    qty = dec(d["qty"])
    kind = _TYPE[str(d.get("type") or d.get("order_type"))]
    leg_stop, leg_take = _leg_prices(list(d.get("legs") or []))
    own_stop = opt_dec(d.get("stop_price"))
    request = OrderRequest(
        client_order_id=str(d["client_order_id"]),
        symbol=str(d["symbol"]).strip(),
        side=Side(d["side"]),
        qty=qty,
        type=kind,
        limit_price=opt_dec(d.get("limit_price")),
        stop_price=own_stop if kind is OrderType.STOP else leg_stop,
        take_profit_price=leg_take,
        time_in_force=TimeInForce.GTC if d.get("time_in_force") == "gtc" else TimeInForce.DAY,
        fractional=qty != qty.to_integral_value(),
    )
    filled_qty = opt_dec(d.get("filled_qty")) or ZERO
    avg = opt_dec(d.get("filled_avg_price"))
    return Order(
        request=request,
        broker_order_id=str(d["id"]),
        status=_STATUS.get(str(d["status"]), OrderStatus.ACCEPTED),
        submitted_at=utc(d.get("submitted_at") or d["created_at"]),
        filled_qty=filled_qty,
        filled_avg_price=avg if avg is not None and filled_qty > 0 else None,
    )


def fill_from_activity(d: dict[str, Any], client_order_id: str) -> Fill:
    """One FILL account activity. Alpaca charges no commission; regulatory fees are separate activities."""
    return Fill(
        client_order_id=client_order_id,
        symbol=str(d["symbol"]).strip(),
        side=Side.BUY if d["side"] == "buy" else Side.SELL,
        qty=dec(d["qty"]),
        price=dec(d["price"]),
        fee=ZERO,
        at=utc(d["transaction_time"]),
    )


def bar_from_json(symbol: str, d: dict[str, Any]) -> Bar:
    """One bar of /v2/stocks/bars (``t`` is the bar's start)."""
    return Bar(symbol, utc(d["t"]), float(d["o"]), float(d["h"]), float(d["l"]), float(d["c"]), float(d["v"]))


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


def trade_from_json(symbol: str, d: dict[str, Any]) -> LatestTrade:
    """A latest trade (``p`` price, ``s`` size, ``t`` time)."""
    return LatestTrade(symbol, float(d["p"]), float(d.get("s") or 0), utc(d["t"]))


def snapshot_from_json(symbol: str, d: dict[str, Any]) -> Snapshot:
    """One symbol of GET /v2/stocks/snapshots.

    The quote's `last` is the latest trade price (the mid when there is no trade) and its `at`
    the later of the quote and trade times.
    """
    trade = trade_from_json(symbol, d["latestTrade"]) if d.get("latestTrade") else None
    q = d.get("latestQuote")
    quote = None
    if q or trade:
        bid = float(q["bp"]) if q else 0.0
        ask = float(q["ap"]) if q else 0.0
        times = [utc(q["t"])] if q else []
        times += [trade.at] if trade else []
        last = trade.price if trade else ((bid + ask) / 2 if bid > 0 and ask > 0 else 0.0)
        quote = Quote(symbol, bid, ask, last, max(times))

    def bar(key: str) -> Bar | None:
        return bar_from_json(symbol, d[key]) if d.get(key) else None

    return Snapshot(symbol, quote, trade, bar("minuteBar"), bar("dailyBar"), bar("prevDailyBar"))
