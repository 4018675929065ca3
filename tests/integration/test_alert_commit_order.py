"""Alerts follow the event log in commit order: a breaker event committed after a newer event, and stamped with
an older cycle time, is still alerted (once). Postgres hands out ids at insert, so this is the real case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.inmemory.clock import SimClock
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.postgres.uow import PgUnitOfWork
from application.alerts import AlertService
from domain.alerts import AlertRoutes
from domain.events import Event, EventType, Severity
from domain.ports.alerts import Alert
from domain.ports.uow import UnitOfWork

pytestmark = pytest.mark.integration
T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


class Recorder:
    name = "discord"

    def __init__(self) -> None:
        self.sent: list[Alert] = []

    async def send(self, alert: Alert) -> None:
        self.sent.append(alert)


def event(kind: EventType, at: datetime, scope: str, severity: Severity = Severity.CRITICAL) -> Event:
    return Event(kind, at, kind.value, severity, "cycle-1", None, {"trigger": "drawdown", "reason": "x"}, scope)


async def test_an_event_committed_late_with_an_older_time_is_still_alerted(pg_sessionmaker: object,
                                                                          scope: str) -> None:
    def uow() -> UnitOfWork:
        return PgUnitOfWork(pg_sessionmaker, HashingEmbedder())  # type: ignore[arg-type]

    clock = SimClock(T0)
    channel = Recorder()
    service = AlertService(uow, {channel.name: channel}, AlertRoutes.default(), scope=scope, clock=clock)
    await service.dispatch_new_events()                      # the forwarder is running: cursor at the log's end

    slow_cycle = uow()
    await slow_cycle.__aenter__()                            # a long cycle inserts its breaker event first...
    await slow_cycle.events.add([event(EventType.BREAKER_TRIPPED, T0 - timedelta(minutes=40), scope)])
    async with uow() as other:                               # ...another transaction inserts and commits after it
        await other.events.add([event(EventType.SYSTEM_ERROR, T0 + timedelta(minutes=1), scope)])
        await other.commit()
    clock.advance(timedelta(minutes=2))
    first = await service.dispatch_new_events()
    assert [r.alert_type for r in first] == ["system_error"]

    await slow_cycle.commit()                                # committed 40 minutes after its own time
    await slow_cycle.__aexit__(None, None, None)
    clock.advance(timedelta(minutes=1))
    second = await service.dispatch_new_events()
    assert [r.alert_type for r in second] == ["breaker_tripped"]
    assert await service.dispatch_new_events() == []         # forwarded once
    assert sorted(a.type for a in channel.sent) == ["breaker_tripped", "system_error"]
