"""AlertService on the in-memory unit of work with scripted channels: persistence before delivery,
retries with back-off, undeliverable alerts kept and logged as events, forwarding from the event log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.inmemory.clock import SimClock
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.alerts import CURSOR_DOC, AlertService
from domain.alerts import AlertRoutes
from domain.errors import AlertDeliveryError
from domain.events import Event, EventType, Severity
from domain.ports.alerts import Alert, AlertStatus
from domain.ports.repositories import EventQuery
from domain.ports.uow import UnitOfWork

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
SCOPE = "live"


class ScriptedChannel:
    """Fails with the scripted errors first, then delivers; records what it saw."""

    def __init__(self, name: str, *errors: Exception) -> None:
        self.name = name
        self.errors = list(errors)
        self.sent: list[Alert] = []
        self.calls = 0
        self.stored_during_send: list[AlertStatus] = []
        self.db: InMemoryDatabase | None = None

    async def send(self, alert: Alert) -> None:
        self.calls += 1
        if self.db is not None:
            async with InMemoryUnitOfWork(self.db) as uow:
                self.stored_during_send += [r.status for r in await uow.alerts.list(SCOPE)]
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(alert)


class Harness:
    def __init__(self, *channels: ScriptedChannel, max_attempts: int = 5) -> None:
        self.db = InMemoryDatabase(HashingEmbedder())
        self.clock = SimClock(T0)
        self.sleeps: list[float] = []
        for c in channels:
            c.db = self.db
        self.service = AlertService(lambda: InMemoryUnitOfWork(self.db), {c.name: c for c in channels},
                                    AlertRoutes.default(), scope=SCOPE, clock=self.clock, max_attempts=max_attempts,
                                    sleep=self.sleep, redact=lambda s: s.replace("hunter2", "***"))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(timedelta(seconds=seconds))

    def uow(self) -> UnitOfWork:
        return InMemoryUnitOfWork(self.db)

    async def events(self, *types: EventType) -> list[Event]:
        async with self.uow() as uow:
            return await uow.events.query(EventQuery(SCOPE, types=types))

    async def log(self, *events: Event) -> None:
        async with self.uow() as uow:
            await uow.events.add(list(events))
            await uow.commit()


def tripped(n: int = 1, at: datetime = T0) -> Event:
    return Event(EventType.BREAKER_TRIPPED, at, "tripped", Severity.CRITICAL, None, None,
                 {"trigger": "drawdown", "reason": "drawdown 10.4% > 10%"}, SCOPE, n)


async def test_the_alert_is_stored_and_committed_before_delivery_then_marked_delivered() -> None:
    discord = ScriptedChannel("discord")
    h = Harness(discord)
    [result] = await h.service.dispatch([tripped()])
    assert discord.stored_during_send == [AlertStatus.PENDING]
    assert (result.channel, result.status, result.attempts) == ("discord", AlertStatus.DELIVERED, 1)
    async with h.uow() as uow:
        row = await uow.alerts.get(result.alert_id)  # type: ignore[arg-type]
    assert row is not None and row.status is AlertStatus.DELIVERED and row.alert.title.startswith("Circuit breaker")


async def test_retryable_failures_back_off_exponentially_and_honour_retry_after() -> None:
    discord = ScriptedChannel("discord", AlertDeliveryError("500", retryable=True),
                              AlertDeliveryError("429", retryable=True, retry_after=7.5),
                              AlertDeliveryError("500", retryable=True))
    h = Harness(discord)
    [result] = await h.service.dispatch([tripped()])
    assert h.sleeps == [1.0, 7.5, 4.0]
    assert (result.status, result.attempts) == (AlertStatus.DELIVERED, 4)
    assert await h.events(EventType.ALERT_UNDELIVERABLE) == []


async def test_a_non_retryable_failure_is_not_retried_and_the_alert_is_kept_as_undeliverable() -> None:
    discord = ScriptedChannel("discord", AlertDeliveryError("Discord refused the alert with HTTP 400", retryable=False))
    h = Harness(discord)
    [result] = await h.service.dispatch([tripped()])
    assert (discord.calls, h.sleeps, result.status) == (1, [], AlertStatus.UNDELIVERABLE)
    [event] = await h.events(EventType.ALERT_UNDELIVERABLE)
    assert event.severity is Severity.CRITICAL
    assert event.payload["alert_id"] == result.alert_id and event.payload["channel"] == "discord"
    assert event.payload["last_error"] == "Discord refused the alert with HTTP 400"
    assert event.payload["alert_type"] == "breaker_tripped" and event.payload["event_id"] == 1


async def test_after_max_attempts_the_alert_is_undeliverable_and_an_event_is_logged_once() -> None:
    errors = [AlertDeliveryError("HTTP 503", retryable=True) for _ in range(3)]
    discord = ScriptedChannel("discord", *errors)
    h = Harness(discord, max_attempts=3)
    [result] = await h.service.dispatch([tripped()])
    assert (discord.calls, h.sleeps, result.attempts) == (3, [1.0, 2.0], 3)
    async with h.uow() as uow:
        [row] = await uow.alerts.list_undelivered(SCOPE)
    assert (row.status, row.attempts, row.last_error) == (AlertStatus.UNDELIVERABLE, 3, "HTTP 503")
    assert len(await h.events(EventType.ALERT_UNDELIVERABLE)) == 1


async def test_a_channel_that_crashes_does_not_lose_the_alert() -> None:
    discord = ScriptedChannel("discord", RuntimeError("bug"), RuntimeError("bug"))
    h = Harness(discord)
    [result] = await h.service.dispatch([tripped()])
    assert (result.status, result.attempts) == (AlertStatus.DELIVERED, 3)


async def test_each_routed_channel_gets_its_own_row_and_unconfigured_channels_are_skipped() -> None:
    discord, email = ScriptedChannel("discord"), ScriptedChannel("email")
    h = Harness(discord, email)
    summary = Event(EventType.DAILY_SUMMARY, T0, "", Severity.INFO, None, None, {"pnl": "1.0"}, SCOPE, 2)
    signal = Event(EventType.SIGNAL, T0, "AAPL hold", Severity.INFO, None, "AAPL", {}, SCOPE, 3)
    results = await h.service.dispatch([tripped(), summary, signal])
    assert [(r.alert_type, r.channel) for r in results] == [
        ("breaker_tripped", "discord"), ("breaker_tripped", "email"), ("daily_summary", "discord")]
    assert len(email.sent) == 1 and len(discord.sent) == 2


async def test_the_same_event_is_never_delivered_twice() -> None:
    discord = ScriptedChannel("discord")
    h = Harness(discord)
    await h.service.dispatch([tripped()])
    [again] = await h.service.dispatch([tripped()])
    assert again.duplicate and again.status is AlertStatus.DELIVERED
    assert discord.calls == 1


async def test_secrets_are_scrubbed_before_storing_and_sending() -> None:
    discord = ScriptedChannel("discord", AlertDeliveryError("auth hunter2 failed", retryable=False))
    h = Harness(discord)
    event = Event(EventType.SYSTEM_ERROR, T0, "login with hunter2 failed", Severity.CRITICAL, None, None,
                  {"error": "bad password hunter2"}, SCOPE, 5)
    [result] = await h.service.dispatch([event])
    async with h.uow() as uow:
        row = await uow.alerts.get(result.alert_id)  # type: ignore[arg-type]
    assert row is not None
    stored = "".join([row.alert.title, row.alert.body, *row.alert.fields.values(), row.last_error or ""])
    assert "hunter2" not in stored and "***" in stored
    [lost] = await h.events(EventType.ALERT_UNDELIVERABLE)
    assert "hunter2" not in lost.message


async def test_retry_undelivered_delivers_stale_pending_and_undeliverable_alerts() -> None:
    discord = ScriptedChannel("discord", AlertDeliveryError("HTTP 400", retryable=False),
                              AlertDeliveryError("HTTP 500", retryable=True))
    h = Harness(discord)
    [failed] = await h.service.dispatch([tripped(1)])
    async with h.uow() as uow:  # a process that died between storing and delivering
        crashed = await uow.alerts.add(SCOPE, Alert("system_error", Severity.CRITICAL, "t", "b", T0), channel="discord",
                                       at=T0)
        await uow.commit()
    assert await h.service.retry_undelivered() == []  # too recent: could still be in flight
    h.clock.advance(timedelta(minutes=6))
    results = {r.alert_id: r for r in await h.service.retry_undelivered()}
    assert results[failed.alert_id].status is AlertStatus.UNDELIVERABLE  # HTTP 500 this time
    assert results[failed.alert_id].attempts == 2
    assert results[crashed].status is AlertStatus.DELIVERED
    assert len(await h.events(EventType.ALERT_UNDELIVERABLE)) == 1  # not logged again
    h.clock.advance(timedelta(minutes=6))
    [late] = await h.service.retry_undelivered()
    assert (late.alert_id, late.status, late.attempts) == (failed.alert_id, AlertStatus.DELIVERED, 3)
    async with h.uow() as uow:
        assert await uow.alerts.list_undelivered(SCOPE) == []


async def test_dispatch_new_events_forwards_each_alert_worthy_event_once_and_keeps_a_cursor() -> None:
    discord = ScriptedChannel("discord")
    h = Harness(discord)
    old = tripped(at=T0 - timedelta(hours=2))
    filled = Event(EventType.ORDER_FILLED, T0 - timedelta(minutes=1), "filled", Severity.INFO, None, "AAPL", {}, SCOPE)
    stop = Event(EventType.STOP_TRIGGERED, T0 - timedelta(minutes=1), "stop", Severity.WARNING, None, "AAPL", {},
                 SCOPE)
    lost = Event(EventType.ALERT_UNDELIVERABLE, T0, "lost", Severity.CRITICAL, None, None, {}, SCOPE)
    await h.log(old, filled, stop, lost, tripped(at=T0 - timedelta(minutes=2)))
    first = await h.service.dispatch_new_events()
    assert sorted(r.alert_type for r in first) == ["breaker_tripped", "stop_triggered"]  # not the 2-hour-old one
    async with h.uow() as uow:
        cursor = await uow.state.load(SCOPE, CURSOR_DOC)
    assert cursor == {"after_id": 5, "seen": [1, 3, 5]}  # the highest id read; the ids handled below it
    h.clock.advance(timedelta(minutes=1))
    late = Event(EventType.WATCHLIST_CHANGED, T0 - timedelta(minutes=5), "", Severity.INFO, None, None,
                 {"added": ["NVDA"]}, SCOPE)
    await h.log(late)
    second = await h.service.dispatch_new_events()
    assert [r.alert_type for r in second if not r.duplicate] == ["watchlist_changed"]
    assert len(discord.sent) == 3


@pytest.mark.parametrize("bad", [0, -1])
def test_max_attempts_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_attempts must be >= 1"):
        AlertService(lambda: InMemoryUnitOfWork(InMemoryDatabase(HashingEmbedder())), {}, AlertRoutes.default(),
                     scope=SCOPE, clock=SimClock(T0), max_attempts=bad)
