"""Background job bodies, written against ports only; the arq worker and `quorum serve` both run them.

- `run_cycle_job`: one queued trading cycle (queued -> running -> completed/failed/skipped);
- `market_conditions_job`, `daily_summary_job`, `discovery_job`, `forward_returns_job`: the daily jobs;
- `alerts_job`: every minute, forward the event log's new alerts; every five, retry undelivered ones;
- `with_retries`: retry with exponential back-off, then a final-failure hook (`job_failure_recorder`
  writes a SYSTEM_ERROR event, which the alert service forwards);
- `schedule_tick`: dispatch whatever `application.schedule` says is due and remember the slots.
The nightly backup is I/O on the database server: see `adapters.postgres.backup`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, TypeVar

import structlog

from application.currency import CurrencyDisplay
from application.cycle.trading_cycle import cycle_id_for
from application.market_conditions import MarketConditionService
from application.schedule import JOB_KINDS, JobKind, ScheduleConfig, alert_retry_due, due_jobs
from domain.events import Event, EventType
from domain.models.trading import Side
from domain.money import ZERO, money
from domain.ports.alerts import AlertStatus
from domain.ports.clock import MarketCalendar
from domain.ports.jobs import AlertForwarder, CycleRunner, Discovery
from domain.ports.queue import CycleJob, CycleQueue
from domain.ports.repositories import CycleRecord, EventQuery
from domain.ports.uow import UnitOfWorkFactory
from domain.system_events import cycle_stale, daily_summary, job_failed

log = structlog.get_logger(__name__)
T = TypeVar("T")
SCHEDULE_DOC = "schedule"
FINISHED = frozenset({"completed", "skipped"})
Sleep = Callable[[float], Awaitable[None]]
FinalFailureHook = Callable[[BaseException, int], Awaitable[object]]


@dataclass(frozen=True)
class JobPolicy:
    """How often a failing job is tried and how long to wait in between.

    Attributes:
        max_tries: tries in all, the first included.
        backoff_base: seconds before the second try; each later wait doubles.
        backoff_max: the longest wait, in seconds.
    """

    max_tries: int = 3
    backoff_base: float = 5.0
    backoff_max: float = 300.0

    def __post_init__(self) -> None:
        if self.max_tries < 1 or self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("max_tries must be >= 1 and the back-off must not be negative")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        return float(min(self.backoff_base * 2 ** max(attempt - 1, 0), self.backoff_max))


async def with_retries(fn: Callable[[], Awaitable[T]], *, policy: JobPolicy, on_final_failure: FinalFailureHook,
                       sleep: Sleep = asyncio.sleep, name: str = "job") -> T:
    """Await `fn()` up to `policy.max_tries` times, sleeping `policy.delay(n)` after failed try n.

    Raises:
        Exception: the last error, after `on_final_failure(error, tries)` has run.
    """
    attempt = 1
    while True:
        try:
            return await fn()
        except Exception as exc:
            if attempt >= policy.max_tries:
                log.error("job_failed", job=name, tries=attempt, error=f"{type(exc).__name__}: {exc}")
                await on_final_failure(exc, attempt)
                raise
            delay = policy.delay(attempt)
            log.warning("job_retrying", job=name, attempt=attempt, delay_s=delay, error=f"{type(exc).__name__}: {exc}")
            await sleep(delay)
            attempt += 1


def job_failure_recorder(uow_factory: UnitOfWorkFactory, scope: str, job: str, now: Callable[[], datetime], *,
                         cycle_id: str | None = None) -> Callable[[BaseException, int], Awaitable[Event]]:
    """A final-failure hook: writes a CRITICAL SYSTEM_ERROR event (and marks the cycle failed), returns the event."""

    async def record(exc: BaseException, tries: int) -> Event:
        at, error = now(), f"{type(exc).__name__}: {exc}"
        event = job_failed(at=at, scope=scope, job=job, tries=tries, error=error, cycle_id=cycle_id)
        async with uow_factory() as uow:
            await uow.events.add([event])
            stored = await uow.events.query(EventQuery(scope, types=(EventType.SYSTEM_ERROR,), cycle_id=cycle_id,
                                                       since=at, until=at + timedelta(microseconds=1), limit=50))
            event = next((e for e in stored if e.message == event.message), event)  # with its id, for the alert
            if cycle_id is not None:
                rec = await uow.cycles.get(cycle_id)
                if rec is not None and rec.status not in FINISHED:
                    await uow.cycles.upsert(CycleRecord(rec.id, rec.scope, rec.kind, rec.as_of, "failed",
                                                        rec.symbol, rec.summary, error))
            await uow.commit()
        return event

    return record


async def record_queued(uow_factory: UnitOfWorkFactory, scope: str, job: CycleJob) -> bool:
    """Record `job` as queued unless its cycle is already known. Returns whether it was recorded."""
    async with uow_factory() as uow:
        if await uow.cycles.get(job.cycle_id) is not None:
            return False
        await uow.cycles.upsert(CycleRecord(job.cycle_id, scope, job.kind, job.requested_at, "queued", job.symbol))
        await uow.commit()
    return True


async def enqueue_cycle(queue: CycleQueue, uow_factory: UnitOfWorkFactory, scope: str, job: CycleJob) -> bool:
    """Queue `job` and, when the queue accepted it, record it as queued. Returns whether it was accepted."""
    if not await queue.enqueue(job):
        return False
    await record_queued(uow_factory, scope, job)
    return True


def scheduled_cycle(scope: str, slot: datetime, tz: tzinfo) -> CycleJob:
    """The scheduled cycle of `slot`; its id depends only on the scope and the slot."""
    return CycleJob(cycle_id_for(scope, slot, "scheduled", tz=tz), "scheduled", None, slot)


@dataclass(frozen=True)
class CycleJobOutcome:
    """What became of a cycle job: completed, failed, skipped (by the cycle), duplicate or stale."""

    cycle_id: str
    status: str
    detail: str = ""


async def run_cycle_job(runner: CycleRunner, job: CycleJob, *, uow_factory: UnitOfWorkFactory, scope: str,
                        now: datetime, max_delay: timedelta | None = timedelta(minutes=15)) -> CycleJobOutcome:
    """Run the cycle of `job` as of `job.requested_at`, once.

    A cycle already completed or skipped is not run again; a job more than `max_delay` late is skipped
    (prices it was meant for are gone). Failures inside the cycle are rolled back and recorded by the
    cycle itself; an exception that escapes it propagates so the caller can retry.
    """
    cid = job.cycle_id
    async with uow_factory() as uow:
        rec = await uow.cycles.get(cid)
        if rec is not None and rec.status in FINISHED:
            log.info("cycle_job_duplicate", cycle_id=cid, status=rec.status)
            return CycleJobOutcome(cid, "duplicate", rec.status)
        late = now - job.requested_at
        if max_delay is not None and late > max_delay:
            event = cycle_stale(at=now, scope=scope, cycle_id=cid, kind=job.kind, requested_at=job.requested_at,
                                late=late, symbol=job.symbol)
            msg = event.message
            await uow.events.add([event])
            await uow.cycles.upsert(CycleRecord(cid, scope, job.kind, job.requested_at, "skipped", job.symbol,
                                                {"reason": "stale"}))
            await uow.commit()
            return CycleJobOutcome(cid, "stale", msg)
        await uow.cycles.upsert(CycleRecord(cid, scope, job.kind, job.requested_at, "running", job.symbol))
        await uow.commit()
    result = await runner.run_cycle(kind=job.kind, symbol=job.symbol, as_of=job.requested_at, cycle_id=cid)
    return CycleJobOutcome(cid, result.status, result.error or "")


async def market_conditions_job(conditions: MarketConditionService, uow_factory: UnitOfWorkFactory,
                                as_of: datetime) -> bool:
    """Store the session's market conditions (and past conditions' outcomes). Returns whether a record was stored."""
    async with uow_factory() as uow:
        stored = await conditions.record(uow, as_of=as_of)
        await uow.commit()
    log.info("market_conditions_recorded", as_of=as_of.isoformat(), stored=stored is not None)
    return stored is not None


async def discovery_job(discovery: Discovery | None, as_of: datetime) -> bool:
    """Run discovery as of `as_of`. Returns False (and logs) when discovery is not configured."""
    if discovery is None:
        log.info("discovery not configured", job="discovery", as_of=as_of.isoformat())
        return False
    await discovery.run(as_of)
    return True


async def forward_returns_job(discovery: Discovery | None, as_of: datetime) -> bool:
    """Update the forward returns of past discovery picks. Returns False when discovery is not configured."""
    if discovery is None:
        log.info("discovery not configured", job="forward_returns", as_of=as_of.isoformat())
        return False
    await discovery.update_forward_returns(as_of)
    return True


@dataclass(frozen=True)
class AlertsJobOutcome:
    """What one run of the alerts job did.

    Attributes:
        sent: alerts of new events tried on a channel (alerts already stored before are not counted).
        retried: stored undelivered alerts tried again (0 when no retry was due).
        delivered: of those sent or retried, how many were delivered.
        retry_due: whether this run retried undelivered alerts.
    """

    sent: int
    retried: int
    delivered: int
    retry_due: bool


async def alerts_job(alerts: AlertForwarder | None, slot: datetime,
                     config: ScheduleConfig = ScheduleConfig()) -> AlertsJobOutcome | None:
    """Forward the alerts of new events; on the retry cadence (`alert_retry_due`) also retry undelivered ones.

    Args:
        alerts: the alert service (None: nothing to do; logged).
        slot: the schedule slot this run is for.
        config: the alert cadences.

    Returns:
        What was done, or None when alerts are not configured. An exception (the database is down)
        propagates so that the caller retries the job; a channel failing is not one (the alert is kept).
    """
    if alerts is None:
        log.info("alerts not configured", job="alerts", slot=slot.isoformat())
        return None
    sent = [r for r in await alerts.dispatch_new_events() if not r.duplicate]
    retry = alert_retry_due(slot, config)
    retried = list(await alerts.retry_undelivered()) if retry else []
    delivered = sum(1 for r in (*sent, *retried) if r.status is AlertStatus.DELIVERED)
    outcome = AlertsJobOutcome(len(sent), len(retried), delivered, retry)
    if sent or retried:
        log.info("alerts_forwarded", slot=slot.isoformat(), sent=outcome.sent, retried=outcome.retried,
                 delivered=delivered)
    return outcome


async def daily_summary_job(uow_factory: UnitOfWorkFactory, scope: str, calendar: MarketCalendar,
                            as_of: datetime, *, currency: CurrencyDisplay | None = None) -> Event | None:
    """Write the DAILY_SUMMARY event of the last session closed at or before `as_of`: equity, P&L (net of
    deposits), fills, fees, cycles and LLM spend; equity and P&L also in the `currency` shown beside USD.
    Returns None when that day's summary already exists."""
    day = calendar.previous_session(as_of)
    open_ = calendar.session_open(day)
    async with uow_factory() as uow:
        done = await uow.events.query(EventQuery(scope, types=(EventType.DAILY_SUMMARY,), since=open_, limit=20))
        if any(e.payload.get("day") == day.isoformat() for e in done):
            return None
        before = await uow.equity.list(scope, until=open_)
        today = await uow.equity.list(scope, since=open_, until=as_of)
        fills = await uow.fills.list(scope, since=open_, until=as_of)
        cycles = await uow.events.count(EventQuery(scope, types=(EventType.CYCLE_STARTED,), since=open_, until=as_of))
        llm_usd = await uow.llm_calls.spend(scope, since=open_ - timedelta(hours=12), until=as_of)
        payload: dict[str, Any] = {
            "day": day.isoformat(), "cycles": cycles, "fills": len(fills),
            "buys": sum(1 for f in fills if f.fill.side is Side.BUY),
            "sells": sum(1 for f in fills if f.fill.side is Side.SELL),
            "fees": str(money(sum((f.fill.fee for f in fills), ZERO))), "llm_cost_usd": round(llm_usd, 4),
        }
        start = before[-1] if before else (today[0] if today else None)
        end = today[-1] if today else None
        if start is not None and end is not None:
            pnl = (end.equity - end.net_deposits) - (start.equity - start.net_deposits)
            pct = float(pnl / start.equity) if start.equity else 0.0
            payload.update(start_equity=str(money(start.equity)), end_equity=str(money(end.equity)),
                           pnl=str(money(pnl)), pnl_pct=round(pct, 6))
            shown = await currency.at(as_of) if currency is not None else None
            beside = ""
            if shown is not None and shown.rate is not None:
                q = shown.rate.quote
                beside = f" ({shown.rate.convert(end.equity)} {q}, P&L {shown.rate.convert(pnl):+} {q})"
            if shown is not None and shown.currency != "USD":
                payload["display_currency"] = shown.to_json(end_equity=end.equity, pnl=pnl)
            if end.net_deposits != start.net_deposits:
                payload["net_deposits_moved"] = str(money(end.net_deposits - start.net_deposits))
            text = (f"{day.isoformat()}: equity {money(end.equity)} USD, P&L {money(pnl):+} USD ({pct:+.2%}){beside}, "
                    f"{len(fills)} fills, {cycles} cycles, LLM {llm_usd:.2f} USD")
        else:
            text = f"{day.isoformat()}: no equity recorded (no cycle ran), {len(fills)} fills, {cycles} cycles"
        event = daily_summary(at=as_of, scope=scope, text=text, payload=payload)
        await uow.events.add([event])
        await uow.commit()
    return event


