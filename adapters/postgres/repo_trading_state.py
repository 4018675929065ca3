"""Quorum's typed trading state on PostgreSQL: tables `trading_state`, `open_trades`, `pending_entries`,
`reentry_cooldowns` (migration 0006).

Quantities must fit NUMERIC(20, 9) exactly; entry prices are rounded half-even to 9 decimals, stop and
take-profit prices to 4, equity to 4; times come back in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.tables import open_trades, pending_entries, reentry_cooldowns, trading_state
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


class PgTradingStateRepository(TradingStateRepository):
    """Implements `TradingStateRepository` on four tables.

    One `trading_state` row per scope holds the fill cursor, the day start and the pause switch; open trades,
    pending entries and cooldowns reference it with ON DELETE CASCADE. `save` deletes the scope's row (and so
    everything hanging off it) and inserts the new rows, in the caller's transaction: concurrent saves of one
    scope must be serialised by the caller (`UnitOfWork.lock_cycles`). A pending entry's client order id is a
    primary key: it belongs to one scope.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def load(self, scope: str) -> TradingState:
        """The stored state of `scope`, or an empty one (one query when nothing is stored, four otherwise)."""
        head = (await self._session.execute(select(trading_state).where(trading_state.c.scope == scope))
                ).mappings().first()
        if head is None:
            return TradingState()
        t, p, c = open_trades, pending_entries, reentry_cooldowns
        trades = await self._session.execute(select(t).where(t.c.scope == scope).order_by(t.c.symbol.collate("C")))
        pending = await self._session.execute(
            select(p).where(p.c.scope == scope).order_by(p.c.submitted_at, p.c.client_order_id.collate("C")))
        cooling = await self._session.execute(select(c).where(c.c.scope == scope).order_by(c.c.symbol.collate("C")))
        return TradingState(
            open_trades={row["symbol"]: _trade(row) for row in trades.mappings()},
            pending_entries={row["client_order_id"]: _pending(row) for row in pending.mappings()},
            fill_cursor=None if head["fill_since"] is None else FillCursor(head["fill_since"],
                                                                           tuple(head["fill_seen"])),
            day_start=None if head["day"] is None else DayStart(head["day"], head["day_equity"], head["day_source"]),
            control=ControlState(head["paused"], head["paused_by"], head["pause_reason"], head["control_at"]),
            cooldowns={row["symbol"]: row["until"] for row in cooling.mappings()},
        )

    async def save(self, scope: str, state: TradingState, *, at: datetime) -> None:
        """Replace the stored state of `scope` with `state`.

        Raises:
            ValueError: a mapping key differs from its value's symbol or client order id, a value does not fit
                its column, a datetime is naive, or a pending entry's client order id belongs to another scope.
            TypeError: a money or quantity value is a float.
        """
        head = _state_row(scope, state, utc(at, what="at"))
        trades = [_trade_row(scope, key, trade) for key, trade in state.open_trades.items()]
        pending = [_pending_row(scope, key, entry) for key, entry in state.pending_entries.items()]
        cooling = [{"scope": scope, "symbol": s, "until": utc(u, what=f"cooldown of {s}")}
                   for s, u in state.cooldowns.items()]
        if pending:
            p = pending_entries
            taken = (await self._session.execute(select(p.c.client_order_id).where(
                p.c.client_order_id.in_([row["client_order_id"] for row in pending]), p.c.scope != scope).limit(1)
            )).scalar_one_or_none()
            if taken is not None:
                raise ValueError(f"pending entry {taken!r} belongs to another scope")
        kept = {k: v for k, v in head.items() if k not in _CONTROL_COLUMNS and k != "scope"}
        await self._session.execute(pg_insert(trading_state).values(head).on_conflict_do_update(
            index_elements=[trading_state.c.scope], set_=kept))
        for table in (open_trades, pending_entries, reentry_cooldowns):
            await self._session.execute(delete(table).where(table.c.scope == scope))
        for table, rows in ((open_trades, trades), (pending_entries, pending), (reentry_cooldowns, cooling)):
            if rows:
                await self._session.execute(insert(table), rows)


    async def set_control(self, scope: str, control: ControlState, *, at: datetime) -> None:
        """Store the pause switch of `scope` and nothing else (an upsert of its `trading_state` row)."""
        row = {"paused": control.paused, "paused_by": control.by, "pause_reason": control.reason,
               "control_at": utc_or_none(control.at, what="control at"), "updated_at": utc(at, what="at")}
        await self._session.execute(pg_insert(trading_state).values(scope=scope, **row).on_conflict_do_update(
            index_elements=[trading_state.c.scope], set_=row))


