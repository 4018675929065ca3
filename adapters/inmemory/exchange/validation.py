"""Checks that refuse an order for what it is, before the account is looked at (HTTP 422 at Alpaca).

Messages are Alpaca's where they were recorded or documented (docs/exchange-model.md names each source).
"""

from __future__ import annotations

from decimal import Decimal

from adapters.inmemory.exchange.model import Kind, OrderClass, OrderSpec, Tif
from adapters.inmemory.exchange.rejections import CODE_REQUEST, invalid
from adapters.inmemory.exchange.rules import PENNY, ExchangeRules, fmt, is_fractional, qty_error, tick_error
from domain.models.trading import Side

_PRICES = ("limit_price", "stop_price", "take_profit_limit", "stop_loss_stop", "stop_loss_limit")
_WIRE_NAMES = {"take_profit_limit": "take_profit.limit_price", "stop_loss_stop": "stop_loss.stop_price",
               "stop_loss_limit": "stop_loss.limit_price"}


def check_spec(spec: OrderSpec, *, fractionable: bool, last: Decimal, rules: ExchangeRules) -> bool:
    """Refuse `spec` if it cannot be accepted as written; returns whether it is a fractional order.

    Args:
        spec: the order.
        fractionable: whether the asset trades in fractions.
        last: the last known price of the symbol.
        rules: the exchange's rule parameters.

    Raises:
        Rejection: 422 with Alpaca's message.
    """
    _check_size(spec)
    _check_prices(spec)
    fractional = spec.notional is not None or (spec.qty is not None and is_fractional(spec.qty))
    if fractional:
        if spec.tif is not Tif.DAY:
            raise invalid("fractional orders must be DAY orders")
        if spec.order_class is not OrderClass.SIMPLE:
            raise invalid("fractional orders must be simple orders")
        if not fractionable:
            raise invalid("requested asset is not fractionable")
        if spec.side is Side.BUY:
            worth = spec.notional if spec.notional is not None else (spec.qty or Decimal(0)) * last
            if worth < rules.min_fractional_buy:
                raise invalid(f"fractional and notional buy orders must be at least {fmt(rules.min_fractional_buy)} "
                              "USD")
    if spec.order_class in (OrderClass.BRACKET, OrderClass.OTO):
        _check_legs(spec, last)
    elif spec.order_class is OrderClass.OCO:
        _check_oco(spec)
    return fractional


def _check_size(spec: OrderSpec) -> None:
    if spec.qty is None and spec.notional is None:
        raise invalid("qty or notional is required", CODE_REQUEST)
    if spec.qty is not None and spec.notional is not None:
        raise invalid("only one of qty or notional is accepted", CODE_REQUEST)
    if spec.qty is not None and (problem := qty_error(spec.qty)):
        raise invalid(problem)
    if spec.notional is not None and (not spec.notional.is_finite() or spec.notional <= 0):
        raise invalid("notional must be > 0")
    if spec.notional is not None and spec.kind not in (Kind.MARKET, Kind.LIMIT):
        raise invalid("notional orders must be market or limit orders")


def _check_prices(spec: OrderSpec) -> None:
    oco_limit = spec.order_class is OrderClass.OCO and spec.take_profit_limit is not None
    if spec.kind in (Kind.LIMIT, Kind.STOP_LIMIT) and spec.limit_price is None and not oco_limit:
        raise invalid(f"limit_price is required for {spec.kind.value} orders")
    if spec.kind in (Kind.STOP, Kind.STOP_LIMIT) and spec.stop_price is None:
        raise invalid(f"stop_price is required for {spec.kind.value} orders")
    for name in _PRICES:
        value = getattr(spec, name)
        if value is None:
            continue
        if not value.is_finite() or value <= 0:
            raise invalid(f"{_WIRE_NAMES.get(name, name)} must be > 0")
        if problem := tick_error(_WIRE_NAMES.get(name, name), value):
            raise invalid(problem)


def _check_legs(spec: OrderSpec, last: Decimal) -> None:
    take, stop = spec.take_profit_limit, spec.stop_loss_stop
    if spec.order_class is OrderClass.BRACKET and (take is None or stop is None):
        raise invalid("bracket orders require both take_profit.limit_price and stop_loss.stop_price")
    if spec.order_class is OrderClass.OTO and (take is None) == (stop is None):
        raise invalid("oto orders require exactly one of take_profit and stop_loss")
    base = spec.limit_price if spec.kind is Kind.LIMIT and spec.limit_price is not None else last
    buy = spec.side is Side.BUY
    if take is not None and stop is not None and (take <= stop if buy else take >= stop):
        relation = "higher" if buy else "lower"
        raise invalid(f"take_profit.limit_price must be {relation} than stop_loss.stop_price")
    if stop is not None and (stop > base - PENNY if buy else stop < base + PENNY):
        sign = "<= base_price - 0.01" if buy else ">= base_price + 0.01"
        raise invalid(f"stop_loss.stop_price must be {sign}", base_price=fmt(base))
    if take is not None and (take < base + PENNY if buy else take > base - PENNY):
        sign = ">= base_price + 0.01" if buy else "<= base_price - 0.01"
        raise invalid(f"take_profit.limit_price must be {sign}", base_price=fmt(base))


def _check_oco(spec: OrderSpec) -> None:
    if spec.kind is not Kind.LIMIT:
        raise invalid("oco orders must be limit orders")
    if spec.take_profit_limit is None or spec.stop_loss_stop is None:
        raise invalid("oco orders require both take_profit.limit_price and stop_loss.stop_price")
    take, stop = spec.take_profit_limit, spec.stop_loss_stop
    if (spec.side is Side.SELL and take <= stop) or (spec.side is Side.BUY and take >= stop):
        raise invalid("take_profit.limit_price must be on the profit side of stop_loss.stop_price")
