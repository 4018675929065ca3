"""Job bodies on in-memory repositories: retries with back-off, final-failure events, cycle status, daily summary,
the schedule tick."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.calendar.nyse import NyseCalendar
from application import jobs
from application.alerts import DeliveryResult
from application.cycle.trading_cycle import CycleResult
from application.schedule import JobKind, ScheduleConfig
from domain.events import Event, EventType, Severity
from domain.models.trading import Fill, Side
from domain.ports.alerts import AlertStatus
from domain.ports.queue import CycleJob
from domain.ports.repositories import CycleRecord, EquityPoint, EventQuery, FillRecord, LLMCallRecord
from entrypoints.container import build_container
from entrypoints.settings import load_settings

CAL = NyseCalendar()
NY = ZoneInfo("America/New_York")
SCOPE = "live"
TUE = date(2024, 3, 5)


def ny(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), NY).astimezone(UTC)


@pytest.fixture
def uow_factory() -> Any:
    return build_container(load_settings(env="test"), "test").uow_factory()


async def events_of(uow_factory: Any, *types: EventType) -> list[Event]:
    async with uow_factory() as uow:
        return await uow.events.query(EventQuery(SCOPE, types=types, limit=1000))


async def cycle(uow_factory: Any, cycle_id: str) -> CycleRecord | None:
    async with uow_factory() as uow:
        return await uow.cycles.get(cycle_id)


class FakeRunner:
    """Writes the cycle's final status like TradingCycle does, and remembers what it saw."""

    def __init__(self, uow_factory: Any, *, fail: int = 0) -> None:
        self.uow_factory, self.fail = uow_factory, fail
        self.calls: list[tuple[str, datetime]] = []
        self.status_seen: list[str] = []

    async def run_cycle(self, *, kind: str = "scheduled", symbol: str | None = None, as_of: datetime | None = None,
                        cycle_id: str | None = None) -> CycleResult:
        assert as_of is not None and cycle_id is not None
        self.calls.append((cycle_id, as_of))
        async with self.uow_factory() as uow:
            rec = await uow.cycles.get(cycle_id)
            self.status_seen.append(rec.status if rec else "missing")
            if self.fail:
                self.fail -= 1
                raise ConnectionError("database went away")
            await uow.cycles.upsert(CycleRecord(cycle_id, SCOPE, kind, as_of, "completed", symbol))
            await uow.commit()
        return CycleResult(cycle_id, as_of, "completed")


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = jobs.JobPolicy(max_tries=6, backoff_base=5, backoff_max=30)
    assert [policy.delay(n) for n in range(1, 6)] == [5, 10, 20, 30, 30]
    with pytest.raises(ValueError, match="max_tries must be >= 1"):
        jobs.JobPolicy(max_tries=0)


async def test_with_retries_sleeps_between_tries_and_returns_the_first_success() -> None:
    sleeps: list[float] = []
    tries: list[int] = []
    failures: list[Any] = []

    async def flaky() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise TimeoutError("slow broker")
        return "ok"

    async def sleep(s: float) -> None:
        sleeps.append(s)

    async def on_final(exc: BaseException, n: int) -> None:
        failures.append((exc, n))

    result = await jobs.with_retries(flaky, policy=jobs.JobPolicy(max_tries=3, backoff_base=2), sleep=sleep,
                                     on_final_failure=on_final)
    assert (result, len(tries), sleeps, failures) == ("ok", 3, [2.0, 4.0], [])


async def test_final_failure_writes_a_critical_system_error_and_reraises(uow_factory: Any) -> None:
    sleeps: list[float] = []
    hook = jobs.job_failure_recorder(uow_factory, SCOPE, "discovery", lambda: ny(TUE, 10))

    async def broken() -> None:
        raise ValueError("no bars for SPY")

    async def sleep(s: float) -> None:
        sleeps.append(s)

    with pytest.raises(ValueError, match="no bars"):
        await jobs.with_retries(broken, policy=jobs.JobPolicy(max_tries=3, backoff_base=1), on_final_failure=hook,
                                sleep=sleep)
    assert sleeps == [1.0, 2.0]
    [event] = await events_of(uow_factory, EventType.SYSTEM_ERROR)
    assert event.severity is Severity.CRITICAL
    assert event.payload == {"job": "discovery", "tries": 3, "error": "ValueError: no bars for SPY"}
    assert "discovery failed after 3 tries" in event.message