_CONTROL_COLUMNS = frozenset({"paused", "paused_by", "pause_reason", "control_at"})


def _state_row(scope: str, state: TradingState, at: datetime) -> dict[str, Any]:
    cursor, day, control = state.fill_cursor, state.day_start, state.control
    return {
        "scope": scope,
        "fill_since": None if cursor is None else utc(cursor.since, what="fill cursor since"),
        "fill_seen": [] if cursor is None else list(cursor.seen),
        "day": None if day is None else day.day,
        "day_equity": None if day is None else decimal(day.equity, CASH_SCALE, what="day start equity"),
        "day_source": None if day is None else day.source,
        "paused": control.paused,
        "paused_by": control.by,
        "pause_reason": control.reason,
        "control_at": utc_or_none(control.at, what="control at"),
        "updated_at": at,
    }


def _trade_row(scope: str, key: str, t: OpenTrade) -> dict[str, Any]:
    if key != t.symbol:
        raise ValueError(f"open trade of {t.symbol!r} stored under {key!r}")
    return {
        "scope": scope,
        "symbol": t.symbol,
        "qty": decimal(t.qty, QTY_SCALE, what="open trade qty", exact=True),
        "entry_price": decimal(t.entry_price, EXEC_PRICE_SCALE, what="entry price"),
        "opened_at": utc(t.opened_at, what="opened_at"),
        "stop_price": decimal_or_none(t.stop_price, PRICE_SCALE, what="stop price"),
        "take_profit_price": decimal_or_none(t.take_profit_price, PRICE_SCALE, what="take-profit price"),
        "stop_keeper": StopKeeper(t.stop_keeper).value,
        "entry_client_order_id": t.entry_client_order_id,
        "entry_broker_order_id": t.entry_broker_order_id,
        "leg_ids": list(t.leg_ids),
        "memory_id": t.memory_id,
        "cycle_id": t.cycle_id,
        "adopted": t.adopted,
    }


def _pending_row(scope: str, key: str, e: PendingEntry) -> dict[str, Any]:
    if key != e.client_order_id:
        raise ValueError(f"pending entry {e.client_order_id!r} stored under {key!r}")
    return {
        "client_order_id": e.client_order_id,
        "scope": scope,
        "symbol": e.symbol,
        "qty": decimal(e.qty, QTY_SCALE, what="pending entry qty", exact=True),
        "stop_price": decimal_or_none(e.stop_price, PRICE_SCALE, what="stop price"),
        "take_profit_price": decimal_or_none(e.take_profit_price, PRICE_SCALE, what="take-profit price"),
        "fractional": e.fractional,
        "submitted_at": utc(e.submitted_at, what="submitted_at"),
        "cycle_id": e.cycle_id,
        "broker_order_id": e.broker_order_id,
        "setup": e.setup,
        "reasoning": e.reasoning,
    }


def _trade(row: Any) -> OpenTrade:
    return OpenTrade(
        symbol=row["symbol"],
        qty=row["qty"],
        entry_price=row["entry_price"],
        opened_at=row["opened_at"],
        stop_price=row["stop_price"],
        take_profit_price=row["take_profit_price"],
        stop_keeper=StopKeeper(row["stop_keeper"]),
        entry_client_order_id=row["entry_client_order_id"],
        entry_broker_order_id=row["entry_broker_order_id"],
        leg_ids=tuple(row["leg_ids"]),
        memory_id=row["memory_id"],
        cycle_id=row["cycle_id"],
        adopted=row["adopted"],
    )


def _pending(row: Any) -> PendingEntry:
    return PendingEntry(
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        qty=row["qty"],
        stop_price=row["stop_price"],
        take_profit_price=row["take_profit_price"],
        fractional=row["fractional"],
        submitted_at=row["submitted_at"],
        cycle_id=row["cycle_id"],
        broker_order_id=row["broker_order_id"],
        setup=row["setup"],
        reasoning=row["reasoning"],
    )
