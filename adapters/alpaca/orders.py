"""Alpaca orders (validated by alpaca-py's `Order`) as domain `Order`s, bracket legs included.

Legs: asked with ``nested=true``, Alpaca rolls the legs of a ``bracket``/``oto``/``oco`` order up
under the ``legs`` field of their parent (GET /v2/orders ``nested`` parameter; alpaca-py's `Order.legs`:
"when querying non-simple order_class orders in a nested style ... Otherwise, null"), and a leg's own
``legs`` is always null (https://docs.alpaca.markets/us/changelog/2026-06-05-order-legs-a0b6abc). Each
leg is a full order with its own id and an Alpaca-chosen client order id; Quorum lists it as its own
`Order` with ``parent_id`` set to the parent's id. An order whose ``order_class`` is an advanced
class but which, asked nested, carries no legs of its own is a leg.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from alpaca.trading.enums import OrderClass
from alpaca.trading.enums import OrderType as SdkOrderType
from alpaca.trading.models import Order as SdkOrder

from adapters.alpaca.sdk import as_object, validated
from adapters.alpaca.wire import dec, opt_dec, utc
from domain.errors import BrokerError
from domain.models.trading import Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from domain.money import ZERO

ADVANCED = frozenset({OrderClass.BRACKET, OrderClass.OTO, OrderClass.OCO})
STOP_TYPES = frozenset({SdkOrderType.STOP, SdkOrderType.STOP_LIMIT, SdkOrderType.TRAILING_STOP})
PROTECTIVE_STOP = "protective stop"
TAKE_PROFIT = "take profit"

STATUS = {
    "new": OrderStatus.NEW,
    "pending_new": OrderStatus.NEW,
    "accepted": OrderStatus.ACCEPTED,
    "accepted_for_bidding": OrderStatus.ACCEPTED,
    "held": OrderStatus.ACCEPTED,
    "pending_review": OrderStatus.ACCEPTED,
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


def sdk_order(body: Any, what: str = "an order") -> SdkOrder:
    """An order body validated by alpaca-py's `Order`.

    Raises:
        BrokerError: the body is not an order alpaca-py can read.
    """
    return validated(what, BrokerError, SdkOrder, **as_object(body, what, BrokerError))


def kind_of(order: SdkOrder) -> SdkOrderType | None:
    """The order type (``type``, else the deprecated ``order_type``)."""
    return order.type or order.order_type


def is_leg(order: SdkOrder) -> bool:
    """Whether `order`, read with ``nested=true``, is a leg of an advanced order."""
    return order.order_class in ADVANCED and not order.legs


def status_of(order: SdkOrder) -> OrderStatus:
    """The domain status of an Alpaca order status (unknown ones count as still open)."""
    return STATUS.get(order.status.value, OrderStatus.ACCEPTED)


def fill_reason(order: SdkOrder, leg: bool) -> str:
    """Why a fill of `order` happened: a stop (leg or standalone), a take-profit leg, or '' otherwise."""
    if kind_of(order) in STOP_TYPES:
        return PROTECTIVE_STOP
    if leg and kind_of(order) is SdkOrderType.LIMIT:
        return TAKE_PROFIT
    return ""


def _leg_prices(legs: list[SdkOrder]) -> tuple[Decimal | None, Decimal | None]:
    stop = take = None
    for leg in legs:
        if kind_of(leg) in STOP_TYPES and leg.stop_price is not None:
            stop = dec(leg.stop_price)
        elif kind_of(leg) is SdkOrderType.LIMIT and leg.limit_price is not None:
            take = dec(leg.limit_price)
    return stop, take


def order_from_sdk(order: SdkOrder, parent_id: str | None = None) -> Order:
    """An alpaca-py order as a domain `Order` (its legs' prices as the request's stop and take-profit).

    Raises:
        ValueError: a notional order (no qty), a multi-leg option order, or an unknown order type.
    """
    if order.qty is None:
        raise ValueError(f"order {order.id} has no qty (notional orders are not supported)")
    if order.symbol is None or order.side is None:
        raise ValueError(f"order {order.id} has no symbol or side (multi-leg option orders are not supported)")
    kind_value = kind_of(order)
    if kind_value is None or kind_value.value not in _TYPE:
        raise ValueError(f"order {order.id} has an unsupported type {kind_value!r}")
    kind = _TYPE[kind_value.value]
    qty = dec(order.qty)
    leg_stop, leg_take = _leg_prices(list(order.legs or []))
    own_stop = opt_dec(order.stop_price)
    request = OrderRequest(
        client_order_id=order.client_order_id,
        symbol=order.symbol.strip(),
        side=Side(order.side.value),
        qty=qty,
        type=kind,
        limit_price=opt_dec(order.limit_price),
        stop_price=own_stop if kind is OrderType.STOP else leg_stop,
        take_profit_price=leg_take,
        time_in_force=TimeInForce.GTC if order.time_in_force.value == "gtc" else TimeInForce.DAY,
        fractional=qty != qty.to_integral_value(),
    )
    filled_qty = opt_dec(order.filled_qty) or ZERO
    avg = opt_dec(order.filled_avg_price)
    return Order(
        request=request,
        broker_order_id=str(order.id),
        status=status_of(order),
        submitted_at=utc(order.submitted_at),
        filled_qty=filled_qty,
        filled_avg_price=avg if avg is not None and filled_qty > 0 else None,
        parent_id=parent_id,
    )


def with_legs(order: SdkOrder) -> list[tuple[SdkOrder, str | None]]:
    """`order` and each of its nested legs, paired with the parent id each is listed under."""
    parent = str(order.id)
    return [(order, None)] + [(leg, parent) for leg in order.legs or []]
