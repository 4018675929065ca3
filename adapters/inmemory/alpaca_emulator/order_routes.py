"""Orders and positions on the trading API: /v2/orders..., /v2/positions...

Cancelling is not instantaneous: DELETE answers 204 while the order is `pending_cancel` (still holding its
shares); the cancellation completes at the next request that reads that order, or the next clock advance.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from adapters.inmemory.alpaca_emulator.order_body import parse_order
from adapters.inmemory.alpaca_emulator.state import (
    EmulatorState,
    Query,
    Reply,
    flag,
    integer,
    not_found,
    ok,
    param,
    refused,
    timestamp,
)
from adapters.inmemory.alpaca_emulator.wire import order_json, position_json
from adapters.inmemory.exchange import ExchangeOrder, Kind, OrderSpec, Tif
from adapters.inmemory.exchange.rejections import CODE_REQUEST, Rejection, invalid
from domain.models.trading import Side
from domain.money import QTY_STEP

ORDERS = "/v2/orders"
BY_CLIENT_ID = "/v2/orders:by_client_order_id"
POSITIONS = "/v2/positions"


def handle(state: EmulatorState, method: str, path: str, query: Query, body: Any) -> Reply | None:
    """The answer to an order or position request, or None when the path is not one of these."""
    try:
        return _route(state, method, path, query, body)
    except Rejection as rejection:
        return refused(rejection)


def _route(state: EmulatorState, method: str, path: str, query: Query, body: Any) -> Reply | None:
    route = _ROUTES.get((method, path))
    if route is not None:
        return route(state, query, body)
    for prefix in (ORDERS + "/", POSITIONS + "/"):
        if path.startswith(prefix):
            item_route = _ITEM_ROUTES.get((method, prefix))
            return item_route(state, path[len(prefix):], query) if item_route is not None else None
    return None


def _submit_order(state: EmulatorState, query: Query, body: Any) -> Reply:
    return ok(_json(state, state.exchange.submit(parse_order(body)), nested=True))


def _order_by_client_id(state: EmulatorState, query: Query, body: Any) -> Reply:
    cid = param(query, "client_order_id")
    found = state.exchange.by_client_id(cid) if cid else None
    if found is None:
        return not_found(f"order not found for client_order_id {cid}")
    state.exchange.settle_cancels({found.id})
    return ok(_json(state, found, nested=flag(query, "nested")))


def _list_positions(state: EmulatorState, query: Query, body: Any) -> Reply:
    return ok([position_json(v, state.assets.get(v.symbol)) for v in state.exchange.positions()])


def _get_order(state: EmulatorState, order_id: str, query: Query) -> Reply:
    state.exchange.settle_cancels({order_id})
    got = state.exchange.get(order_id)
    if got is None:
        return not_found(f"order not found for {order_id}")
    return ok(_json(state, got, nested=flag(query, "nested")))


def _cancel_order(state: EmulatorState, order_id: str, query: Query) -> Reply:
    state.exchange.request_cancel(order_id)
    return 204, None, {}


def _get_position(state: EmulatorState, key: str, query: Query) -> Reply:
    symbol = key.upper()
    view = state.exchange.position(symbol)
    return ok(position_json(view, state.assets.get(symbol))) if view else not_found("position does not exist")


def _close_position(state: EmulatorState, key: str, query: Query) -> Reply:
    return close_position(state, key.upper(), query)


def list_orders(state: EmulatorState, query: Query) -> Reply:
    """GET /v2/orders: status open|closed|all, limit, direction, nested, symbols, side, after, until."""
    status = param(query, "status") or "open"
    if status not in ("open", "closed", "all"):
        raise invalid(f"invalid status {status!r}", CODE_REQUEST)
    direction = param(query, "direction") or "desc"
    if direction not in ("asc", "desc"):
        raise invalid(f"invalid direction {direction!r}", CODE_REQUEST)
    limit = integer(query, "limit", 50, 500)
    nested = flag(query, "nested")
    symbols = {s.strip().upper() for s in (param(query, "symbols") or "").split(",") if s.strip()}
    side = param(query, "side")
    after, until = timestamp(query, "after"), timestamp(query, "until")
    state.exchange.settle_cancels()

    def wanted(o: ExchangeOrder) -> bool:
        return status == "all" or (o.is_open if status == "open" else not o.is_open)

    chosen = []
    for o in state.exchange.orders():
        if (symbols and o.symbol not in symbols) or (side and o.side.value != side):
            continue
        if (after is not None and o.submitted_at <= after) or (until is not None and o.submitted_at >= until):
            continue
        if nested:
            if o.parent_id is None and (wanted(o) or any(wanted(leg) for leg in state.exchange.legs(o))):
                chosen.append(o)
        elif wanted(o):
            chosen.append(o)
    chosen.sort(key=lambda o: o.seq, reverse=direction == "desc")
    return ok([_json(state, o, nested=nested) for o in chosen[:limit]])


def cancel_all(state: EmulatorState) -> Reply:
    """DELETE /v2/orders: ask to cancel every open order; 207 with one status per order."""
    out = []
    for order in state.exchange.open_orders():
        if order.is_open:
            state.exchange.request_cancel(order.id)
            out.append({"id": order.id, "status": 200, "body": _json(state, order, nested=False)})
    return 207, out, {}


def close_position(state: EmulatorState, symbol: str, query: Query) -> Reply:
    """DELETE /v2/positions/{symbol}: a market order closing all (or `qty`, or `percentage`) of it."""
    view = state.exchange.position(symbol)
    if view is None:
        return not_found("position does not exist")
    qty = abs(view.qty)
    try:
        if (given := param(query, "qty")) is not None:
            qty = Decimal(given)
        elif (pct := param(query, "percentage")) is not None:
            qty = (qty * Decimal(pct) / 100).quantize(QTY_STEP, rounding=ROUND_DOWN)
    except InvalidOperation:
        raise invalid("invalid qty or percentage", CODE_REQUEST) from None
    side = Side.SELL if view.qty > 0 else Side.BUY
    order = state.exchange.submit(OrderSpec(symbol, side, qty=qty, kind=Kind.MARKET, tif=Tif.DAY))
    return ok(_json(state, order, nested=False))


def close_all(state: EmulatorState, cancel_orders: bool) -> Reply:
    """DELETE /v2/positions: close every position (cancelling open orders first when asked); 207."""
    if cancel_orders:
        for order in state.exchange.open_orders():
            if order.is_open:
                state.exchange.cancel(order.id)
    out: list[dict[str, Any]] = []
    for view in state.exchange.positions():
        side = Side.SELL if view.qty > 0 else Side.BUY
        try:
            order = state.exchange.submit(OrderSpec(view.symbol, side, qty=abs(view.qty), kind=Kind.MARKET))
        except Rejection as rejection:
            out.append({"symbol": view.symbol, "status": rejection.status, "body": rejection.body})
            continue
        out.append({"symbol": view.symbol, "status": 200, "body": _json(state, order, nested=False)})
    return 207, out, {}


def _json(state: EmulatorState, order: ExchangeOrder, *, nested: bool) -> dict[str, Any]:
    legs = state.exchange.legs(order) if nested and order.leg_ids else None
    return order_json(order, legs, state.calendar)


_Route = Callable[[EmulatorState, Query, Any], Reply]
_ItemRoute = Callable[[EmulatorState, str, Query], Reply]

_ROUTES: dict[tuple[str, str], _Route] = {
    ("GET", ORDERS): lambda state, query, body: list_orders(state, query),
    ("POST", ORDERS): _submit_order,
    ("DELETE", ORDERS): lambda state, query, body: cancel_all(state),
    ("GET", BY_CLIENT_ID): _order_by_client_id,
    ("GET", POSITIONS): _list_positions,
    ("DELETE", POSITIONS): lambda state, query, body: close_all(state, flag(query, "cancel_orders")),
}
"""(method, path) -> handler of a request to a collection."""

_ITEM_ROUTES: dict[tuple[str, str], _ItemRoute] = {
    ("GET", ORDERS + "/"): _get_order,
    ("DELETE", ORDERS + "/"): _cancel_order,
    ("GET", POSITIONS + "/"): _get_position,
    ("DELETE", POSITIONS + "/"): _close_position,
}
"""(method, path prefix) -> handler of a request to one order (by id) or one position (by symbol)."""
