"""Quorum's own trading state between cycles, as typed data.

The broker knows positions, orders and fills; it does not know why Quorum holds a position, where its
stop is when Quorum keeps that stop itself, when the position was opened, which fills Quorum has already
booked, what the account was worth when the day started, or that the operator paused trading. That is
this state. It is loaded once per cycle, changed by pure functions, and saved in the cycle's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum


class StopKeeper(StrEnum):
    """Who enforces a position's protective stop."""

    BROKER = "broker"
    """A live GTC stop order at the broker (a bracket/OTO leg or a standalone stop Quorum placed)."""
    QUORUM = "quorum"
    """Quorum compares the price with the stop at every cycle and sells (fractional positions: Alpaca
    accepts no stop legs on fractional orders)."""


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """An entry order sent to the broker and not (completely) filled yet, with the protection it asked for.

    It becomes an `OpenTrade` when its fill is booked, in whichever cycle that happens, so a fill that
    arrives late still gets its stop.
    """

    client_order_id: str
    symbol: str
    qty: Decimal
    stop_price: Decimal | None
    take_profit_price: Decimal | None
    fractional: bool
    submitted_at: datetime
    cycle_id: str | None = None
    broker_order_id: str | None = None
    setup: str = ""
    reasoning: str = ""


@dataclass(frozen=True, slots=True)
class OpenTrade:
    """A position Quorum opened (or adopted from the broker) and how it is protected.

    Attributes:
        qty: shares held as Quorum booked them.
        entry_price: average entry price.
        opened_at: time of the first entry fill (decides whether closing it today is a day trade).
        stop_price: the protective stop; None only while no stop could be set (an invariant violation).
        take_profit_price: the take-profit level, if any.
        stop_keeper: who enforces the stop.
        entry_client_order_id: the entry order's client order id.
        entry_broker_order_id: the entry order's broker order id, when known.
        leg_ids: broker order ids of the open protective orders (stop leg, take-profit leg, standalone stop).
        memory_id: the trade memory record of the entry, once stored.
        cycle_id: the cycle that decided the entry.
        adopted: True when the position was found at the broker without a Quorum entry (a restart on a
            fresh database, a manual trade).
    """

    symbol: str
    qty: Decimal
    entry_price: Decimal
    opened_at: datetime
    stop_price: Decimal | None
    take_profit_price: Decimal | None
    stop_keeper: StopKeeper
    entry_client_order_id: str
    entry_broker_order_id: str | None = None
    leg_ids: tuple[str, ...] = ()
    memory_id: int | None = None
    cycle_id: str | None = None
    adopted: bool = False


@dataclass(frozen=True, slots=True)
class FillCursor:
    """How far fills have been booked: every fill before `since`, and the fills at `since` listed in `seen`."""

    since: datetime
    seen: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DayStart:
    """The equity a trading day is measured from: the previous session's closing equity when the broker
    reports it (`source` "previous_close"), else the first equity seen that day ("first_cycle")."""

    day: date
    equity: Decimal
    source: str = "previous_close"


@dataclass(frozen=True, slots=True)
class ControlState:
    """The operator's pause switch. While paused no entry and no agent exit is made; stops still run."""

    paused: bool = False
    by: str = ""
    reason: str = ""
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TradingState:
    """Everything above for one scope.

    Attributes:
        open_trades: by symbol.
        pending_entries: by client order id.
        fill_cursor: None before the first fill sync.
        day_start: None before the first cycle.
        control: the pause switch.
        cooldowns: symbol -> the earliest time a new entry may be made (set after a stop exit).
    """

    open_trades: Mapping[str, OpenTrade] = field(default_factory=dict)
    pending_entries: Mapping[str, PendingEntry] = field(default_factory=dict)
    fill_cursor: FillCursor | None = None
    day_start: DayStart | None = None
    control: ControlState = ControlState()
    cooldowns: Mapping[str, datetime] = field(default_factory=dict)

    def with_trade(self, trade: OpenTrade) -> TradingState:
        """This state with `trade` stored under its symbol (replacing any earlier one)."""
        return replace(self, open_trades={**self.open_trades, trade.symbol: trade})

    def without_trade(self, symbol: str) -> TradingState:
        """This state without an open trade in `symbol`."""
        return replace(self, open_trades={s: t for s, t in self.open_trades.items() if s != symbol})

    def with_pending(self, entry: PendingEntry) -> TradingState:
        """This state with `entry` awaiting its fill."""
        return replace(self, pending_entries={**self.pending_entries, entry.client_order_id: entry})

    def without_pending(self, client_order_id: str) -> TradingState:
        """This state without the pending entry `client_order_id`."""
        return replace(self, pending_entries={c: e for c, e in self.pending_entries.items()
                                              if c != client_order_id})

    def stops(self) -> dict[str, Decimal]:
        """symbol -> stop price of every open trade that has one."""
        return {s: t.stop_price for s, t in self.open_trades.items() if t.stop_price is not None}

    def cooling_down(self, as_of: datetime) -> dict[str, datetime]:
        """Cooldowns still running at `as_of`."""
        return {s: until for s, until in self.cooldowns.items() if until > as_of}