async def test_cycle_job_goes_queued_running_completed_and_never_runs_twice(uow_factory: Any) -> None:
    job = jobs.scheduled_cycle(SCOPE, ny(TUE, 10), NY)
    queued: list[CycleJob] = []

    class Queue:
        async def enqueue(self, j: CycleJob) -> bool:
            if any(q.cycle_id == j.cycle_id for q in queued):
                return False
            queued.append(j)
            return True

    assert await jobs.enqueue_cycle(Queue(), uow_factory, SCOPE, job)
    assert not await jobs.enqueue_cycle(Queue(), uow_factory, SCOPE, job)
    assert (await cycle(uow_factory, job.cycle_id)).status == "queued"  # type: ignore[union-attr]
    runner = FakeRunner(uow_factory)
    out = await jobs.run_cycle_job(runner, job, uow_factory=uow_factory, scope=SCOPE, now=ny(TUE, 10, 1))
    assert (out.status, runner.status_seen, runner.calls) == ("completed", ["running"], [(job.cycle_id, ny(TUE, 10))])
    again = await jobs.run_cycle_job(runner, job, uow_factory=uow_factory, scope=SCOPE, now=ny(TUE, 10, 2))
    assert again.status == "duplicate" and len(runner.calls) == 1


async def test_a_late_cycle_job_is_skipped_not_run(uow_factory: Any) -> None:
    job = jobs.scheduled_cycle(SCOPE, ny(TUE, 10), NY)
    runner = FakeRunner(uow_factory)
    out = await jobs.run_cycle_job(runner, job, uow_factory=uow_factory, scope=SCOPE, now=ny(TUE, 10, 40),
                                   max_delay=timedelta(minutes=15))
    assert out.status == "stale" and runner.calls == []
    assert (await cycle(uow_factory, job.cycle_id)).status == "skipped"  # type: ignore[union-attr]
    [skipped] = await events_of(uow_factory, EventType.CYCLE_SKIPPED)
    assert skipped.payload["reason"] == "stale"


async def test_a_cycle_that_keeps_crashing_ends_failed_with_an_alertable_event(uow_factory: Any) -> None:
    job = jobs.scheduled_cycle(SCOPE, ny(TUE, 10), NY)
    runner = FakeRunner(uow_factory, fail=5)
    hook = jobs.job_failure_recorder(uow_factory, SCOPE, "run_cycle", lambda: ny(TUE, 10, 5), cycle_id=job.cycle_id)

    async def attempt() -> jobs.CycleJobOutcome:
        return await jobs.run_cycle_job(runner, job, uow_factory=uow_factory, scope=SCOPE, now=ny(TUE, 10, 1))

    async def no_sleep(_: float) -> None:
        return None

    with pytest.raises(ConnectionError):
        await jobs.with_retries(attempt, policy=jobs.JobPolicy(max_tries=2), on_final_failure=hook, sleep=no_sleep)
    assert len(runner.calls) == 2
    rec = await cycle(uow_factory, job.cycle_id)
    assert rec is not None and rec.status == "failed" and "database went away" in (rec.error or "")
    [event] = await events_of(uow_factory, EventType.SYSTEM_ERROR)
    assert event.cycle_id == job.cycle_id


