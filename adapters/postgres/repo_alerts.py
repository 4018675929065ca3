"""PgAlertRepository: alerts and their delivery state in table `alerts`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.tables import alerts as alerts_table
from domain.events import EventType, Severity
from domain.ports.alerts import Alert, AlertRepository, AlertStatus, StoredAlert
from domain.storage import json_document, utc, utc_or_none

_UNDELIVERED = [AlertStatus.PENDING.value, AlertStatus.UNDELIVERABLE.value]


class PgAlertRepository(AlertRepository):
    """Implements `AlertRepository` on table `alerts`; runs inside the unit of work's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, scope: str, alert: Alert, *, channel: str, at: datetime,
                  status: AlertStatus = AlertStatus.PENDING, attempts: int = 0,
                  last_error: str | None = None) -> int:
        """Store `alert` for `channel` and return its id."""
        if attempts < 0:
            raise ValueError(f"attempts must not be negative, got {attempts}")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in alert.fields.items()):
            raise TypeError("alert fields must map str to str")
        row = {
            "scope": scope,
            "at": utc(alert.at, what="alert time"),
            "type": EventType(alert.type).value,
            "severity": Severity(alert.severity).value,
            "title": alert.title,
            "body": alert.body,
            "fields": json_document(dict(alert.fields), what="alert fields"),
            "channel": channel,
            "status": AlertStatus(status).value,
            "attempts": attempts,
            "last_error": last_error,
            "event_id": alert.event_id,
            "dedupe_key": alert.dedupe_key,
            "updated_at": utc(at, what="at"),
        }
        stmt = insert(alerts_table).values(row).returning(alerts_table.c.id)
        return int((await self._session.execute(stmt)).scalar_one())

    async def _update(self, alert_id: int, values: dict[str, Any]) -> None:
        t = alerts_table
        stmt = update(t).where(t.c.id == alert_id).values(values).returning(t.c.id)
        if (await self._session.execute(stmt)).first() is None:
            raise KeyError(f"no alert with id {alert_id}")

    async def mark_delivered(self, alert_id: int, *, attempts: int, at: datetime) -> None:
        """Record a successful delivery."""
        await self._update(alert_id, {"status": AlertStatus.DELIVERED.value, "attempts": attempts,
                                      "updated_at": utc(at, what="at")})

    async def mark_undeliverable(self, alert_id: int, *, attempts: int, last_error: str, at: datetime) -> None:
        """Record that delivery gave up, with the last error."""
        await self._update(alert_id, {"status": AlertStatus.UNDELIVERABLE.value, "attempts": attempts,
                                      "last_error": last_error, "updated_at": utc(at, what="at")})

    async def get(self, alert_id: int) -> StoredAlert | None:
        """The alert with this id."""
        row = (await self._session.execute(select(alerts_table).where(alerts_table.c.id == alert_id))).mappings()
        found = row.first()
        return None if found is None else self._stored(found)

    async def find(self, scope: str, dedupe_key: str, channel: str) -> StoredAlert | None:
        """The first alert of `scope` stored for `channel` under `dedupe_key`."""
        t = alerts_table
        stmt = (select(t).where(t.c.scope == scope, t.c.dedupe_key == dedupe_key, t.c.channel == channel)
                .order_by(t.c.id).limit(1))
        found = (await self._session.execute(stmt)).mappings().first()
        return None if found is None else self._stored(found)

    async def list_undelivered(self, scope: str, *, before: datetime | None = None, max_attempts: int | None = None,
                               limit: int = 100) -> list[StoredAlert]:
        """Pending and undeliverable alerts of `scope` (last updated before `before`), oldest first."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        t = alerts_table
        where = [t.c.scope == scope, t.c.status.in_(_UNDELIVERED)]
        cutoff = utc_or_none(before, what="before")
        if cutoff is not None:
            where.append(t.c.updated_at < cutoff)
        if max_attempts is not None:
            where.append(t.c.attempts < max_attempts)
        stmt = select(t).where(*where).order_by(t.c.at, t.c.id).limit(limit)
        return [self._stored(r) for r in (await self._session.execute(stmt)).mappings().all()]

    async def list(self, scope: str, *, status: AlertStatus | None = None, limit: int = 100) -> list[StoredAlert]:
        """Alerts of `scope`, newest first."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        t = alerts_table
        where = [t.c.scope == scope]
        if status is not None:
            where.append(t.c.status == AlertStatus(status).value)
        stmt = select(t).where(*where).order_by(t.c.at.desc(), t.c.id.desc()).limit(limit)
        return [self._stored(r) for r in (await self._session.execute(stmt)).mappings().all()]

    @staticmethod
    def _stored(row: Any) -> StoredAlert:
        alert = Alert(
            type=row["type"],
            severity=Severity(row["severity"]),
            title=row["title"],
            body=row["body"],
            at=row["at"],
            fields={str(k): str(v) for k, v in (row["fields"] or {}).items()},
            event_id=row["event_id"],
            dedupe_key=row["dedupe_key"],
        )
        return StoredAlert(row["id"], row["scope"], alert, row["channel"], AlertStatus(row["status"]),
                           row["attempts"], row["last_error"], row["updated_at"])
