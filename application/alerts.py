"""AlertService: events -> alerts -> channels, with retries, and nothing ever lost.

For every (alert, channel) a row is stored as `pending` and committed before the first delivery attempt;
it is updated to `delivered`, or to `undeliverable` after the last attempt, in which case an
ALERT_UNDELIVERABLE event is added to the event log (so GET /api/events shows it). `retry_undelivered`
(a periodic job) tries those rows again, and any row left pending by a process that died mid-delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from domain.alerts import TEMPLATED_TYPES, AlertRoutes, is_alert_worthy, render_alert
from domain.errors import AlertDeliveryError
from domain.events import Event, Severity
from domain.ports.alerts import Alert, AlertChannel, AlertStatus
from domain.ports.clock import Clock
from domain.ports.repositories import EventQuery
from domain.ports.uow import UnitOfWork, UnitOfWorkFactory
from domain.system_events import alert_undeliverable

log = structlog.get_logger(__name__)
CURSOR_DOC = "alerts_cursor"
LOOKBACK_IDS = 1000
"""Event ids below the highest one read that each forwarding run reads again (late commits)."""
_ERROR_LIMIT = 500


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one alert on one channel.

    Attributes:
        alert_id: the stored row (None only when nothing was stored).
        channel: the channel name.
        status: delivered or undeliverable (for a duplicate: the stored status, possibly still pending).
        attempts: delivery attempts so far, all runs together.
        error: the last error, when not delivered.
        alert_type: the alert's type.
        duplicate: the alert had already been stored for this channel (nothing was sent again).
    """

    alert_id: int | None
    channel: str
    status: AlertStatus
    attempts: int
    error: str | None
    alert_type: str
    duplicate: bool = False


def _same(text: str) -> str:
    return text


