"""No position without its stop.

After reconciliation every long position at the broker gets an open trade (a position Quorum did not
open is adopted) and a protective stop kept by one of two keepers:
- the broker: open GTC sell stop orders (bracket/OTO legs, or a standalone stop Quorum places now)
  cover the whole position;
- Quorum: the stop price is stored as typed data and checked at every cycle (fractional positions,
  which Alpaca will not protect with a stop order, and any position the broker refused a stop for).
A position whose price is already through its stop is returned for an immediate stop exit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

import structlog

from domain.errors import BrokerError
from domain.events import Event, EventType, Severity
from domain.models.trading import Order, OrderRequest, OrderType, Position, Side, TimeInForce
from domain.ports.broker import Broker
from domain.risk.config import RiskSettings
from domain.risk.sizing import protective_stop_price, to_decimal
from domain.trading_state import OpenTrade, StopKeeper, TradingState

log = structlog.get_logger(__name__)
ClientOrderId = Callable[[str, str], str]


@dataclass
class Protection:
    """The state with every position protected, the events written, the symbols to stop out now."""

    state: TradingState
    events: list[Event] = field(default_factory=list)
    stop_now: list[str] = field(default_factory=list)
    placed: list[Order] = field(default_factory=list)


def default_stop(entry: Decimal, risk: RiskSettings) -> Decimal | None:
    """The default protective stop below `entry` (for adopted positions and entries without one)."""
    return protective_stop_price(entry, to_decimal(risk.default_stop_pct), long=True,
                                 min_pct=to_decimal(risk.min_stop_pct), max_pct=to_decimal(risk.max_stop_pct))


def is_whole(qty: Decimal) -> bool:
    """Whether `qty` is a whole number of shares."""
    return qty == qty.to_integral_value()


def stop_orders(orders: Sequence[Order], symbol: str) -> list[Order]:
    """Open sell stop orders of `symbol` (legs and standalone)."""
    return [o for o in orders if o.symbol == symbol and o.status.is_open and o.request.side is Side.SELL
            and o.request.type is OrderType.STOP]


def sell_orders(orders: Sequence[Order], symbol: str) -> list[Order]:
    """Open sell orders of `symbol` (protective legs, standalone stops, take-profits, exits in flight)."""
    return [o for o in orders if o.symbol == symbol and o.status.is_open and o.request.side is Side.SELL]


def _adopt(p: Position, opened: Mapping[str, datetime], as_of: datetime, lookback: timedelta) -> OpenTrade:
    return OpenTrade(symbol=p.symbol, qty=p.qty, entry_price=p.avg_entry_price,
                     opened_at=opened.get(p.symbol, as_of - lookback), stop_price=None, take_profit_price=None,
                     stop_keeper=StopKeeper.BROKER if is_whole(p.qty) else StopKeeper.QUORUM,
                     entry_client_order_id=f"adopted:{p.symbol}", adopted=True)


async def protect_positions(
    broker: Broker, state: TradingState, *, positions: Sequence[Position], open_orders: Sequence[Order],
    prices: Mapping[str, Decimal], as_of: datetime, cycle_id: str | None, scope: str, risk: RiskSettings,
    client_order_id: ClientOrderId, opened: Mapping[str, datetime], lookback: timedelta,
) -> Protection:
    """Make sure every long position has an open trade and a stop kept by the broker or by Quorum.

    Args:
        positions: the broker's positions now.
        open_orders: the broker's open orders now (legs included).
        prices: the latest price per symbol (a position already through its stop is stopped out now).
        client_order_id: (symbol, purpose) -> deterministic client order id of a protective stop order.
        opened: symbol -> time of the buy fill that opened the position, for positions Quorum adopts.
        lookback: how far back fills were read (an adopted position with no buy fill in it is older).

    Returns:
        The protected state, the events, the symbols to stop out now and the stop orders placed.
    """
    out = Protection(state)
    for p in sorted(positions, key=lambda p: p.symbol):
        if p.qty <= 0:
            continue
        trade = out.state.open_trades.get(p.symbol)
        if trade is None:
            trade = _adopt(p, opened, as_of, lookback)
            out.events.append(Event(EventType.RECONCILIATION_DIFF, as_of, f"{p.symbol}: position of {p.qty} held at "
                                    "the broker without an open trade in Quorum — adopted and protected",
                                    Severity.WARNING, cycle_id, p.symbol, {"kind": "position_adopted"}, scope))
        trade = replace(trade, qty=p.qty)
        await _protect(broker, out, trade, p, open_orders, prices, as_of, cycle_id, scope, risk, client_order_id)
    return out


async def _protect(broker: Broker, out: Protection, trade: OpenTrade, p: Position, open_orders: Sequence[Order],
                   prices: Mapping[str, Decimal], as_of: datetime, cycle_id: str | None, scope: str,
                   risk: RiskSettings, client_order_id: ClientOrderId) -> None:
    stops = stop_orders(open_orders, p.symbol)
    covered = sum((o.request.qty - o.filled_qty for o in stops), Decimal(0))
    legs = tuple(o.broker_order_id for o in sell_orders(open_orders, p.symbol))
    if stops and covered >= p.qty:
        live = max(o.request.stop_price or Decimal(0) for o in stops)
        out.state = out.state.with_trade(replace(trade, stop_keeper=StopKeeper.BROKER, stop_price=live, leg_ids=legs))
        return
    stop_px = trade.stop_price or default_stop(trade.entry_price, risk)
    price = prices.get(p.symbol)
    quorum = replace(trade, stop_keeper=StopKeeper.QUORUM, stop_price=stop_px, leg_ids=legs)
    if stop_px is None:
        out.state = out.state.with_trade(quorum)
        out.stop_now.append(p.symbol)
        return
    if price is not None and price <= stop_px:
        out.state = out.state.with_trade(quorum)
        out.stop_now.append(p.symbol)
        return
    if not is_whole(p.qty) or any(o.request.type is not OrderType.STOP for o in sell_orders(open_orders, p.symbol)):
        out.state = out.state.with_trade(quorum)  # fractional, or an exit order in flight holds the shares
        return
    request = OrderRequest(client_order_id(p.symbol, "protect"), p.symbol, Side.SELL, p.qty - covered, OrderType.STOP,
                           stop_price=stop_px, time_in_force=TimeInForce.GTC,
                           reason="protective stop placed by Quorum (the position had no live stop order)")
    try:
        order = await broker.submit(request)
    except BrokerError as exc:
        if exc.retryable:
            raise
        out.state = out.state.with_trade(quorum)
        log.warning("protective_stop_refused", symbol=p.symbol, error=f"{type(exc).__name__}: {exc}")
        if trade.stop_keeper is StopKeeper.BROKER:
            out.events.append(Event(EventType.ORDER_REJECTED, as_of, f"{p.symbol}: the broker refused a protective "
                                    f"stop at {stop_px} ({exc}); Quorum keeps the stop itself and checks it every "
                                    "cycle", Severity.WARNING, cycle_id, p.symbol,
                                    {"kind": "protective_stop", "error": type(exc).__name__}, scope))
        return
    out.placed.append(order)
    out.state = out.state.with_trade(replace(trade, stop_keeper=StopKeeper.BROKER, stop_price=stop_px,
                                             leg_ids=(*legs, order.broker_order_id)))
    out.events.append(Event(EventType.ORDER_SUBMITTED, as_of, f"protective GTC stop for {request.qty} {p.symbol} at "
                            f"{stop_px} (no live stop order covered the position)", Severity.WARNING, cycle_id,
                            p.symbol, {"kind": "protective_stop", "client_order_id": request.client_order_id,
                                       "broker_order_id": order.broker_order_id, "stop_price": str(stop_px),
                                       "qty": str(request.qty)}, scope))
