"""Alert ports: channels that deliver alerts (Discord, email, log) and the store that never loses them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from domain.events import Severity


@dataclass(frozen=True)
class Alert:
    """A human-readable notification made from an event of the event log.

    Attributes:
        type: an `EventType` value (the kind of event the alert tells about).
        severity: how much it matters; decides the channels (see `domain.alerts.AlertRoutes`).
        title: one line.
        body: a few lines of plain text with the numbers that matter.
        at: when the event happened (timezone-aware).
        fields: short name -> value pairs shown as a table (Discord embed fields, email lines).
        event_id: id of the event the alert was made from, when it came from the event log.
        dedupe_key: identifies the alert across retries and restarts (e.g. "event:42"); one delivery per
            (dedupe_key, channel).
    """

    type: str
    severity: Severity
    title: str
    body: str
    at: datetime
    fields: dict[str, str] = field(default_factory=dict)
    event_id: int | None = None
    dedupe_key: str | None = None


@runtime_checkable
class AlertChannel(Protocol):
    """Somewhere alerts go: a Discord webhook, an email sender, the log."""

    name: str

    async def send(self, alert: Alert) -> None:
        """Deliver `alert` once (no retries: the caller retries).

        Raises:
            AlertDeliveryError: not delivered; `retryable` says whether trying again may help.
        """
        ...


class AlertStatus(StrEnum):
    """Where an alert's delivery to one channel stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"


@dataclass(frozen=True)
class StoredAlert:
    """An alert as stored for one channel, with its delivery state."""

    id: int
    scope: str
    alert: Alert
    channel: str
    status: AlertStatus
    attempts: int
    last_error: str | None
    updated_at: datetime


class AlertRepository(Protocol):
    """Alerts and their delivery state, one row per (alert, channel).

    The row is written (and committed) before the first delivery attempt and updated afterwards, so an
    alert that could not be delivered, or whose process died while delivering it, is never lost.
    """

    async def add(self, scope: str, alert: Alert, *, channel: str, at: datetime,
                  status: AlertStatus = AlertStatus.PENDING, attempts: int = 0,
                  last_error: str | None = None) -> int:
        """Store `alert` for `channel` and return its id."""
        ...

    async def mark_delivered(self, alert_id: int, *, attempts: int, at: datetime) -> None:
        """Record a successful delivery after `attempts` tries in all.

        Raises:
            KeyError: no alert has this id.
        """
        ...

    async def mark_undeliverable(self, alert_id: int, *, attempts: int, last_error: str, at: datetime) -> None:
        """Record that delivery gave up after `attempts` tries in all, with the last error.

        Raises:
            KeyError: no alert has this id.
        """
        ...

    async def get(self, alert_id: int) -> StoredAlert | None:
        """The alert with this id."""
        ...

    async def find(self, scope: str, dedupe_key: str, channel: str) -> StoredAlert | None:
        """The alert of `scope` stored for `channel` under `dedupe_key`, if any."""
        ...

    async def list_undelivered(self, scope: str, *, before: datetime | None = None, max_attempts: int | None = None,
                               limit: int = 100) -> list[StoredAlert]:
        """Pending and undeliverable alerts of `scope`, oldest first.

        Args:
            scope: whose alerts.
            before: only alerts last updated strictly before this time (leaves deliveries in flight alone).
            max_attempts: only alerts tried fewer times than this (those tried more are given up on).
            limit: at most this many.
        """
        ...

    async def list(self, scope: str, *, status: AlertStatus | None = None, limit: int = 100) -> list[StoredAlert]:
        """Alerts of `scope`, newest first, optionally of one status only."""
        ...