Dispatch = Callable[[JobKind, datetime], Awaitable[bool]]


async def begin_schedule(uow_factory: UnitOfWorkFactory, scope: str, *, at: datetime,
                         kinds: tuple[JobKind, ...] = JOB_KINDS) -> None:
    """Start a scope's schedule at `at`: no slot before it runs (a rehearsal begins at its first session, so the
    after-close jobs of the session before it are not its own). Kinds that already ran keep their slots.

    Args:
        uow_factory: the unit of work.
        scope: the scope whose schedule starts.
        at: the first moment a slot may be due after.
        kinds: the job kinds to start.
    """
    async with uow_factory() as uow:
        doc = await uow.state.load(scope, SCHEDULE_DOC) or {}
        doc.update({k: at.isoformat() for k in kinds if k not in doc})
        await uow.state.save(scope, SCHEDULE_DOC, doc, at=at)
        await uow.commit()


async def schedule_tick(now: datetime, *, uow_factory: UnitOfWorkFactory, scope: str, calendar: MarketCalendar,
                        config: ScheduleConfig, dispatch: Dispatch,
                        kinds: tuple[JobKind, ...] | None = None) -> list[tuple[JobKind, datetime]]:
    """Dispatch every job due at `now` and remember its slot (in the state document `schedule`).

    Returns:
        The (kind, slot) pairs dispatched; a dispatch that raised is logged and tried again next tick.
    """
    async with uow_factory() as uow:
        doc = await uow.state.load(scope, SCHEDULE_DOC) or {}
    last = {k: datetime.fromisoformat(v) for k, v in doc.items() if isinstance(v, str)}
    due = due_jobs(now, calendar, last, config, kinds) if kinds is not None else due_jobs(now, calendar, last, config)
    done: list[tuple[JobKind, datetime]] = []
    for kind, slot in due:
        try:
            await dispatch(kind, slot)
        except Exception as exc:  # noqa: BLE001 - one failing dispatch must not stop the others
            log.error("schedule_dispatch_failed", job=kind, slot=slot.isoformat(), error=f"{type(exc).__name__}: {exc}")
            continue
        done.append((kind, slot))
    if done:
        async with uow_factory() as uow:
            doc = await uow.state.load(scope, SCHEDULE_DOC) or {}
            doc.update({k: s.isoformat() for k, s in done})
            await uow.state.save(scope, SCHEDULE_DOC, doc, at=now)
            await uow.commit()
    return done
