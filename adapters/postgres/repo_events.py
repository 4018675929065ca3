"""PgEventRepository: the event log in table `events`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.tables import events as events_table
from domain.events import Event, EventType, Severity
from domain.ports.repositories import EventQuery, EventRepository, check_after
from domain.redaction import scrub_event
from domain.storage import json_document, utc, utc_or_none

_SEVERITIES = list(Severity)


def severities_at_least(minimum: Severity) -> list[str]:
    """Values of `minimum` and every more severe level (Severity is declared least severe first)."""
    return [s.value for s in _SEVERITIES[_SEVERITIES.index(Severity(minimum)) :]]


class PgEventRepository(EventRepository):
    """Implements `EventRepository` on table `events`; runs inside the unit of work's transaction.

    Time filters are half-open: `since <= at < until`. Events with the same `at` come back in
    reverse order of insertion.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, events: Sequence[Event]) -> None:
        """Append events in one statement, registered secrets masked in their text."""
        rows = [self._row(scrub_event(e)) for e in events]
        if rows:
            await self._session.execute(insert(events_table), rows)

    async def query(self, q: EventQuery) -> list[Event]:
        """Events matching `q`, newest first."""
        if q.limit < 0 or q.offset < 0:
            raise ValueError(f"limit and offset must not be negative, got {q.limit} and {q.offset}")
        stmt = (
            select(events_table)
            .where(*self._conditions(q))
            .order_by(events_table.c.at.desc(), events_table.c.id.desc())
            .limit(q.limit)
            .offset(q.offset)
        )
        rows = (await self._session.execute(stmt)).mappings().all()
        return [self._event(row) for row in rows]

    async def count(self, q: EventQuery) -> int:
        """How many events match `q`, ignoring limit and offset."""
        stmt = select(func.count()).select_from(events_table).where(*self._conditions(q))
        return int((await self._session.execute(stmt)).scalar_one())

    async def after(self, scope: str, after_id: int, *, limit: int) -> list[Event]:
        """Events of `scope` whose id is above `after_id`, in id order, at most `limit` (the primary key's index)."""
        check_after(after_id, limit)
        c = events_table.c
        stmt = select(events_table).where(c.scope == scope, c.id > after_id).order_by(c.id).limit(limit)
        rows = (await self._session.execute(stmt)).mappings().all()
        return [self._event(row) for row in rows]

    @staticmethod
    def _row(e: Event) -> dict[str, Any]:
        return {
            "scope": e.scope,
            "at": utc(e.at, what="event time"),
            "type": EventType(e.type).value,
            "severity": Severity(e.severity).value,
            "message": e.message,
            "cycle_id": e.cycle_id,
            "symbol": e.symbol,
            "payload": json_document(e.payload, what="event payload"),
        }

    @staticmethod
    def _conditions(q: EventQuery) -> list[ColumnElement[bool]]:
        c = events_table.c
        where: list[ColumnElement[bool]] = [c.scope == q.scope]
        if q.types:
            where.append(c.type.in_([EventType(t).value for t in q.types]))
        if q.symbol is not None:
            where.append(c.symbol == q.symbol)
        if q.cycle_id is not None:
            where.append(c.cycle_id == q.cycle_id)
        if q.min_severity is not None:
            where.append(c.severity.in_(severities_at_least(q.min_severity)))
        since = utc_or_none(q.since, what="since")
        if since is not None:
            where.append(c.at >= since)
        until = utc_or_none(q.until, what="until")
        if until is not None:
            where.append(c.at < until)
        return where

    @staticmethod
    def _event(row: Any) -> Event:
        return Event(
            type=EventType(row["type"]),
            at=row["at"],
            message=row["message"],
            severity=Severity(row["severity"]),
            cycle_id=row["cycle_id"],
            symbol=row["symbol"],
            payload=dict(row["payload"] or {}),
            scope=row["scope"],
            id=row["id"],
        )
