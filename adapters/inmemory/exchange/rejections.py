"""Refusals of the exchange model, each with Alpaca's HTTP status and JSON body and its domain error.

The emulator sends `status` and `body` as they are; the in-memory broker raises `to_domain_error()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any

from adapters.inmemory.exchange.rules import fmt
from domain.errors import (
    BrokerError,
    InsufficientBuyingPowerError,
    InsufficientQtyError,
    NotFoundError,
    OrderRejectedError,
    PatternDayTraderError,
    WashTradeError,
)

CODE_INVALID = 42210000
CODE_REQUEST = 40010001
CODE_FORBIDDEN = 40310000
CODE_PDT = 40310100
CODE_NOT_FOUND = 40410000
WASH_TRADE_MESSAGE = "potential wash trade detected. use complex orders"
PDT_MESSAGE = "trade denied due to pattern day trading protection"


class RejectionKind(StrEnum):
    """Why the exchange refused a request."""

    INVALID = "invalid"
    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
    INSUFFICIENT_QTY = "insufficient_qty"
    INSUFFICIENT_BUYING_POWER = "insufficient_buying_power"
    WASH_TRADE = "wash_trade"
    PATTERN_DAY_TRADER = "pattern_day_trader"
    NOT_FOUND = "not_found"
    NOT_CANCELABLE = "not_cancelable"


class Rejection(Exception):
    """A refused request: the HTTP status and body Alpaca would answer.

    Attributes:
        kind: what was refused.
        status: HTTP status (403, 404 or 422).
        body: the JSON body (`code`, `message` and, for some refusals, more fields).
    """

    def __init__(self, kind: RejectionKind, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("message", kind.value)))
        self.kind = kind
        self.status = status
        self.body = body

    @property
    def message(self) -> str:
        """Alpaca's message."""
        return str(self.body.get("message", ""))

    def to_domain_error(self) -> BrokerError:
        """The domain error the `Broker` port raises for this refusal."""
        said = f"{self.message} (HTTP {self.status}, code {self.body.get('code')})"
        if self.kind is RejectionKind.INSUFFICIENT_QTY:
            return InsufficientQtyError(
                said,
                symbol=str(self.body.get("symbol", "")),
                available=Decimal(str(self.body["available"])),
                held_for_orders=Decimal(str(self.body["held_for_orders"])),
                related_orders=tuple(self.body.get("related_orders", ())),
            )
        if self.kind is RejectionKind.INSUFFICIENT_BUYING_POWER:
            return InsufficientBuyingPowerError(said)
        if self.kind is RejectionKind.WASH_TRADE:
            return WashTradeError(said)
        if self.kind is RejectionKind.PATTERN_DAY_TRADER:
            return PatternDayTraderError(said)
        if self.kind is RejectionKind.NOT_FOUND:
            return NotFoundError(said)
        return OrderRejectedError(said)


def invalid(message: str, code: int = CODE_INVALID, **extra: Any) -> Rejection:
    """422: the order cannot be accepted as specified."""
    return Rejection(RejectionKind.INVALID, 422, {"code": code, "message": message, **extra})


def duplicate_client_order_id() -> Rejection:
    """422: the client order id was used before (by any order, open or not)."""
    return Rejection(RejectionKind.DUPLICATE_CLIENT_ORDER_ID, 422,
                     {"code": CODE_REQUEST, "message": "client_order_id must be unique"})


def insufficient_qty(symbol: str, requested: Decimal, available: Decimal, existing: Decimal, held: Decimal,
                     related: Sequence[str]) -> Rejection:
    """403: the sell asks for more shares than are not held by open orders."""
    return Rejection(RejectionKind.INSUFFICIENT_QTY, 403, {
        "code": CODE_FORBIDDEN,
        "message": f"insufficient qty available for order (requested: {fmt(requested)}, available: {fmt(available)})",
        "available": fmt(available),
        "existing_qty": fmt(existing),
        "held_for_orders": fmt(held),
        "related_orders": list(related),
        "symbol": symbol,
    })


def insufficient_buying_power(buying_power: Decimal, cost_basis: Decimal) -> Rejection:
    """403: the buy is worth more than the buying power left."""
    return Rejection(RejectionKind.INSUFFICIENT_BUYING_POWER, 403, {
        "code": CODE_FORBIDDEN,
        "message": "insufficient buying power",
        "buying_power": fmt(buying_power),
        "cost_basis": fmt(cost_basis),
    })


def wash_trade(existing_order_id: str) -> Rejection:
    """403: the order could execute against an open order of the account on the other side."""
    return Rejection(RejectionKind.WASH_TRADE, 403, {
        "code": CODE_FORBIDDEN, "message": WASH_TRADE_MESSAGE, "existing_order_id": existing_order_id,
    })


def pattern_day_trader() -> Rejection:
    """403: the order could be the day trade that flags the account as a pattern day trader."""
    return Rejection(RejectionKind.PATTERN_DAY_TRADER, 403, {"code": CODE_PDT, "message": PDT_MESSAGE})


def order_not_found(order_id: str) -> Rejection:
    """404: no order with this id."""
    return Rejection(RejectionKind.NOT_FOUND, 404,
                     {"code": CODE_NOT_FOUND, "message": f"order not found for {order_id}"})


def not_cancelable(status: str) -> Rejection:
    """422: the order is no longer open (filled, canceled, expired or rejected)."""
    return Rejection(RejectionKind.NOT_CANCELABLE, 422,
                     {"code": CODE_INVALID, "message": f'order is already in "{status}" state'})
