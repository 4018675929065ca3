"""Start-up reconciliation: the number of differences is returned; a failure (the broker cannot be read, or an
unexpected error such as the OverflowError a fresh database once hit) does not stop the process but is logged and
written to the event log; only a database that cannot take that event stops it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from application.startup import reconcile_at_startup
from domain.errors import BrokerAuthError, BrokerUnavailableError, DatabaseError
from domain.events import EventType, Severity
from domain.ports.repositories import EventQuery
from entrypoints.container import build_container
from entrypoints.settings import load_settings

AT = datetime(2024, 3, 5, 14, 25, tzinfo=UTC)
SCOPE = "live"


class Live:
    def __init__(self, result: int | Exception) -> None:
        self.result = result
        self.calls = 0

    async def reconcile_now(self) -> int:
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.fixture
def uow_factory() -> Any:
    return build_container(load_settings(env="test"), "test").uow_factory()


async def system_errors(uow_factory: Any) -> list[Any]:
    async with uow_factory() as uow:
        return await uow.events.query(EventQuery(SCOPE, types=(EventType.SYSTEM_ERROR,)))


async def test_the_differences_found_are_returned_and_logged(uow_factory: Any) -> None:
    live = Live(3)
    with capture_logs() as logs:
        assert await reconcile_at_startup(live, uow_factory=uow_factory, scope=SCOPE, now=lambda: AT) == 3
    assert live.calls == 1
    assert [(e["event"], e["differences"]) for e in logs if e["event"] == "startup_reconciled"] == [
        ("startup_reconciled", 3)]
    assert await system_errors(uow_factory) == []


@pytest.mark.parametrize(("error", "severity"), [
    (BrokerUnavailableError("could not connect to Alpaca for account: ConnectError"), Severity.WARNING),
    (BrokerAuthError("Alpaca refused the credentials"), Severity.CRITICAL),
])
async def test_an_unreachable_broker_is_logged_and_recorded_and_the_process_goes_on(
        uow_factory: Any, error: Exception, severity: Severity) -> None:
    with capture_logs() as logs:
        assert await reconcile_at_startup(Live(error), uow_factory=uow_factory, scope=SCOPE, now=lambda: AT) is None
    [line] = [e for e in logs if e["event"] == "startup_reconcile_failed"]
    assert line["log_level"] == "error" and type(error).__name__ in line["error"]
    [event] = await system_errors(uow_factory)
    assert (event.at, event.severity, event.payload["job"]) == (AT, severity, "startup_reconcile")
    assert str(error) in event.message and "next trading cycle reconciles again" in event.message


async def test_an_unexpected_error_is_recorded_as_critical_and_the_process_goes_on(uow_factory: Any) -> None:
    error = OverflowError("date value out of range")
    assert await reconcile_at_startup(Live(error), uow_factory=uow_factory, scope=SCOPE, now=lambda: AT) is None
    [event] = await system_errors(uow_factory)
    assert event.severity is Severity.CRITICAL and "OverflowError: date value out of range" in event.message
    assert "reconciling failed" in event.message


async def test_a_database_that_cannot_take_the_error_event_stops_start_up() -> None:
    class Down:
        async def __aenter__(self) -> Any:
            raise DatabaseError("database is down")

        async def __aexit__(self, *exc: object) -> None:
            return None

    with pytest.raises(DatabaseError, match="database is down"):
        await reconcile_at_startup(Live(DatabaseError("database is down")), uow_factory=Down, scope=SCOPE,
                                   now=lambda: AT)