class AlertService:
    """Routes alerts to channels and keeps every one of them.

    Args:
        uow_factory: opens units of work (the alert rows, the event log and the cursor live there).
        channels: channel name -> channel; routes naming an unconfigured channel are ignored.
        routes: which channels each alert goes to.
        scope: event log and alert scope.
        clock: the time used for rows and events.
        max_attempts: tries per delivery in `dispatch` before giving up.
        backoff_base: first retry delay in seconds, doubled at each retry (a channel's retry-after wins).
        max_backoff: longest single wait, in seconds.
        sleep: the coroutine used to wait (injected in tests).
        redact: scrubs secrets from every text stored or sent.
        forward_grace: how far back the first `dispatch_new_events` looks (later ones follow event ids).
        give_up_after: `retry_undelivered` leaves alerts tried this many times alone.
    """

    def __init__(self, uow_factory: UnitOfWorkFactory, channels: Mapping[str, AlertChannel], routes: AlertRoutes,
                 *, scope: str, clock: Clock, max_attempts: int = 5, backoff_base: float = 1.0,
                 max_backoff: float = 300.0, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 redact: Callable[[str], str] = _same, forward_grace: timedelta = timedelta(minutes=15),
                 give_up_after: int = 50) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self._uow_factory = uow_factory
        self._channels = dict(channels)
        self.routes = routes
        self.scope = scope
        self._clock = clock
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._redact = redact
        self._grace = forward_grace
        self._give_up_after = give_up_after

    @property
    def channel_names(self) -> list[str]:
        """Names of the configured channels."""
        return list(self._channels)

    def _scrub(self, alert: Alert) -> Alert:
        r = self._redact
        return replace(alert, title=r(alert.title), body=r(alert.body),
                       fields={r(k): r(v) for k, v in alert.fields.items()})

    async def dispatch(self, events: Iterable[Event]) -> list[DeliveryResult]:
        """Template, route, store and deliver the alert of each event (see the module docstring)."""
        results: list[DeliveryResult] = []
        for event in events:
            results += await self.send(render_alert(event))
        return results

    async def send(self, alert: Alert) -> list[DeliveryResult]:
        """Route, store and deliver one alert; one result per channel it goes to."""
        alert = self._scrub(alert)
        routed = self.routes.channels_for(alert)
        if routed and not any(name in self._channels for name in routed):
            log.warning("alert_not_routed", type=alert.type, title=alert.title, channels=list(routed),
                        configured=self.channel_names)
        results = []
        for name in routed:
            channel = self._channels.get(name)
            if channel is None:
                continue
            stored = await self._store(alert, name)
            if isinstance(stored, DeliveryResult):
                results.append(stored)
                continue
            results.append(await self._deliver(stored, alert, channel, attempts=0, budget=self._max_attempts,
                                               first_failure=True))
        return results

    async def _store(self, alert: Alert, channel: str) -> int | DeliveryResult:
        async with self._uow_factory() as uow:
            if alert.dedupe_key is not None:
                old = await uow.alerts.find(self.scope, alert.dedupe_key, channel)
                if old is not None:
                    return DeliveryResult(old.id, channel, old.status, old.attempts, old.last_error, alert.type,
                                          duplicate=True)
            alert_id = await uow.alerts.add(self.scope, alert, channel=channel, at=self._clock.now())
            await uow.commit()
        return alert_id

    def _delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None and retry_after >= 0:
            return float(min(retry_after, self._max_backoff))
        return float(min(self._backoff_base * 2**retry, self._max_backoff))

    async def _deliver(self, alert_id: int, alert: Alert, channel: AlertChannel, *, attempts: int, budget: int,
                       first_failure: bool) -> DeliveryResult:
        error = ""
        for retry in range(budget):
            attempts += 1
            try:
                await channel.send(alert)
            except AlertDeliveryError as exc:
                error, retryable, retry_after = self._redact(str(exc))[:_ERROR_LIMIT], exc.retryable, exc.retry_after
            except Exception as exc:  # noqa: BLE001 - a broken channel must not lose the alert
                error, retryable, retry_after = self._redact(f"{type(exc).__name__}: {exc}")[:_ERROR_LIMIT], True, None
            else:
                async with self._uow_factory() as uow:
                    await uow.alerts.mark_delivered(alert_id, attempts=attempts, at=self._clock.now())
                    await uow.commit()
                log.info("alert_delivered", alert_id=alert_id, channel=channel.name, type=alert.type,
                         attempts=attempts)
                return DeliveryResult(alert_id, channel.name, AlertStatus.DELIVERED, attempts, None, alert.type)
            log.warning("alert_delivery_failed", alert_id=alert_id, channel=channel.name, type=alert.type,
                        attempt=attempts, retryable=retryable, error=error)
            if not retryable or retry == budget - 1:
                break
            await self._sleep(self._delay(retry, retry_after))
        await self._give_up(alert_id, alert, channel.name, attempts, error, first_failure)
        return DeliveryResult(alert_id, channel.name, AlertStatus.UNDELIVERABLE, attempts, error, alert.type)

    async def _give_up(self, alert_id: int, alert: Alert, channel: str, attempts: int, error: str,
                       first_failure: bool) -> None:
        now = self._clock.now()
        async with self._uow_factory() as uow:
            await uow.alerts.mark_undeliverable(alert_id, attempts=attempts, last_error=error, at=now)
            if first_failure:
                await uow.events.add([alert_undeliverable(
                    at=now, scope=self.scope, alert_id=alert_id, channel=channel, attempts=attempts, error=error,
                    alert_type=alert.type, alert_severity=alert.severity, title=alert.title,
                    event_id=alert.event_id)])
            await uow.commit()
        log.error("alert_undeliverable", alert_id=alert_id, channel=channel, type=alert.type, attempts=attempts,
                  error=error)

    async def retry_undelivered(self, *, min_age: timedelta = timedelta(minutes=5),
                                limit: int = 100) -> list[DeliveryResult]:
        """One more attempt for each pending or undeliverable alert last touched at least `min_age` ago.

        Alerts of channels no longer configured are left as they are. An alert that fails again stays
        undeliverable (no second ALERT_UNDELIVERABLE event); a pending one that fails becomes undeliverable.
        """
        before = self._clock.now() - min_age
        async with self._uow_factory() as uow:
            rows = await uow.alerts.list_undelivered(self.scope, before=before, max_attempts=self._give_up_after,
                                                     limit=limit)
        results = []
        for row in rows:
            channel = self._channels.get(row.channel)
            if channel is None:
                continue
            results.append(await self._deliver(row.id, row.alert, channel, attempts=row.attempts, budget=1,
                                               first_failure=row.status is AlertStatus.PENDING))
        return results

    async def dispatch_new_events(self, *, page: int = 500, max_events: int = 5000) -> list[DeliveryResult]:
        """Forward the alert-worthy events added to the log since the last call, in commit order.

        The cursor (`alerts_cursor`) holds the highest event id read and the ids forwarded in the `LOOKBACK_IDS`
        below it. Ids are handed out when a transaction inserts, not when it commits, so each call re-reads that
        window: an event committed after a newer one (a long cycle's breaker or error event) is forwarded
        whatever its own time, and an event forwarded once is never sent again (nor is an alert already stored
        for it). The first call (no cursor, or a time cursor of an older version) forwards the events of the
        last `forward_grace` before taking up the ids; at most `max_events` are read per call.
        """
        now = self._clock.now()
        async with self._uow_factory() as uow:
            doc = await uow.state.load(self.scope, CURSOR_DOC) or {}
            if isinstance(doc.get("after_id"), int):
                after_id, seen = int(doc["after_id"]), {int(i) for i in doc.get("seen") or ()}
                events, last_id = await self._read_after(uow, max(0, after_id - LOOKBACK_IDS), page, max_events)
                last_id = max(last_id, after_id)
            else:
                since = datetime.fromisoformat(doc["since"]) if doc.get("since") else now
                events, last_id = await self._read_recent(uow, since - self._grace, page, max_events)
                window, _ = await self._read_after(uow, max(0, last_id - LOOKBACK_IDS), page, LOOKBACK_IDS)
                seen = {e.id for e in window if e.id is not None and is_alert_worthy(e)} - {e.id for e in events}
        new = sorted((e for e in events if is_alert_worthy(e) and e.id not in seen), key=lambda e: e.id or 0)
        results = await self.dispatch(new)
        seen = {i for i in seen | {e.id for e in new if e.id is not None} if i > last_id - LOOKBACK_IDS}
        async with self._uow_factory() as uow:
            await uow.state.save(self.scope, CURSOR_DOC, {"after_id": last_id, "seen": sorted(seen)}, at=now)
            await uow.commit()
        return results

    async def _read_after(self, uow: UnitOfWork, after_id: int, page: int,
                          max_events: int) -> tuple[list[Event], int]:
        """Events with an id above `after_id` in id order (at most `max_events`), and the highest id read."""
        events: list[Event] = []
        while len(events) < max_events:
            batch = await uow.events.after(self.scope, after_id, limit=min(page, max_events - len(events)))
            events += batch
            if not batch:
                break
            after_id = max(e.id or 0 for e in batch)
        return events, after_id

    async def _read_recent(self, uow: UnitOfWork, since: datetime, page: int,
                           max_events: int) -> tuple[list[Event], int]:
        """The alert-worthy candidates at or after `since`, and the highest id in the log (where ids start)."""
        found: dict[int, Event] = {}
        for q in (EventQuery(self.scope, types=TEMPLATED_TYPES, since=since, limit=page),
                  EventQuery(self.scope, min_severity=Severity.WARNING, since=since, limit=page)):
            offset = 0
            while offset < max_events:
                batch = await uow.events.query(replace(q, offset=offset))
                found.update({e.id: e for e in batch if e.id is not None})
                if len(batch) < page:
                    break
                offset += page
        newest = await uow.events.query(EventQuery(self.scope, limit=1))
        rest, last_id = await self._read_after(uow, max([0, *found, *(e.id or 0 for e in newest)]), page, max_events)
        found.update({e.id: e for e in rest if e.id is not None})
        return list(found.values()), last_id
