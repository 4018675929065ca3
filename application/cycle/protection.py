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

from application.cycle.fills import FIRST_SYNC_LOOKBACK
from application.cycle.ids import client_order_id_for
from domain.errors import BrokerError
from domain.event_factories import position_adopted, protective_stop_placed, protective_stop_refused
from domain.events import Event
from domain.models.trading import Order, OrderRequest, OrderType, Position, Side, TimeInForce
from domain.ports.broker import Broker
from domain.ports.repositories import OrderRecord
from domain.ports.uow import UnitOfWork
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


async def protect(uow: UnitOfWork, broker: Broker, state: TradingState, *, positions: Sequence[Position],
                  open_orders: Sequence[Order], prices: Mapping[str, Decimal], as_of: datetime, cycle_id: str | None,
                  scope: str, risk: RiskSettings) -> Protection:
    """`protect_positions` as a cycle or a reconciliation runs it: a position Quorum adopts opened with its last
    buy fill in the database (if in the first-sync window), protective stops get deterministic client order ids
    (per cycle, or per reconciliation time), and the stop orders placed are recorded."""
    opened: dict[str, datetime] = {}
    for r in await uow.fills.list(scope, since=as_of - FIRST_SYNC_LOOKBACK):
        if r.fill.side is Side.BUY:
            opened[r.fill.symbol] = r.fill.at
    key = cycle_id or f"reconcile|{as_of.isoformat()}"
    prot = await protect_positions(
        broker, state, positions=positions, open_orders=open_orders, prices=prices, as_of=as_of, cycle_id=cycle_id,
        scope=scope, risk=risk, opened=opened, lookback=FIRST_SYNC_LOOKBACK,
        client_order_id=lambda symbol, purpose: client_order_id_for(key, symbol, purpose))
    for order in prot.placed:
        await uow.orders.upsert(OrderRecord(order, scope, cycle_id))
    return prot


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
            out.events.append(position_adopted(at=as_of, scope=scope, cycle_id=cycle_id, symbol=p.symbol, qty=p.qty))
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
            out.events.append(protective_stop_refused(at=as_of, scope=scope, cycle_id=cycle_id, symbol=p.symbol,
                                                      stop_price=stop_px, error=exc))
        return
    out.placed.append(order)
    out.state = out.state.with_trade(replace(trade, stop_keeper=StopKeeper.BROKER, stop_price=stop_px,
                                             leg_ids=(*legs, order.broker_order_id)))
    out.events.append(protective_stop_placed(at=as_of, scope=scope, cycle_id=cycle_id, request=request,
                                             broker_order_id=order.broker_order_id))
