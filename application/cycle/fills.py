"""Booking the broker's fills into Quorum's trading state, exactly once, whichever cycle sees them.

A buy fill turns its pending entry (with the stop it asked for) into an open trade, however late it
arrives; a buy Quorum never sent is adopted. A sell fill closes the open trade: the closed trade is
returned once, for the circuit breaker, whoever closed it (an agent exit, Quorum's stop, the broker's
stop or take-profit leg). The fill cursor (`FillCursor`) is saved with the state in the same
transaction, so a fill is never booked twice and never skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

import structlog

from domain.alerts import large_position_change_event
from domain.event_factories import fill_adopted, order_filled, stop_triggered
from domain.events import Event
from domain.memory import MemoryKind, MemoryRecord
from domain.models.trading import Fill, Side
from domain.ports.broker import Broker
from domain.ports.repositories import FillRecord
from domain.ports.uow import UnitOfWork
from domain.shadow import closed_return
from domain.trading_state import FillCursor, OpenTrade, PendingEntry, StopKeeper, TradingState

log = structlog.get_logger(__name__)
FIRST_SYNC_LOOKBACK = timedelta(days=10)
"""How far back the first fill sync of a fresh database reads: enough for the 5-session PDT window."""


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A round trip that ended: what the breaker, the trade memory and the reports count."""

    symbol: str
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    return_pct: float
    closed_at: datetime
    exit_reason: str
    client_order_id: str

    @property
    def by_stop(self) -> bool:
        """Whether a protective stop (the broker's or Quorum's) closed it."""
        return self.exit_reason == "stop"


@dataclass(frozen=True)
class Booking:
    """What booking the new fills did."""

    state: TradingState
    fills: tuple[Fill, ...] = ()
    closed: tuple[ClosedTrade, ...] = ()
    events: tuple[Event, ...] = ()


def fill_key(f: Fill) -> str:
    """Identity of a fill: order, time, quantity and price."""
    return f"{f.client_order_id}|{f.at.isoformat()}|{f.qty}|{f.price}"


def exit_reason(f: Fill) -> str:
    """"stop", "take profit" or "exit", from the fill's reason as the broker adapter or Quorum wrote it."""
    text = f.reason.lower()
    if "stop" in text:
        return "stop"
    if "take profit" in text or "take-profit" in text:
        return "take profit"
    return "exit"


async def book_fills(uow: UnitOfWork, broker: Broker, state: TradingState, *, as_of: datetime, cycle_id: str | None,
                     scope: str, equity: Decimal, large_change_pct: float,
                     cooldown: timedelta = timedelta(0)) -> Booking:
    """Read the broker's fills since the cursor and book the new ones.

    Args:
        state: the trading state loaded for this cycle.
        equity: account equity, for the large-position-change events.
        cooldown: how long a symbol may not be entered again after a stop closed it.

    Returns:
        The new state (cursor moved), the new fills, the trades they closed and the events to log.
    """
    cursor = state.fill_cursor
    since = cursor.since if cursor else as_of - FIRST_SYNC_LOOKBACK
    seen = set(cursor.seen) if cursor else set()
    fetched = await broker.fills_since(since)
    new = sorted((f for f in fetched if f.at >= since and fill_key(f) not in seen), key=lambda f: f.at)
    if not new:
        return Booking(state)
    await uow.fills.add([FillRecord(f, scope, cycle_id) for f in new])
    book = _Book(state, scope, cycle_id, cooldown)
    for f in new:
        book.apply(f)
        large = large_position_change_event(symbol=f.symbol, side=f.side.value, qty=f.qty, price=f.price,
                                            equity=equity, at=f.at, scope=scope, threshold_pct=large_change_pct,
                                            cycle_id=cycle_id)
        if large is not None:
            book.events.append(large)
        book.events.append(order_filled(fill=f, scope=scope, cycle_id=cycle_id))
    await book.store_memories(uow)
    last = new[-1].at
    keys = tuple(sorted(fill_key(f) for f in fetched if f.at == last))
    state = replace(book.state, fill_cursor=FillCursor(last, keys))
    return Booking(state, tuple(new), tuple(book.closed), tuple(book.events))


