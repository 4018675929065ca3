"""InMemoryAlertRepository: alerts and their delivery state, with the semantics of `PgAlertRepository`."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime

from adapters.inmemory.journal import Journal
from domain.events import EventType, Severity
from domain.ports.alerts import Alert, AlertRepository, AlertStatus, StoredAlert
from domain.storage import utc, utc_or_none

_UNDELIVERED = (AlertStatus.PENDING, AlertStatus.UNDELIVERABLE)


def _check_fields(fields: dict[str, str]) -> dict[str, str]:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items()):
        raise TypeError("alert fields must map str to str")
    return dict(fields)


class InMemoryAlertRepository(AlertRepository):
    """Implements `AlertRepository` in memory; every change is undone by a rollback of the unit of work."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._rows: dict[int, StoredAlert] = {}
        self._next_id = 1

    async def add(self, scope: str, alert: Alert, *, channel: str, at: datetime,
                  status: AlertStatus = AlertStatus.PENDING, attempts: int = 0,
                  last_error: str | None = None) -> int:
        """Store `alert` for `channel` and return its id."""
        if attempts < 0:
            raise ValueError(f"attempts must not be negative, got {attempts}")
        stored_alert = replace(alert, type=EventType(alert.type).value, severity=Severity(alert.severity),
                               at=utc(alert.at, what="alert time"), fields=_check_fields(alert.fields))
        alert_id = self._next_id
        self._next_id += 1
        self._rows[alert_id] = StoredAlert(alert_id, scope, stored_alert, channel, AlertStatus(status), attempts,
                                           last_error, utc(at, what="at"))
        self._journal.record(lambda: self._remove(alert_id))
        return alert_id

    def _remove(self, alert_id: int) -> None:
        self._rows.pop(alert_id, None)

    def _update(self, alert_id: int, **changes: object) -> None:
        old = self._rows.get(alert_id)
        if old is None:
            raise KeyError(f"no alert with id {alert_id}")
        self._rows[alert_id] = replace(old, **changes)  # type: ignore[arg-type]
        self._journal.record(lambda: self._rows.__setitem__(alert_id, old))

    async def mark_delivered(self, alert_id: int, *, attempts: int, at: datetime) -> None:
        """Record a successful delivery."""
        self._update(alert_id, status=AlertStatus.DELIVERED, attempts=attempts, updated_at=utc(at, what="at"))

    async def mark_undeliverable(self, alert_id: int, *, attempts: int, last_error: str, at: datetime) -> None:
        """Record that delivery gave up, with the last error."""
        self._update(alert_id, status=AlertStatus.UNDELIVERABLE, attempts=attempts, last_error=last_error,
                     updated_at=utc(at, what="at"))

    @staticmethod
    def _copy(row: StoredAlert) -> StoredAlert:
        return replace(row, alert=replace(row.alert, fields=copy.deepcopy(row.alert.fields)))

    async def get(self, alert_id: int) -> StoredAlert | None:
        """The alert with this id."""
        row = self._rows.get(alert_id)
        return None if row is None else self._copy(row)

    async def find(self, scope: str, dedupe_key: str, channel: str) -> StoredAlert | None:
        """The first alert of `scope` stored for `channel` under `dedupe_key`."""
        for row in self._rows.values():
            if row.scope == scope and row.channel == channel and row.alert.dedupe_key == dedupe_key:
                return self._copy(row)
        return None

    async def list_undelivered(self, scope: str, *, before: datetime | None = None, max_attempts: int | None = None,
                               limit: int = 100) -> list[StoredAlert]:
        """Pending and undeliverable alerts of `scope` (last updated before `before`), oldest first."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        cutoff = utc_or_none(before, what="before")
        rows = [r for r in self._rows.values()
                if r.scope == scope and r.status in _UNDELIVERED and (cutoff is None or r.updated_at < cutoff)
                and (max_attempts is None or r.attempts < max_attempts)]
        rows.sort(key=lambda r: (r.alert.at, r.id))
        return [self._copy(r) for r in rows[:limit]]

    async def list(self, scope: str, *, status: AlertStatus | None = None, limit: int = 100) -> list[StoredAlert]:
        """Alerts of `scope`, newest first."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        rows = [r for r in self._rows.values() if r.scope == scope and (status is None or r.status == status)]
        rows.sort(key=lambda r: (r.alert.at, r.id), reverse=True)
        return [self._copy(r) for r in rows[:limit]]
