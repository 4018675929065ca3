"""Orders, fills, positions and equity on PostgreSQL.

Quantities must fit NUMERIC(20, 9) exactly (a share count is never rounded); prices and cash
amounts are rounded half-even to their column's scale. Time ranges are half-open: since <= at < until.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.tables import (
    equity_points,
    fills,
    orders,
)
from adapters.postgres.tables import positions as positions_table
from domain.models.trading import Fill, Order, OrderRequest, OrderStatus, OrderType, Position, Side, TimeInForce
from domain.ports.repositories import (
    EquityPoint,
    EquityRepository,
    FillRecord,
    FillRepository,
    OrderRecord,
    OrderRepository,
    PositionRepository,
)
from domain.storage import (
    CASH_SCALE,
    EXEC_PRICE_SCALE,
    PRICE_SCALE,
    QTY_SCALE,
    check_limit,
    decimal,
    decimal_or_none,
    utc,
    utc_or_none,
)


def _time_range(column: Any, since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if (s := utc_or_none(since, what="since")) is not None:
        where.append(column >= s)
    if (u := utc_or_none(until, what="until")) is not None:
        where.append(column < u)
    return where



class PgOrderRepository(OrderRepository):
    """Implements `OrderRepository` on table `orders`.

    A client order id belongs to one scope: upserting it under another scope raises ValueError
    instead of moving the order.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def upsert(self, record: OrderRecord) -> None:
        """Insert or update by client order id."""
        row = _order_row(record)
        ins = pg_insert(orders).values(row)
        stmt = ins.on_conflict_do_update(
            index_elements=[orders.c.client_order_id],
            set_={**{k: ins.excluded[k] for k in row if k != "client_order_id"}, "updated_at": func.now()},
            where=orders.c.scope == ins.excluded.scope,
        ).returning(orders.c.client_order_id)
        if (await self._session.execute(stmt)).first() is None:
            raise ValueError(f"client order id {record.order.client_order_id!r} belongs to another scope")

    async def get(self, client_order_id: str) -> OrderRecord | None:
        """The order with this client order id."""
        stmt = select(orders).where(orders.c.client_order_id == client_order_id)
        row = (await self._session.execute(stmt)).mappings().first()
        return None if row is None else _order_record(row)

    async def list(self, scope: str, *, status: Sequence[OrderStatus] = (), limit: int = 1000) -> list[OrderRecord]:
        """Orders of `scope`, newest submitted first, optionally of some statuses only."""
        check_limit(limit)
        stmt = select(orders).where(orders.c.scope == scope)
        if status:
            stmt = stmt.where(orders.c.status.in_([OrderStatus(s).value for s in status]))
        stmt = stmt.order_by(orders.c.submitted_at.desc(), orders.c.client_order_id.collate("C").desc()).limit(limit)
        return [_order_record(row) for row in (await self._session.execute(stmt)).mappings().all()]


def _order_row(record: OrderRecord) -> dict[str, Any]:
    o, r = record.order, record.order.request
    return {
        "client_order_id": r.client_order_id,
        "scope": record.scope,
        "cycle_id": record.cycle_id,
        "shadow": record.shadow,
        "symbol": r.symbol,
        "side": Side(r.side).value,
        "qty": decimal(r.qty, QTY_SCALE, what="order qty", exact=True),
        "type": OrderType(r.type).value,
        "limit_price": decimal_or_none(r.limit_price, PRICE_SCALE, what="limit price"),
        "stop_price": decimal_or_none(r.stop_price, PRICE_SCALE, what="stop price"),
        "take_profit_price": decimal_or_none(r.take_profit_price, PRICE_SCALE, what="take-profit price"),
        "time_in_force": TimeInForce(r.time_in_force).value,
        "fractional": r.fractional,
        "reason": r.reason,
        "broker_order_id": o.broker_order_id,
        "status": OrderStatus(o.status).value,
        "submitted_at": utc(o.submitted_at, what="submitted_at"),
        "filled_qty": decimal(o.filled_qty, QTY_SCALE, what="filled qty", exact=True),
        "filled_avg_price": decimal_or_none(o.filled_avg_price, EXEC_PRICE_SCALE, what="filled average price"),
    }


def _order_record(row: Any) -> OrderRecord:
    request = OrderRequest(
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        qty=row["qty"],
        type=OrderType(row["type"]),
        limit_price=row["limit_price"],
        stop_price=row["stop_price"],
        take_profit_price=row["take_profit_price"],
        time_in_force=TimeInForce(row["time_in_force"]),
        fractional=row["fractional"],
        reason=row["reason"],
    )
    order = Order(
        request=request,
        broker_order_id=row["broker_order_id"],
        status=OrderStatus(row["status"]),
        submitted_at=row["submitted_at"],
        filled_qty=row["filled_qty"],
        filled_avg_price=row["filled_avg_price"],
    )
    return OrderRecord(order=order, scope=row["scope"], cycle_id=row["cycle_id"], shadow=row["shadow"])


