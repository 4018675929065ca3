"""Orders, fills, positions and equity in memory, with the semantics of the PostgreSQL repositories.

Quantities must fit 9 decimals exactly (a share count is never rounded); prices and cash amounts
are rounded half-even to the scale of their column. Time ranges are half-open: since <= at < until.
Every mutation records its undo in the journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from adapters.inmemory.journal import MISSING, Journal, restore
from domain.models.trading import Fill, OrderStatus, OrderType, Position, Side, TimeInForce
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
    in_range,
    utc,
    utc_or_none,
)


class InMemoryOrderRepository(OrderRepository):
    """Implements `OrderRepository` in memory; a client order id belongs to one scope."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._orders: dict[str, OrderRecord] = {}

    async def upsert(self, record: OrderRecord) -> None:
        """Insert or update by client order id."""
        o, r = record.order, record.order.request
        request = replace(
            r,
            side=Side(r.side),
            qty=decimal(r.qty, QTY_SCALE, what="order qty", exact=True),
            type=OrderType(r.type),
            limit_price=decimal_or_none(r.limit_price, PRICE_SCALE, what="limit price"),
            stop_price=decimal_or_none(r.stop_price, PRICE_SCALE, what="stop price"),
            take_profit_price=decimal_or_none(r.take_profit_price, PRICE_SCALE, what="take-profit price"),
            time_in_force=TimeInForce(r.time_in_force),
        )
        order = replace(
            o,
            request=request,
            status=OrderStatus(o.status),
            submitted_at=utc(o.submitted_at, what="submitted_at"),
            filled_qty=decimal(o.filled_qty, QTY_SCALE, what="filled qty", exact=True),
            filled_avg_price=decimal_or_none(o.filled_avg_price, EXEC_PRICE_SCALE, what="filled average price"),
        )
        key = r.client_order_id
        old = self._orders.get(key, MISSING)
        if old is not MISSING and old.scope != record.scope:
            raise ValueError(f"client order id {key!r} belongs to another scope")
        self._orders[key] = replace(record, order=order)
        self._journal.record(lambda: restore(self._orders, key, old))

    async def get(self, client_order_id: str) -> OrderRecord | None:
        """The order with this client order id."""
        return self._orders.get(client_order_id)

    async def list(self, scope: str, *, status: Sequence[OrderStatus] = (), limit: int = 1000) -> list[OrderRecord]:
        """Orders of `scope`, newest submitted first, optionally of some statuses only."""
        check_limit(limit)
        wanted = {OrderStatus(s) for s in status}
        found = [
            rec for rec in self._orders.values() if rec.scope == scope and (not wanted or rec.order.status in wanted)
        ]
        found.sort(key=lambda rec: (rec.order.submitted_at, rec.order.client_order_id), reverse=True)
        return found[:limit]


class InMemoryFillRepository(FillRepository):
    """Implements `FillRepository` in memory; a fill already recorded (same order, time, qty, price) is ignored."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._by_scope: dict[str, list[FillRecord]] = {}
        self._keys: set[tuple[Any, ...]] = set()

    async def add(self, records: Sequence[FillRecord]) -> None:
        """Record fills, ignoring those already recorded."""
        normalised = [replace(r, fill=self._normalised(r.fill)) for r in records]
        added: list[tuple[Any, ...]] = []
        sizes: dict[str, int] = {}
        for rec in normalised:
            f = rec.fill
            key = (f.client_order_id, f.at, f.qty, f.price)
            if key in self._keys:
                continue
            fills = self._by_scope.setdefault(rec.scope, [])
            sizes.setdefault(rec.scope, len(fills))
            fills.append(rec)
            self._keys.add(key)
            added.append(key)
        if added:
            self._journal.record(lambda: self._undo_add(sizes, added))

    @staticmethod
    def _normalised(f: Fill) -> Fill:
        return replace(
            f,
            side=Side(f.side),
            qty=decimal(f.qty, QTY_SCALE, what="fill qty", exact=True),
            price=decimal(f.price, EXEC_PRICE_SCALE, what="fill price"),
            fee=decimal(f.fee, CASH_SCALE, what="fee"),
            at=utc(f.at, what="fill time"),
        )

    def _undo_add(self, sizes: dict[str, int], keys: list[tuple[Any, ...]]) -> None:
        for scope, n in sizes.items():
            del self._by_scope[scope][n:]
        self._keys.difference_update(keys)

    async def list(
        self,
        scope: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        shadow: bool | None = False,
        limit: int = 100_000,
    ) -> list[FillRecord]:
        """Fills of `scope`, oldest first; `shadow` False: real only, True: shadow only, None: both."""
        check_limit(limit)
        since, until = utc_or_none(since, what="since"), utc_or_none(until, what="until")
        found = [
            rec
            for rec in self._by_scope.get(scope, ())
            if (shadow is None or rec.shadow == shadow) and in_range(rec.fill.at, since, until)
        ]
        found.sort(key=lambda rec: rec.fill.at)
        return found[:limit]


class InMemoryPositionRepository(PositionRepository):
    """Implements `PositionRepository` in memory."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._by_scope: dict[str, dict[str, Position]] = {}

    async def replace_all(self, scope: str, positions: Sequence[Position]) -> None:
        """Make the stored positions of `scope` exactly `positions`."""
        symbols = [p.symbol for p in positions]
        if len(set(symbols)) != len(symbols):
            twice = sorted({s for s in symbols if symbols.count(s) > 1})
            raise ValueError(f"positions hold {', '.join(twice)} more than once")
        new = {
            p.symbol: replace(
                p,
                qty=decimal(p.qty, QTY_SCALE, what="position qty", exact=True),
                avg_entry_price=decimal(p.avg_entry_price, EXEC_PRICE_SCALE, what="average entry price"),
                stop_price=decimal_or_none(p.stop_price, PRICE_SCALE, what="stop price"),
                opened_at=utc_or_none(p.opened_at, what="opened_at"),
            )
            for p in positions
        }
        old = self._by_scope.get(scope, MISSING)
        self._by_scope[scope] = new
        self._journal.record(lambda: restore(self._by_scope, scope, old))

    async def list(self, scope: str) -> list[Position]:
        """Stored positions of `scope`, by symbol."""
        held = self._by_scope.get(scope, {})
        return [held[s] for s in sorted(held)]


class InMemoryEquityRepository(EquityRepository):
    """Implements `EquityRepository` in memory; one point per (scope, time), the last added wins."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._by_scope: dict[str, dict[datetime, EquityPoint]] = {}

    async def add(self, scope: str, point: EquityPoint) -> None:
        """Append a point (replacing one recorded at the same time)."""
        p = EquityPoint(
            at=utc(point.at, what="equity time"),
            equity=decimal(point.equity, CASH_SCALE, what="equity"),
            cash=decimal(point.cash, CASH_SCALE, what="cash"),
            exposure=decimal(point.exposure, CASH_SCALE, what="exposure"),
            net_deposits=decimal(point.net_deposits, CASH_SCALE, what="net deposits"),
        )
        points = self._by_scope.setdefault(scope, {})
        old = points.get(p.at, MISSING)
        points[p.at] = p
        self._journal.record(lambda: restore(points, p.at, old))

    async def list(
        self, scope: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[EquityPoint]:
        """Points of `scope`, oldest first."""
        since, until = utc_or_none(since, what="since"), utc_or_none(until, what="until")
        points = self._by_scope.get(scope, {})
        return [points[at] for at in sorted(points) if in_range(at, since, until)]
