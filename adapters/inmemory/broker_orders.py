"""Domain orders <-> the exchange model, the way `adapters.alpaca` maps them to and from Alpaca's JSON.

A request becomes the order AlpacaBroker would send: a fractional quantity is a plain DAY order (Alpaca
accepts no legs on fractions, so Quorum keeps that stop itself); a whole-share buy with a stop is a bracket
(with a take-profit) or an OTO (stop only) whose legs take the order's time in force.
"""

from __future__ import annotations

from adapters.inmemory.exchange import (
    AccountView,
    ExchangeOrder,
    Kind,
    OrderClass,
    OrderSpec,
    PositionView,
    Role,
    Status,
    Tif,
)
from adapters.inmemory.exchange.rules import is_fractional
from domain.models.account import Account
from domain.models.trading import Order, OrderRequest, OrderStatus, OrderType, Position, Side, TimeInForce

_STATUS = {
    Status.ACCEPTED: OrderStatus.ACCEPTED,
    Status.NEW: OrderStatus.NEW,
    Status.HELD: OrderStatus.ACCEPTED,
    Status.PENDING_CANCEL: OrderStatus.ACCEPTED,
    Status.FILLED: OrderStatus.FILLED,
    Status.CANCELED: OrderStatus.CANCELED,
    Status.EXPIRED: OrderStatus.EXPIRED,
    Status.REJECTED: OrderStatus.REJECTED,
}
_TYPE = {Kind.MARKET: OrderType.MARKET, Kind.LIMIT: OrderType.LIMIT, Kind.STOP: OrderType.STOP,
         Kind.STOP_LIMIT: OrderType.STOP}


def spec_from_request(request: OrderRequest) -> OrderSpec:
    """The order the exchange receives for `request`."""
    fractional = request.fractional or is_fractional(request.qty)
    order_class, take, stop = OrderClass.SIMPLE, None, None
    protective = request.side is Side.BUY and request.type is not OrderType.STOP and request.stop_price is not None
    if protective and not fractional:
        stop = request.stop_price
        order_class = OrderClass.BRACKET if request.take_profit_price is not None else OrderClass.OTO
        take = request.take_profit_price
    return OrderSpec(
        symbol=request.symbol,
        side=request.side,
        qty=request.qty,
        kind=Kind(request.type.value),
        tif=Tif.DAY if fractional else Tif(request.time_in_force.value),
        limit_price=request.limit_price if request.type is OrderType.LIMIT else None,
        stop_price=request.stop_price if request.type is OrderType.STOP else None,
        client_order_id=request.client_order_id,
        order_class=order_class,
        take_profit_limit=take,
        stop_loss_stop=stop,
        reason=request.reason,
    )


def order_from_exchange(order: ExchangeOrder, legs: list[ExchangeOrder]) -> Order:
    """The domain view of an exchange order; a parent carries its legs' stop and take-profit prices."""
    qty = order.qty if order.qty is not None else order.filled_qty
    leg_stop = next((leg.stop_price for leg in legs if leg.role is Role.STOP_LOSS), None)
    leg_take = next((leg.limit_price for leg in legs if leg.role is Role.TAKE_PROFIT), None)
    kind = _TYPE[order.kind]
    request = OrderRequest(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        qty=qty,
        type=kind,
        limit_price=order.limit_price,
        stop_price=order.stop_price if kind is OrderType.STOP else leg_stop,
        take_profit_price=leg_take,
        time_in_force=TimeInForce.GTC if order.tif is Tif.GTC else TimeInForce.DAY,
        fractional=is_fractional(qty),
        reason=order.reason or _leg_reason(order),
    )
    return Order(
        request=request,
        broker_order_id=order.id,
        status=_STATUS[order.status],
        submitted_at=order.submitted_at,
        filled_qty=order.filled_qty,
        filled_avg_price=order.filled_avg_price if order.filled_qty > 0 else None,
        parent_id=order.parent_id,
    )


def position_from_view(view: PositionView) -> Position:
    """A domain position: no opening time and no stop (brokers do not report them)."""
    return Position(symbol=view.symbol, qty=view.qty, avg_entry_price=view.avg_entry_price,
                    fractional=is_fractional(view.qty), qty_available=view.qty_available)


def account_from_view(view: AccountView) -> Account:
    """A domain account."""
    return Account(cash=view.cash, equity=view.equity, buying_power=view.buying_power,
                   day_trade_count=view.daytrade_count, pattern_day_trader=view.pattern_day_trader,
                   trading_blocked=view.trading_blocked, status=view.status, currency=view.currency,
                   last_equity=view.last_equity)


def _leg_reason(order: ExchangeOrder) -> str:
    return {Role.TAKE_PROFIT: "take profit", Role.STOP_LOSS: "protective stop"}.get(order.role, "")
