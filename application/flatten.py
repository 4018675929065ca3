"""The kill switch: cancel every open order, close every position, pause trading, tell the user.

Trading is paused first (in a transaction of its own, so no cycle starts an entry while the rest runs);
then, under the trading lock when it can be had within `lock_wait_seconds` (a stuck cycle must not
block a kill switch: it goes ahead without the lock and says so), every open order is cancelled and a
market sell is sent for every long position. When the market is closed the sells wait for the next
open, and the result says so plainly. Each position keeps a Quorum-kept stop until it is sold.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import structlog

from application.control import set_paused
from domain.errors import BrokerError, NotFoundError, OrderRejectedError
from domain.ids import short_hash
from domain.models.trading import Order, OrderRequest, Side, TimeInForce
from domain.ports.broker import Broker
from domain.ports.clock import MarketCalendar
from domain.ports.repositories import OrderRecord
from domain.ports.uow import UnitOfWorkFactory
from domain.system_events import kill_switch
from domain.trading_state import StopKeeper

log = structlog.get_logger(__name__)


@dataclass
class FlattenResult:
    """What the kill switch did."""

    at: datetime
    market_open: bool
    cancelled: list[str] = field(default_factory=list)
    sells: list[Order] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    locked: bool = True

    @property
    def message(self) -> str:
        """One plain sentence for the CLI, the API and the alert."""
        when = "at market" if self.market_open else "queued for the next market open (the market is closed now)"
        text = (f"kill switch: trading paused, {len(self.cancelled)} open orders cancelled, {len(self.sells)} "
                f"positions sent to close {when}")
        if self.failed:
            text += f"; {len(self.failed)} problems: " + "; ".join(self.failed)
        if not self.locked:
            text += "; a cycle held the trading lock, went ahead without it"
        return text


def _event_payload(result: FlattenResult, by: str, reason: str) -> dict[str, Any]:
    """The KILL_SWITCH event's payload (free-form JSON of the event log): what was done, by whom and why."""
    return {"at": result.at.isoformat(), "market_open": result.market_open, "cancelled": result.cancelled,
            "sells": [{"symbol": o.symbol, "qty": str(o.request.qty), "client_order_id": o.client_order_id,
                       "status": o.status.value} for o in result.sells],
            "failed": result.failed, "locked": result.locked, "message": result.message, "by": by, "reason": reason}


async def flatten(uow_factory: UnitOfWorkFactory, broker: Broker, calendar: MarketCalendar, *, scope: str,
                  as_of: datetime, by: str, reason: str = "", lock_wait_seconds: float = 30.0) -> FlattenResult:
    """Pull the kill switch (see the module docstring).

    Args:
        by: who asked (written to the event log).
        reason: why, in their words.

    Returns:
        What was cancelled and sent, and what failed (each failure with the broker's reason).
    """
    await set_paused(uow_factory, scope, paused=True, by=by, reason=f"kill switch{': ' + reason if reason else ''}",
                     as_of=as_of)
    result = FlattenResult(as_of, calendar.is_open(as_of))
    async with uow_factory() as uow:
        result.locked = await uow.lock_cycles(scope, wait_seconds=lock_wait_seconds)
        for order in await broker.open_orders():
            try:
                await broker.cancel(order.broker_order_id)
                result.cancelled.append(order.broker_order_id)
            except (OrderRejectedError, NotFoundError):
                continue  # already filled, or cancelled with its bracket sibling
            except BrokerError as exc:
                result.failed.append(f"cancel {order.symbol} {order.broker_order_id}: {exc}")
        state = await uow.trading.load(scope)
        for p in sorted(await broker.positions(), key=lambda p: p.symbol):
            if p.qty <= 0:
                continue
            cid = "q-" + short_hash(f"{scope}|flatten|{as_of.isoformat()}|{p.symbol}", 24)
            req = OrderRequest(cid, p.symbol, Side.SELL, p.qty, time_in_force=TimeInForce.DAY,
                               fractional=p.qty != p.qty.to_integral_value(), reason=f"kill switch by {by}")
            try:
                order = await broker.submit(req)
            except BrokerError as exc:
                result.failed.append(f"sell {p.qty} {p.symbol}: {exc}")
                continue
            result.sells.append(order)
            await uow.orders.upsert(OrderRecord(order, scope, None))
            trade = state.open_trades.get(p.symbol)
            if trade is not None:
                state = state.with_trade(replace(trade, stop_keeper=StopKeeper.QUORUM, leg_ids=()))
        await uow.trading.save(scope, state, at=as_of)
        await uow.events.add([kill_switch(at=as_of, scope=scope, summary=result.message, by=by, reason=reason,
                                          payload=_event_payload(result, by, reason))])
        await uow.commit()
    log.warning("kill_switch", by=by, cancelled=len(result.cancelled), sells=len(result.sells),
                failed=len(result.failed), market_open=result.market_open)
    return result