async def test_daily_summary_reports_the_days_pnl_fills_and_costs_once(uow_factory: Any) -> None:
    mon_close, wed = ny(TUE - timedelta(days=1), 16), TUE + timedelta(days=1)
    async with uow_factory() as uow:
        await uow.equity.add(SCOPE, EquityPoint(mon_close, Decimal("650.00"), Decimal("650.00"), Decimal(0)))
        await uow.equity.add(SCOPE, EquityPoint(ny(TUE, 10), Decimal("660.00"), Decimal("400.00"), Decimal(260)))
        await uow.equity.add(SCOPE, EquityPoint(ny(TUE, 15, 30), Decimal("655.50"), Decimal("400.00"), Decimal(255)))
        await uow.equity.add(SCOPE, EquityPoint(ny(wed, 10), Decimal("700.00"), Decimal("700.00"), Decimal(0)))
        await uow.fills.add([
            FillRecord(Fill("q-1", "AAPL", Side.BUY, Decimal(1), Decimal("170.00"), Decimal("0.10"), ny(TUE, 10)),
                       SCOPE, "c1"),
            FillRecord(Fill("q-2", "MSFT", Side.SELL, Decimal(1), Decimal("400.00"), Decimal("0.05"), ny(TUE, 11)),
                       SCOPE, "c2")])
        await uow.events.add([Event(EventType.CYCLE_STARTED, ny(TUE, h), "started", scope=SCOPE) for h in (10, 11)])
        await uow.llm_calls.add(LLMCallRecord(ny(TUE, 10), SCOPE, "signal", "anthropic", "m", 10, 5, 0.02, 300, True))
        await uow.commit()
    event = await jobs.daily_summary_job(uow_factory, SCOPE, CAL, ny(TUE, 16, 15))
    assert event is not None and event.type is EventType.DAILY_SUMMARY
    p = event.payload
    assert (p["day"], p["pnl"], p["start_equity"], p["end_equity"]) == ("2024-03-05", "5.50", "650.00", "655.50")
    assert (p["fills"], p["buys"], p["sells"], p["fees"], p["cycles"]) == (2, 1, 1, "0.15", 2)
    assert p["pnl_pct"] == pytest.approx(5.5 / 650, abs=1e-6) and p["llm_cost_usd"] == pytest.approx(0.02)
    assert "+5.50 USD" in event.message
    assert await jobs.daily_summary_job(uow_factory, SCOPE, CAL, ny(TUE, 20)) is None
    assert len(await events_of(uow_factory, EventType.DAILY_SUMMARY)) == 1


async def test_daily_summary_of_a_day_without_cycles_says_so(uow_factory: Any) -> None:
    event = await jobs.daily_summary_job(uow_factory, SCOPE, CAL, ny(TUE, 16, 15))
    assert event is not None and "no equity recorded" in event.message and "pnl" not in event.payload


async def test_discovery_jobs_call_discovery_or_log_that_it_is_not_configured() -> None:
    calls: list[tuple[str, datetime]] = []

    class Discovery:
        async def run(self, as_of: datetime) -> None:
            calls.append(("run", as_of))

        async def update_forward_returns(self, as_of: datetime) -> None:
            calls.append(("forward", as_of))

    at = ny(TUE, 16, 15)
    assert not await jobs.discovery_job(None, at)
    assert not await jobs.forward_returns_job(None, at)
    assert await jobs.discovery_job(Discovery(), at) and await jobs.forward_returns_job(Discovery(), at)
    assert calls == [("run", at), ("forward", at)]


async def test_schedule_tick_dispatches_due_jobs_once_and_retries_a_failed_dispatch(uow_factory: Any) -> None:
    sent: list[tuple[JobKind, datetime]] = []
    broken = {"discovery"}

    async def dispatch(kind: JobKind, slot: datetime) -> bool:
        if kind in broken:
            raise ConnectionError("redis down")
        sent.append((kind, slot))
        return True

    args: dict[str, Any] = {"uow_factory": uow_factory, "scope": SCOPE, "calendar": CAL, "config": ScheduleConfig(),
                            "dispatch": dispatch}
    done = await jobs.schedule_tick(ny(TUE, 9, 35), **args)
    assert ("cycle", ny(TUE, 9, 35)) in done and all(k != "discovery" for k, _ in done)
    assert await jobs.schedule_tick(ny(TUE, 9, 35), **args) == []
    assert await jobs.schedule_tick(ny(TUE, 9, 36), **args) == [("alerts", ny(TUE, 9, 36))]
    broken.clear()
    assert await jobs.schedule_tick(ny(TUE, 9, 37), **args) == [("discovery", ny(TUE, 9, 30)),
                                                                ("alerts", ny(TUE, 9, 37))]
    assert sorted(k for k, _ in sent).count("cycle") == 1


