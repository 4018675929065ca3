"""Alert forwarding end to end, as `quorum serve` runs it: an event in the log -> the in-process scheduler's
alerts job -> AlertService (built from settings by `build_alert_service`) -> a local HTTP server standing in
for the Discord webhook. In-memory container ("test" mode), simulated clock, no real sleeping."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dependency_injector import providers

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.clock import SimClock
from adapters.queue import InProcessJobs, WorkerDeps
from application import jobs
from application.schedule import JOB_KINDS, latest_slot
from domain.events import Event, EventType, Severity
from domain.models.trading import Position
from domain.ports.alerts import AlertStatus, StoredAlert
from domain.ports.repositories import EventQuery
from entrypoints.commands.worker import startup_reconcile
from entrypoints.container import build_container, close_container
from entrypoints.settings import Settings, load_settings
from entrypoints.wiring.alerts import build_alert_service
from tests.integration.test_alert_channels import Reply, WebhookServer

pytestmark = pytest.mark.integration
CAL = NyseCalendar()
NY = ZoneInfo("America/New_York")
SCOPE = "live"
SAT = date(2024, 3, 9)


def ny(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), NY).astimezone(UTC)


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class NoCycles:
    async def run_cycle(self, **_: Any) -> Any:
        raise AssertionError("no cycle is due on a Saturday")


class Harness:
    """`InProcessJobs` with the alert service of `settings`; every job but the alerts job already ran."""

    def __init__(self, settings: Settings, container: Any, clock: SimClock) -> None:
        self.clock, self.uow_factory = clock, container.uow_factory()
        self.sleeps: list[float] = []
        alerts = build_alert_service(settings, self.uow_factory, SCOPE, clock=clock, sleep=self.sleep)
        deps = WorkerDeps(runner=NoCycles(), uow_factory=self.uow_factory, calendar=CAL, clock=clock, scope=SCOPE,
                          alerts=alerts, policy=jobs.JobPolicy(max_tries=2, backoff_base=1))
        self.jobs = InProcessJobs(deps, sleep=self.sleep)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def only_alerts_due(self) -> None:
        now = self.clock.now()
        done = {k: latest_slot(k, now, CAL) for k in JOB_KINDS if k != "alerts"}
        async with self.uow_factory() as uow:
            await uow.state.save(SCOPE, jobs.SCHEDULE_DOC, {k: s.isoformat() for k, s in done.items() if s}, at=now)
            await uow.commit()

    async def log(self, event: Event) -> None:
        async with self.uow_factory() as uow:
            await uow.events.add([event])
            await uow.commit()

    async def tick_at(self, at: datetime) -> list[tuple[str, datetime]]:
        self.clock.set(at)
        done = await self.jobs.tick()
        await self.jobs.drain()
        return list(done)

    async def stored(self) -> list[StoredAlert]:
        async with self.uow_factory() as uow:
            return await uow.alerts.list(SCOPE)

    async def events(self, *types: EventType) -> list[Event]:
        async with self.uow_factory() as uow:
            return await uow.events.query(EventQuery(SCOPE, types=types))


def settings_for(webhook: WebhookServer, **alerts: Any) -> Settings:
    return load_settings(env="test", alerts={"discord_webhook_url": webhook.url, **alerts})


def tripped(at: datetime) -> Event:
    return Event(EventType.BREAKER_TRIPPED, at, "circuit breaker tripped (drawdown): drawdown 10.4% > 10%",
                 Severity.CRITICAL, None, None, {"trigger": "drawdown", "reason": "drawdown 10.4% > 10%"}, SCOPE)


def titles(webhook: WebhookServer) -> list[str]:
    return [r["json"]["embeds"][0]["title"] for r in webhook.requests]


async def test_a_breaker_trip_in_the_event_log_reaches_discord_exactly_once(webhook: WebhookServer) -> None:
    settings = settings_for(webhook)
    h = Harness(settings, build_container(settings, "test"), SimClock(ny(SAT, 11, 0, 10)))
    await h.only_alerts_due()
    await h.log(tripped(ny(SAT, 11, 0, 5)))

    assert await h.tick_at(ny(SAT, 11, 0, 10)) == [("alerts", ny(SAT, 11, 0))]
    assert await h.tick_at(ny(SAT, 11, 0, 30)) == []                  # the same minute: nothing due
    assert await h.tick_at(ny(SAT, 11, 1, 10)) == [("alerts", ny(SAT, 11, 1))]
    assert await h.tick_at(ny(SAT, 11, 5, 10)) == [("alerts", ny(SAT, 11, 5))]   # retry slot: nothing to retry
    [title] = titles(webhook)
    assert "breaker" in title.lower()
    [row] = await h.stored()
    assert (row.channel, row.status, row.attempts) == ("discord", AlertStatus.DELIVERED, 1)


async def test_an_undeliverable_alert_is_kept_logged_and_delivered_by_a_later_retry(webhook: WebhookServer) -> None:
    settings = settings_for(webhook, max_attempts=3, backoff_seconds=2.0)
    h = Harness(settings, build_container(settings, "test"), SimClock(ny(SAT, 11, 0, 10)))
    await h.only_alerts_due()
    await h.log(tripped(ny(SAT, 11, 0, 5)))
    webhook.script = [Reply(503)] * 3                                 # Discord is down for the first run

    await h.tick_at(ny(SAT, 11, 0, 10))
    assert len(webhook.requests) == 3 and h.sleeps == [2.0, 4.0]      # tried with back-off, then given up
    [row] = await h.stored()
    assert (row.status, row.attempts) == (AlertStatus.UNDELIVERABLE, 3)
    [lost] = await h.events(EventType.ALERT_UNDELIVERABLE)           # what GET /api/events shows
    assert lost.payload["alert_id"] == row.id and lost.payload["channel"] == "discord"

    await h.tick_at(ny(SAT, 11, 1, 10))                               # not sent again as a new alert
    await h.tick_at(ny(SAT, 11, 5, 5))                                # retry slot, but tried under 5 minutes ago
    assert len(webhook.requests) == 3
    await h.tick_at(ny(SAT, 11, 10, 5))                               # retried, Discord answers again
    assert len(webhook.requests) == 4 and "breaker" in titles(webhook)[-1].lower()
    [row] = await h.stored()
    assert (row.status, row.attempts) == (AlertStatus.DELIVERED, 4)
    await h.tick_at(ny(SAT, 11, 15, 5))
    assert len(webhook.requests) == 4
    assert len(await h.events(EventType.ALERT_UNDELIVERABLE)) == 1


async def test_a_difference_found_at_start_up_is_in_the_event_log_and_alerted(webhook: WebhookServer) -> None:
    """`startup_reconcile` on the live app (simulated paper broker, no positions) with a database that thinks
    it holds 3 AAPL: the broker wins, the difference is logged, and the next alerts run forwards it."""
    settings = settings_for(webhook)
    container = build_container(settings, "test")
    clock = SimClock(ny(SAT, 11, 0, 10))
    async with container.uow_factory()() as uow:
        await uow.positions.replace_all(SCOPE, [Position("AAPL", Decimal(3), Decimal("170.00"))])
        await uow.commit()
    container.clock.override(providers.Object(clock))
    try:
        assert await startup_reconcile(container) == 1
    finally:
        await close_container(container)
    h = Harness(settings, container, clock)
    [diff] = await h.events(EventType.RECONCILIATION_DIFF)
    assert diff.symbol == "AAPL" and "broker holds 0" in diff.message
    async with h.uow_factory() as uow:
        assert await uow.positions.list(SCOPE) == []
    await h.only_alerts_due()
    await h.tick_at(ny(SAT, 11, 0, 20))
    await h.tick_at(ny(SAT, 11, 1, 20))
    [request] = webhook.requests
    assert "AAPL" in str(request["json"])
