"""The body of POST /v2/orders (and the closing orders of DELETE /v2/positions) as an `OrderSpec`.

Numbers may come as strings or JSON numbers (parsed as Decimal, never float). What Alpaca accepts but the
emulator does not model (trailing stops, opg/cls/ioc/fok, extended hours, multi-leg options) is refused with
a 422 that says so.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.inmemory.exchange import Kind, OrderClass, OrderSpec, Tif
from adapters.inmemory.exchange.rejections import CODE_REQUEST, invalid
from domain.models.trading import Side

_NOT_EMULATED_TIF = frozenset({"opg", "cls", "ioc", "fok"})
MAX_CLIENT_ORDER_ID = 128


def parse_order(body: Any) -> OrderSpec:
    """An `OrderSpec` from a POST /v2/orders body.

    Raises:
        Rejection: 422 for a malformed or unsupported order.
    """
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object", CODE_REQUEST)
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise invalid("symbol is required", CODE_REQUEST)
    side = _choice(body, "side", {"buy": Side.BUY, "sell": Side.SELL})
    kind_name = str(body.get("type") or body.get("order_type") or "")
    if kind_name == "trailing_stop":
        raise invalid("trailing_stop orders are not supported by the emulator")
    kind = _choice({"type": kind_name}, "type", {k.value: k for k in Kind})
    tif_name = str(body.get("time_in_force") or "")
    if tif_name in _NOT_EMULATED_TIF:
        raise invalid(f"time_in_force {tif_name} is not supported by the emulator")
    tif = _choice({"time_in_force": tif_name}, "time_in_force", {t.value: t for t in Tif})
    if body.get("extended_hours") in (True, "true"):
        raise invalid("extended hours orders are not supported by the emulator")
    class_name = str(body.get("order_class") or "simple")
    order_class = _choice({"order_class": class_name}, "order_class", {c.value: c for c in OrderClass})
    client_order_id = body.get("client_order_id")
    if client_order_id is not None:
        client_order_id = str(client_order_id)
        if len(client_order_id) > MAX_CLIENT_ORDER_ID:
            raise invalid(f"client_order_id must be no more than {MAX_CLIENT_ORDER_ID} characters", CODE_REQUEST)
    take = body.get("take_profit") or {}
    stop = body.get("stop_loss") or {}
    if not isinstance(take, dict) or not isinstance(stop, dict):
        raise invalid("take_profit and stop_loss must be objects", CODE_REQUEST)
    return OrderSpec(
        symbol=symbol.strip().upper(),
        side=side,
        qty=_decimal(body, "qty"),
        notional=_decimal(body, "notional"),
        kind=kind,
        tif=tif,
        limit_price=_decimal(body, "limit_price"),
        stop_price=_decimal(body, "stop_price"),
        client_order_id=client_order_id,
        order_class=order_class,
        take_profit_limit=_decimal(take, "limit_price", "take_profit.limit_price"),
        stop_loss_stop=_decimal(stop, "stop_price", "stop_loss.stop_price"),
        stop_loss_limit=_decimal(stop, "limit_price", "stop_loss.limit_price"),
    )


def _choice(body: dict[str, Any], key: str, allowed: dict[str, Any]) -> Any:
    value = body.get(key)
    if value in (None, ""):
        raise invalid(f"{key} is required", CODE_REQUEST)
    if str(value) not in allowed:
        raise invalid(f"invalid {key} {value!r}")
    return allowed[str(value)]


def _decimal(body: dict[str, Any], key: str, name: str | None = None) -> Decimal | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, (bool, float)):
        value = str(value)
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise invalid(f"invalid {name or key} {value!r}", CODE_REQUEST) from None
    if not d.is_finite():
        raise invalid(f"invalid {name or key} {value!r}", CODE_REQUEST)
    return d