class PgFillRepository(FillRepository):
    """Implements `FillRepository` on table `fills`.

    A fill is identified by (client order id, time, qty, price): adding it again, in this batch or
    a later one, is a no-op (unique constraint `uq_fills_order_at_qty_price`).
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, records: Sequence[FillRecord]) -> None:
        """Record fills in one statement, ignoring those already recorded."""
        rows = [_fill_row(r) for r in records]
        if rows:
            stmt = pg_insert(fills).on_conflict_do_nothing(constraint="uq_fills_order_at_qty_price")
            await self._session.execute(stmt, rows)

    async def list(
        self, scope: str, *, since: datetime | None = None, until: datetime | None = None,
        shadow: bool | None = False, limit: int = 100_000,
    ) -> list[FillRecord]:
        """Fills of `scope`, oldest first; `shadow` False: real only, True: shadow only, None: both."""
        check_limit(limit)
        stmt = select(fills).where(fills.c.scope == scope, *_time_range(fills.c.at, since, until))
        if shadow is not None:
            stmt = stmt.where(fills.c.shadow == shadow)
        stmt = stmt.order_by(fills.c.at, fills.c.id).limit(limit)
        return [_fill_record(row) for row in (await self._session.execute(stmt)).mappings().all()]


def _fill_row(record: FillRecord) -> dict[str, Any]:
    f = record.fill
    return {
        "scope": record.scope,
        "cycle_id": record.cycle_id,
        "shadow": record.shadow,
        "client_order_id": f.client_order_id,
        "symbol": f.symbol,
        "side": Side(f.side).value,
        "qty": decimal(f.qty, QTY_SCALE, what="fill qty", exact=True),
        "price": decimal(f.price, EXEC_PRICE_SCALE, what="fill price"),
        "fee": decimal(f.fee, CASH_SCALE, what="fee"),
        "at": utc(f.at, what="fill time"),
        "reason": f.reason,
    }


def _fill_record(row: Any) -> FillRecord:
    fill = Fill(
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        qty=row["qty"],
        price=row["price"],
        fee=row["fee"],
        at=row["at"],
        reason=row["reason"],
    )
    return FillRecord(fill=fill, scope=row["scope"], cycle_id=row["cycle_id"], shadow=row["shadow"])


class PgPositionRepository(PositionRepository):
    """Implements `PositionRepository` on table `positions`."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def replace_all(self, scope: str, positions: Sequence[Position]) -> None:
        """Make the stored positions of `scope` exactly `positions` (one delete, one insert)."""
        symbols = [p.symbol for p in positions]
        if len(set(symbols)) != len(symbols):
            twice = sorted({s for s in symbols if symbols.count(s) > 1})
            raise ValueError(f"positions hold {', '.join(twice)} more than once")
        rows = [
            {
                "scope": scope,
                "symbol": p.symbol,
                "qty": decimal(p.qty, QTY_SCALE, what="position qty", exact=True),
                "avg_entry_price": decimal(p.avg_entry_price, EXEC_PRICE_SCALE, what="average entry price"),
                "stop_price": decimal_or_none(p.stop_price, PRICE_SCALE, what="stop price"),
                "opened_at": utc_or_none(p.opened_at, what="opened_at"),
                "fractional": p.fractional,
            }
            for p in positions
        ]
        await self._session.execute(delete(positions_table).where(positions_table.c.scope == scope))
        if rows:
            await self._session.execute(insert(positions_table), rows)

    async def list(self, scope: str) -> list[Position]:
        """Stored positions of `scope`, by symbol."""
        t = positions_table
        stmt = select(t).where(t.c.scope == scope).order_by(t.c.symbol.collate("C"))
        return [
            Position(
                symbol=row["symbol"],
                qty=row["qty"],
                avg_entry_price=row["avg_entry_price"],
                stop_price=row["stop_price"],
                opened_at=row["opened_at"],
                fractional=row["fractional"],
            )
            for row in (await self._session.execute(stmt)).mappings().all()
        ]


class PgEquityRepository(EquityRepository):
    """Implements `EquityRepository` on table `equity_points`; one point per (scope, time), the last added wins."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, scope: str, point: EquityPoint) -> None:
        """Append a point (replacing one recorded at the same time)."""
        row = {
            "scope": scope,
            "at": utc(point.at, what="equity time"),
            "equity": decimal(point.equity, CASH_SCALE, what="equity"),
            "cash": decimal(point.cash, CASH_SCALE, what="cash"),
            "exposure": decimal(point.exposure, CASH_SCALE, what="exposure"),
            "net_deposits": decimal(point.net_deposits, CASH_SCALE, what="net deposits"),
        }
        stmt = pg_insert(equity_points).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[equity_points.c.scope, equity_points.c.at],
            set_={k: stmt.excluded[k] for k in ("equity", "cash", "exposure", "net_deposits")},
        )
        await self._session.execute(stmt)

    async def list(
        self, scope: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[EquityPoint]:
        """Points of `scope`, oldest first."""
        t = equity_points
        stmt = select(t).where(t.c.scope == scope, *_time_range(t.c.at, since, until)).order_by(t.c.at)
        return [
            EquityPoint(
                at=row["at"],
                equity=row["equity"],
                cash=row["cash"],
                exposure=row["exposure"],
                net_deposits=row["net_deposits"],
            )
            for row in (await self._session.execute(stmt)).mappings().all()
        ]
