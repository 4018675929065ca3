"""Quorum's typed trading state in memory, with the semantics of the PostgreSQL repository.

Values are stored as the PostgreSQL columns hold them: quantities exact to 9 decimals, entry prices to 9,
stop and take-profit prices to 4, equity to 4 (half-even), times in UTC. A pending entry's client order id
belongs to one scope (it is the primary key of `pending_entries`). Every save records its undo in the journal.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from adapters.inmemory.journal import MISSING, Journal, restore
from domain.ports.repositories import TradingStateRepository
from domain.storage import (
    CASH_SCALE,
    EXEC_PRICE_SCALE,
    PRICE_SCALE,
    QTY_SCALE,
    decimal,
    decimal_or_none,
    utc,
    utc_or_none,
)
from domain.trading_state import (
    ControlState,
    DayStart,
    FillCursor,
    OpenTrade,
    PendingEntry,
    StopKeeper,
    TradingState,
)


class InMemoryTradingStateRepository(TradingStateRepository):
    """Implements `TradingStateRepository` in memory; `save` replaces the state of a scope but its pause switch,
    which only `set_control` changes."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._states: dict[str, TradingState] = {}

    async def load(self, scope: str) -> TradingState:
        """The stored state of `scope`, or an empty one."""
        state = self._states.get(scope)
        if state is None:
            return TradingState()
        return replace(state, open_trades=dict(state.open_trades), pending_entries=dict(state.pending_entries),
                       cooldowns=dict(state.cooldowns))

    async def save(self, scope: str, state: TradingState, *, at: datetime) -> None:
        """Replace the stored state of `scope` with `state`.

        Raises:
            ValueError: a mapping key differs from its value's symbol or client order id, a value does not fit
                its column, a datetime is naive, or a pending entry's client order id belongs to another scope.
            TypeError: a money or quantity value is a float.
        """
        utc(at, what="at")
        new = normalised_state(state)
        for other_scope, other in self._states.items():
            taken = set(other.pending_entries) & set(new.pending_entries) if other_scope != scope else set()
            if taken:
                raise ValueError(f"pending entry {sorted(taken)[0]!r} belongs to another scope")
        old = self._states.get(scope, MISSING)
        if isinstance(old, TradingState):
            new = replace(new, control=old.control)
        self._states[scope] = new
        self._journal.record(lambda: restore(self._states, scope, old))

    async def set_control(self, scope: str, control: ControlState, *, at: datetime) -> None:
        """Store the pause switch of `scope` and nothing else."""
        utc(at, what="at")
        fresh = ControlState(control.paused, control.by, control.reason, utc_or_none(control.at, what="control at"))
        old = self._states.get(scope, MISSING)
        base = old if isinstance(old, TradingState) else TradingState()
        self._states[scope] = replace(base, control=fresh)
        self._journal.record(lambda: restore(self._states, scope, old))


def normalised_state(state: TradingState) -> TradingState:
    """`state` as PostgreSQL would give it back (see the module docstring)."""
    for symbol, trade in state.open_trades.items():
        if symbol != trade.symbol:
            raise ValueError(f"open trade of {trade.symbol!r} stored under {symbol!r}")
    for key, entry in state.pending_entries.items():
        if key != entry.client_order_id:
            raise ValueError(f"pending entry {entry.client_order_id!r} stored under {key!r}")
    cursor = state.fill_cursor
    day = state.day_start
    control = state.control
    return TradingState(
        open_trades={s: _trade(t) for s, t in state.open_trades.items()},
        pending_entries={c: _pending(e) for c, e in state.pending_entries.items()},
        fill_cursor=None if cursor is None else FillCursor(utc(cursor.since, what="fill cursor since"),
                                                           tuple(cursor.seen)),
        day_start=None if day is None else DayStart(day.day, decimal(day.equity, CASH_SCALE, what="day start equity"),
                                                    day.source),
        control=ControlState(control.paused, control.by, control.reason,
                             utc_or_none(control.at, what="control at")),
        cooldowns={s: utc(until, what=f"cooldown of {s}") for s, until in state.cooldowns.items()},
    )


def _trade(t: OpenTrade) -> OpenTrade:
    return replace(
        t,
        qty=decimal(t.qty, QTY_SCALE, what="open trade qty", exact=True),
        entry_price=decimal(t.entry_price, EXEC_PRICE_SCALE, what="entry price"),
        opened_at=utc(t.opened_at, what="opened_at"),
        stop_price=decimal_or_none(t.stop_price, PRICE_SCALE, what="stop price"),
        take_profit_price=decimal_or_none(t.take_profit_price, PRICE_SCALE, what="take-profit price"),
        stop_keeper=StopKeeper(t.stop_keeper),
        leg_ids=tuple(t.leg_ids),
    )


def _pending(e: PendingEntry) -> PendingEntry:
    return replace(
        e,
        qty=decimal(e.qty, QTY_SCALE, what="pending entry qty", exact=True),
        stop_price=decimal_or_none(e.stop_price, PRICE_SCALE, what="stop price"),
        take_profit_price=decimal_or_none(e.take_profit_price, PRICE_SCALE, what="take-profit price"),
        submitted_at=utc(e.submitted_at, what="submitted_at"),
    )
