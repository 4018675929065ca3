"""Contract of the alert repository, run against the in-memory fake and PostgreSQL.

Each test keeps to its own scope, so the shared Postgres database does not leak rows between tests.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.events import EventType, Severity
from domain.ports.alerts import Alert, AlertStatus
from domain.ports.uow import UnitOfWorkFactory

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
MIN = timedelta(minutes=1)


def alert(n: int = 1, *, at: datetime = T0, **kw: object) -> Alert:
    base = Alert(type=EventType.BREAKER_TRIPPED.value, severity=Severity.CRITICAL, title=f"tripped {n}",
                 body="drawdown 12.5% > 10%", at=at, fields={"Trigger": "drawdown", "Drawdown": "-12.50%"},
                 event_id=n, dedupe_key=f"event:{n}")
    return replace(base, **kw)  # type: ignore[arg-type]


async def test_an_added_alert_reads_back_identically_as_pending(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    a = alert(at=datetime(2024, 3, 4, 9, 30, tzinfo=timezone(timedelta(hours=-5))))
    async with uow_factory() as uow:
        alert_id = await uow.alerts.add(scope, a, channel="discord", at=T0)
        await uow.commit()
    async with uow_factory() as uow:
        got = await uow.alerts.get(alert_id)
    assert got is not None
    assert (got.scope, got.channel, got.status, got.attempts, got.last_error) == (
        scope, "discord", AlertStatus.PENDING, 0, None)
    assert got.alert == replace(a, at=a.at.astimezone(UTC))
    assert got.alert.at == T0
    assert got.updated_at == T0


async def test_delivery_state_is_updated_and_a_rollback_undoes_it(uow_factory: UnitOfWorkFactory,
                                                                   scope: str) -> None:
    async with uow_factory() as uow:
        delivered = await uow.alerts.add(scope, alert(1), channel="discord", at=T0)
        failed = await uow.alerts.add(scope, alert(2), channel="email", at=T0)
        await uow.commit()
    async with uow_factory() as uow:
        await uow.alerts.mark_delivered(delivered, attempts=2, at=T0 + MIN)
        await uow.alerts.mark_undeliverable(failed, attempts=5, last_error="SES Throttling", at=T0 + 2 * MIN)
        await uow.rollback()
        assert (await uow.alerts.get(delivered)).status is AlertStatus.PENDING  # type: ignore[union-attr]
        await uow.alerts.mark_delivered(delivered, attempts=2, at=T0 + MIN)
        await uow.alerts.mark_undeliverable(failed, attempts=5, last_error="SES Throttling", at=T0 + 2 * MIN)
        await uow.commit()
    async with uow_factory() as uow:
        d, f = await uow.alerts.get(delivered), await uow.alerts.get(failed)
    assert d is not None and f is not None
    assert (d.status, d.attempts, d.updated_at) == (AlertStatus.DELIVERED, 2, T0 + MIN)
    assert (f.status, f.attempts, f.last_error, f.updated_at) == (
        AlertStatus.UNDELIVERABLE, 5, "SES Throttling", T0 + 2 * MIN)


async def test_an_uncommitted_alert_is_gone_after_the_unit_of_work(uow_factory: UnitOfWorkFactory,
                                                                  scope: str) -> None:
    async with uow_factory() as uow:
        await uow.alerts.add(scope, alert(), channel="discord", at=T0)
    async with uow_factory() as uow:
        assert await uow.alerts.list(scope) == []


async def test_marking_an_unknown_alert_raises_key_error(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        with pytest.raises(KeyError):
            await uow.alerts.mark_delivered(987_654_321, attempts=1, at=T0)
        with pytest.raises(KeyError):
            await uow.alerts.mark_undeliverable(987_654_321, attempts=1, last_error="x", at=T0)


async def test_find_matches_scope_dedupe_key_and_channel(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        alert_id = await uow.alerts.add(scope, alert(7), channel="discord", at=T0)
        assert (await uow.alerts.find(scope, "event:7", "discord")).id == alert_id  # type: ignore[union-attr]
        assert await uow.alerts.find(scope, "event:7", "email") is None
        assert await uow.alerts.find(scope, "event:8", "discord") is None
        assert await uow.alerts.find(scope + "-other", "event:7", "discord") is None


async def test_list_is_newest_first_and_filters_by_status(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        ids = [await uow.alerts.add(scope, alert(i, at=T0 + i * MIN), channel="log", at=T0) for i in range(3)]
        await uow.alerts.mark_delivered(ids[1], attempts=1, at=T0)
        assert [r.id for r in await uow.alerts.list(scope)] == ids[::-1]
        assert [r.id for r in await uow.alerts.list(scope, limit=2)] == [ids[2], ids[1]]
        assert [r.id for r in await uow.alerts.list(scope, status=AlertStatus.DELIVERED)] == [ids[1]]
        assert [r.id for r in await uow.alerts.list(scope, status=AlertStatus.PENDING)] == [ids[2], ids[0]]


async def test_list_undelivered_is_oldest_first_and_honours_before_and_max_attempts(
        uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        pending_old = await uow.alerts.add(scope, alert(1, at=T0), channel="discord", at=T0)
        given_up = await uow.alerts.add(scope, alert(2, at=T0 + MIN), channel="discord", at=T0)
        delivered = await uow.alerts.add(scope, alert(3, at=T0 + 2 * MIN), channel="discord", at=T0)
        pending_new = await uow.alerts.add(scope, alert(4, at=T0 + 3 * MIN), channel="discord", at=T0 + 10 * MIN)
        await uow.alerts.mark_undeliverable(given_up, attempts=5, last_error="HTTP 500", at=T0 + MIN)
        await uow.alerts.mark_delivered(delivered, attempts=1, at=T0 + MIN)
        assert [r.id for r in await uow.alerts.list_undelivered(scope)] == [pending_old, given_up, pending_new]
        assert [r.id for r in await uow.alerts.list_undelivered(scope, before=T0 + 5 * MIN)] == [pending_old, given_up]
        assert [r.id for r in await uow.alerts.list_undelivered(scope, max_attempts=5)] == [pending_old, pending_new]
        assert [r.id for r in await uow.alerts.list_undelivered(scope, limit=1)] == [pending_old]


async def test_naive_times_and_unknown_types_are_refused(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        naive = datetime(2024, 3, 4, 14, 30)  # noqa: DTZ001 - naive on purpose: the repository must refuse it
        with pytest.raises(ValueError, match="alert time must be timezone-aware"):
            await uow.alerts.add(scope, alert(at=naive), channel="log", at=T0)
        with pytest.raises(ValueError, match="at must be timezone-aware"):
            await uow.alerts.add(scope, alert(), channel="log", at=naive)
        with pytest.raises(ValueError, match="'not_an_event_type' is not a valid EventType"):
            await uow.alerts.add(scope, alert(type="not_an_event_type"), channel="log", at=T0)