class _Book:
    """Applies fills to the state one by one and collects memories, outcomes, closed trades and events."""

    def __init__(self, state: TradingState, scope: str, cycle_id: str | None, cooldown: timedelta) -> None:
        self.state, self.scope, self.cycle_id, self.cooldown = state, scope, cycle_id, cooldown
        self.closed: list[ClosedTrade] = []
        self.events: list[Event] = []
        self.entry_memories: list[MemoryRecord] = []
        self.exit_memories: list[MemoryRecord] = []
        self.outcomes: list[tuple[int, str, float, datetime]] = []
        self.unstored_outcomes: dict[str, tuple[str, float, datetime]] = {}

    def apply(self, f: Fill) -> None:
        """Book one fill."""
        if f.side is Side.BUY:
            self._buy(f)
        else:
            self._sell(f)

    def _buy(self, f: Fill) -> None:
        pending = self.state.pending_entries.get(f.client_order_id)
        trade = self.state.open_trades.get(f.symbol)
        if trade is None:
            trade = _new_trade(f, pending, self.cycle_id)
            text = f"BUY {f.symbol} at {f.price}: {pending.setup if pending else ''}. Reasoning: " + (
                pending.reasoning if pending and pending.reasoning else f.reason or "position adopted from the broker")
            self.entry_memories.append(MemoryRecord(
                MemoryKind.TRADE, text, f.at, symbol=f.symbol, action="BUY", scope=self.scope,
                metadata={"cycle_id": trade.cycle_id, "client_order_id": f.client_order_id}))
            if pending is None:
                self.events.append(fill_adopted(fill=f, scope=self.scope, cycle_id=self.cycle_id))
        else:
            qty = trade.qty + f.qty
            avg = (trade.entry_price * trade.qty + f.price * f.qty) / qty
            trade = replace(trade, qty=qty, entry_price=avg,
                            stop_price=pending.stop_price if pending and pending.stop_price else trade.stop_price)
        self.state = self.state.with_trade(trade)
        if pending is not None:
            left = pending.qty - f.qty
            self.state = (self.state.with_pending(replace(pending, qty=left)) if left > 0
                          else self.state.without_pending(pending.client_order_id))

    def _sell(self, f: Fill) -> None:
        trade = self.state.open_trades.get(f.symbol)
        reason = exit_reason(f)
        if reason == "stop":
            self.events.append(stop_triggered(fill=f, scope=self.scope, cycle_id=self.cycle_id))
            if self.cooldown > timedelta(0):
                self.state = replace(self.state, cooldowns={**self.state.cooldowns, f.symbol: f.at + self.cooldown})
        if trade is None:
            log.warning("sell_fill_without_open_trade", symbol=f.symbol, client_order_id=f.client_order_id)
            self.exit_memories.append(MemoryRecord(MemoryKind.TRADE, f"SELL {f.symbol} at {f.price}. Reasoning: "
                                                   f"{f.reason or 'unknown'}", f.at, symbol=f.symbol, action="SELL",
                                                   scope=self.scope, metadata={"cycle_id": self.cycle_id,
                                                                               "client_order_id": f.client_order_id}))
            return
        left = trade.qty - f.qty
        if left > 0:
            self.state = self.state.with_trade(replace(trade, qty=left))
            return
        ret = closed_return(trade.entry_price, f)
        outcome = "WIN" if ret > 0 else ("LOSS" if ret < 0 else "FLAT")
        self.closed.append(ClosedTrade(f.symbol, trade.qty, trade.entry_price, f.price, ret, f.at, reason,
                                       f.client_order_id))
        self.exit_memories.append(MemoryRecord(
            MemoryKind.TRADE, f"SELL {f.symbol} at {f.price}. Reasoning: {f.reason or reason}. Outcome: {outcome} "
            f"{ret:+.2%}", f.at, symbol=f.symbol, action="SELL", outcome=outcome, return_pct=ret, outcome_at=f.at,
            scope=self.scope, metadata={"cycle_id": self.cycle_id, "client_order_id": f.client_order_id}))
        if trade.memory_id is not None:
            self.outcomes.append((trade.memory_id, outcome, ret, f.at))
        else:
            self.unstored_outcomes[trade.entry_client_order_id] = (outcome, ret, f.at)
        self.state = self.state.without_trade(f.symbol)

    async def store_memories(self, uow: UnitOfWork) -> None:
        """Store the trade memories of the booked fills and attach outcomes to the entries they close."""
        stored = await uow.trade_memory.store(self.entry_memories)
        for rec in stored:
            cid = str(rec.metadata.get("client_order_id"))
            trade = self.state.open_trades.get(rec.symbol or "")
            if cid in self.unstored_outcomes and rec.id is not None:
                outcome, ret, at = self.unstored_outcomes.pop(cid)
                self.outcomes.append((rec.id, outcome, ret, at))
            elif trade is not None and cid == trade.entry_client_order_id:
                self.state = self.state.with_trade(replace(trade, memory_id=rec.id))
        await uow.trade_memory.store(self.exit_memories)
        for memory_id, outcome, ret, at in self.outcomes:
            await uow.trade_memory.record_outcome(memory_id, outcome=outcome, return_pct=ret, outcome_at=at)


def _new_trade(f: Fill, pending: PendingEntry | None, cycle_id: str | None) -> OpenTrade:
    fractional = pending.fractional if pending else f.qty != f.qty.to_integral_value()
    return OpenTrade(
        symbol=f.symbol, qty=f.qty, entry_price=f.price, opened_at=f.at,
        stop_price=pending.stop_price if pending else None,
        take_profit_price=pending.take_profit_price if pending else None,
        stop_keeper=StopKeeper.QUORUM if fractional else StopKeeper.BROKER,
        entry_client_order_id=f.client_order_id,
        entry_broker_order_id=pending.broker_order_id if pending else None,
        cycle_id=pending.cycle_id if pending else cycle_id,
        adopted=pending is None,
    )