def delivery(n: int, status: AlertStatus = AlertStatus.DELIVERED, *, duplicate: bool = False) -> DeliveryResult:
    return DeliveryResult(n, "discord", status, 1, None, "breaker_tripped", duplicate)


class FakeAlerts:
    """Records the calls of the alerts job; can fail a number of times first."""

    def __init__(self, *, fail: int = 0) -> None:
        self.calls: list[str] = []
        self.fail = fail
        self.new: list[DeliveryResult] = []
        self.undelivered: list[DeliveryResult] = []

    async def dispatch_new_events(self) -> list[DeliveryResult]:
        self.calls.append("dispatch")
        if self.fail:
            self.fail -= 1
            raise ConnectionError("database went away")
        return self.new

    async def retry_undelivered(self) -> list[DeliveryResult]:
        self.calls.append("retry")
        return self.undelivered


async def test_the_alerts_job_forwards_new_events_every_minute_and_retries_every_five() -> None:
    alerts = FakeAlerts()
    calls_by_minute: dict[int, list[str]] = {}
    for minute in range(11):
        alerts.calls.clear()
        await jobs.alerts_job(alerts, ny(TUE, 10, minute))
        calls_by_minute[minute] = list(alerts.calls)
    assert calls_by_minute == {m: ["dispatch", "retry"] if m % 5 == 0 else ["dispatch"] for m in range(11)}
    assert await jobs.alerts_job(None, ny(TUE, 10)) is None


async def test_the_alerts_job_counts_what_it_sent_retried_and_delivered() -> None:
    alerts = FakeAlerts()
    alerts.new = [delivery(1), delivery(2, AlertStatus.UNDELIVERABLE), delivery(3, duplicate=True)]
    alerts.undelivered = [delivery(4), delivery(5, AlertStatus.UNDELIVERABLE)]
    assert await jobs.alerts_job(alerts, ny(TUE, 10, 1)) == jobs.AlertsJobOutcome(2, 0, 1, retry_due=False)
    assert await jobs.alerts_job(alerts, ny(TUE, 10, 5)) == jobs.AlertsJobOutcome(2, 2, 2, retry_due=True)


async def test_a_failing_alerts_job_is_retried_then_recorded_like_any_job(uow_factory: Any) -> None:
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    policy = jobs.JobPolicy(max_tries=3, backoff_base=5)
    hook = jobs.job_failure_recorder(uow_factory, SCOPE, "alerts", lambda: ny(TUE, 10, 6))
    flaky = FakeAlerts(fail=2)
    out = await jobs.with_retries(lambda: jobs.alerts_job(flaky, ny(TUE, 10, 5)), policy=policy,
                                  on_final_failure=hook, sleep=sleep, name="alerts")
    assert out == jobs.AlertsJobOutcome(0, 0, 0, retry_due=True)
    assert flaky.calls == ["dispatch", "dispatch", "dispatch", "retry"] and sleeps == [5.0, 10.0]
    assert await events_of(uow_factory, EventType.SYSTEM_ERROR) == []

    broken = FakeAlerts(fail=99)
    with pytest.raises(ConnectionError):
        await jobs.with_retries(lambda: jobs.alerts_job(broken, ny(TUE, 10, 5)), policy=policy,
                                on_final_failure=hook, sleep=sleep, name="alerts")
    assert broken.calls == ["dispatch"] * 3
    [event] = await events_of(uow_factory, EventType.SYSTEM_ERROR)
    assert event.severity is Severity.CRITICAL
    assert event.payload == {"job": "alerts", "tries": 3, "error": "ConnectionError: database went away"}
