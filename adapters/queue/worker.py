"""The arq worker: job functions around `application.jobs`, the schedule tick, retries and the cycle lock.

`worker_settings(deps, ...)` returns the keyword arguments of `arq.Worker` (usable as arq
`WorkerSettings` too). Functions: run_cycle, discovery, forward_returns, market_conditions,
daily_summary, paper_report, backup, alerts, evals (the nightly evals at 02:00 New York time, or a run the API
asked for).
One cron job, `schedule_tick`, runs every minute on one worker (arq makes a
cron run unique across workers) and enqueues what `application.schedule` says is due, with job ids
derived from the slot, so nothing is enqueued twice. A failing job raises `arq.Retry` with
exponential back-off until `policy.max_tries`, then the final-failure hook writes a SYSTEM_ERROR
event. Every cycle runs under a Redis lock (renewed while held), so two cycles never run at once, even across
workers; the alerts job (every minute) runs under a lock of its own and is skipped while another worker holds it.
Jobs are stored as JSON, never pickled (`arq_queue.job_serializer`). On SIGTERM/SIGINT a worker takes no new job
and lets the running ones finish for up to `WorkerDeps.shutdown_wait` (long enough for a cycle) before cancelling
them (a cancelled job is run again by the next worker).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from arq import Retry, cron
from arq.constants import default_queue_name
from arq.worker import func

from adapters.queue.arq_queue import (
    EVALS,
    RUN_CYCLE,
    ArqCycleQueue,
    evals_job_id,
    job_deserializer,
    job_serializer,
    payload_to_job,
)
from adapters.queue.redis_lock import LockNotAcquiredError, RedisLock
from application import jobs
from application.currency import CurrencyDisplay
from application.market_conditions import MarketConditionService
from application.schedule import JOB_KINDS, JobKind, ScheduleConfig
from domain.events import Event
from domain.memory import DEFAULT_SCOPE
from domain.ports.clock import Clock, MarketCalendar
from domain.ports.jobs import AlertForwarder, CycleRunner, Discovery
from domain.ports.uow import UnitOfWorkFactory

log = structlog.get_logger(__name__)
Body = Callable[[], Awaitable[Any]]
FailureNotifier = Callable[[Event], Awaitable[object]]
EvalRunner = Callable[[datetime, str], Awaitable[object]]
"""`await evals(as_of, kind)` runs, stores and gates the eval run of `kind` ("nightly" or "manual")."""
SCHEDULED_KINDS: tuple[JobKind, ...] = tuple(k for k in JOB_KINDS if k != "cycle")
ALERTS_LOCKED = "skipped: another worker holds the alerts lock"
LOCK_MARGIN = timedelta(minutes=1)
"""How much longer than the longest holder a lock lives without renewal."""


@dataclass
class WorkerDeps:
    """What the job functions run on.

    Attributes:
        runner: runs one trading cycle (a `TradingService`).
        uow_factory: units of work on the database.
        calendar: the exchange calendar.
        clock: the current time.
        scope: the scope cycles and events are written under.
        conditions: market conditions service (None: the job only logs).
        discovery: the discovery use case (None: its jobs only log "discovery not configured").
        backup: `await backup(as_of)` makes the nightly backup (None: the job only logs).
        alerts: forwards the event log's alerts to the channels (None: the alerts job is not scheduled).
        evals: runs the nightly evals (None: the evals job is not scheduled).
        paper_report: `await paper_report(as_of)` writes the paper campaign's daily report (None: not scheduled).
        currency: the currency the daily summary also shows (None: USD only).
        schedule: when jobs are due.
        policy: tries and back-off of every job.
        cycle_max_delay: a cycle job later than this is skipped (None: never).
        cycle_timeout: the longest a cycle may run.
        job_timeout: the longest any other job may run.
        alerts_timeout: the longest one run of the alerts job may take (its lock lives a minute longer).
        lock_wait: how long a cycle waits for the lock before the job is retried.
        lock_poll: seconds between two tries for the lock.
        on_failure: called with the SYSTEM_ERROR event of a job's final failure (e.g. to alert at once).
    """

    runner: CycleRunner
    uow_factory: UnitOfWorkFactory
    calendar: MarketCalendar
    clock: Clock
    scope: str = DEFAULT_SCOPE
    conditions: MarketConditionService | None = None
    discovery: Discovery | None = None
    backup: Callable[[datetime], Awaitable[object]] | None = None
    alerts: AlertForwarder | None = None
    evals: EvalRunner | None = None
    paper_report: Callable[[datetime], Awaitable[object]] | None = None
    currency: CurrencyDisplay | None = None
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    policy: jobs.JobPolicy = field(default_factory=jobs.JobPolicy)
    cycle_max_delay: timedelta | None = timedelta(minutes=15)
    cycle_timeout: timedelta = timedelta(minutes=10)
    job_timeout: timedelta = timedelta(minutes=30)
    alerts_timeout: timedelta = timedelta(minutes=10)
    lock_wait: timedelta = timedelta(minutes=10)
    lock_poll: float = 0.1
    on_failure: FailureNotifier | None = None

    def cycle_lock(self, redis: Any) -> RedisLock:
        """The lock every cycle of this scope runs under.

        Its ttl covers the longest a cycle job may hold it (its time limit, `cycle_timeout` + `lock_wait`) plus
        `LOCK_MARGIN`, so it cannot expire under a running cycle even if no renewal gets through; `hold()` also
        renews it every third of that while held. A worker that dies holding it blocks the scope for at most the
        ttl (and PostgreSQL's cycle lock, a transaction lock, goes with the dead connection at once).
        """
        return RedisLock(redis, f"quorum:lock:cycle:{self.scope}",
                         ttl=self.cycle_timeout + self.lock_wait + LOCK_MARGIN, poll_interval=self.lock_poll)

    def alerts_lock(self, redis: Any) -> RedisLock:
        """The lock every run of the alerts job of this scope runs under (one dispatcher at a time)."""
        return RedisLock(redis, f"quorum:lock:alerts:{self.scope}", ttl=self.alerts_timeout + LOCK_MARGIN,
                         poll_interval=self.lock_poll)

    @property
    def shutdown_wait(self) -> timedelta:
        """How long a stopping worker lets its running jobs finish: a whole cycle (`cycle_timeout`) and a margin.

        The container's stop grace period must be longer (docker-compose*.yml `stop_grace_period`).
        """
        return self.cycle_timeout + LOCK_MARGIN

    @property
    def kinds(self) -> tuple[JobKind, ...]:
        """The job kinds to schedule: all of them, but the alerts, evals and paper report jobs only when set."""
        unset = {k for k, dep in (("alerts", self.alerts), ("evals", self.evals),
                                  ("paper_report", self.paper_report)) if dep is None}
        return tuple(k for k in JOB_KINDS if k not in unset)


async def _attempt(ctx: dict[str, Any], deps: WorkerDeps, name: str, body: Body, *, limit: timedelta,
                   cycle_id: str | None = None) -> Any:
    """Run `body` once; on failure raise `Retry` with back-off, or after the last try run the failure hooks."""
    attempt = int(ctx.get("job_try") or 1)
    try:
        async with asyncio.timeout(limit.total_seconds()):
            return await body()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if attempt < deps.policy.max_tries:
            delay = deps.policy.delay(attempt)
            log.warning("job_retrying", job=name, attempt=attempt, delay_s=delay, error=error)
            raise Retry(defer=delay) from exc
        log.error("job_failed", job=name, tries=attempt, error=error)
        event = await jobs.job_failure_recorder(deps.uow_factory, deps.scope, name, deps.clock.now,
                                                cycle_id=cycle_id)(exc, attempt)
        if deps.on_failure is not None:
            await deps.on_failure(event)
        raise


async def run_scheduled_job(deps: WorkerDeps, kind: JobKind, at: datetime) -> Any:
    """Run the body of a scheduled job other than a cycle, as of its slot `at` (no retries here)."""
    if kind == "discovery":
        return await jobs.discovery_job(deps.discovery, at)
    if kind == "forward_returns":
        return await jobs.forward_returns_job(deps.discovery, at)
    if kind == "market_conditions":
        if deps.conditions is None:
            log.info("market conditions not configured", as_of=at.isoformat())
            return False
        return await jobs.market_conditions_job(deps.conditions, deps.uow_factory, at)
    if kind == "daily_summary":
        event = await jobs.daily_summary_job(deps.uow_factory, deps.scope, deps.calendar, at,
                                             currency=deps.currency)
        return event.message if event else None
    if kind in ("backup", "paper_report"):
        body = deps.backup if kind == "backup" else deps.paper_report
        if body is None:
            log.info(f"{kind} not configured", as_of=at.isoformat())
            return None
        return await body(at)
    if kind == "alerts":
        return await jobs.alerts_job(deps.alerts, at, deps.schedule)
    if kind == "evals":
        return await run_evals(deps, at, "nightly")
    raise ValueError(f"{kind!r} is not a scheduled job with a body of its own")


async def run_evals(deps: WorkerDeps, at: datetime, kind: str) -> Any:
    """Run the evals of `kind` ("nightly" or "manual") as of `at` (no retries here)."""
    if deps.evals is None:
        log.info("evals not configured", as_of=at.isoformat())
        return None
    return await deps.evals(at, kind)


def _functions(deps: WorkerDeps) -> list[Any]:
    async def run_cycle(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
        job = payload_to_job(payload)

        async def body() -> str:
            async with deps.cycle_lock(ctx["redis"]).hold(wait=deps.lock_wait.total_seconds()) as lock:
                outcome = await jobs.run_cycle_job(deps.runner, job, uow_factory=deps.uow_factory, scope=deps.scope,
                                                   now=deps.clock.now(), max_delay=deps.cycle_max_delay)
            if lock.lost:
                log.error("cycle_lock_lost", cycle_id=job.cycle_id, key=lock.key, status=outcome.status)
            return outcome.status

        return str(await _attempt(ctx, deps, RUN_CYCLE, body, cycle_id=job.cycle_id,
                                  limit=deps.cycle_timeout + deps.lock_wait))

    def scheduled(kind: JobKind) -> Any:
        async def job(ctx: dict[str, Any], as_of: str) -> str:
            at = datetime.fromisoformat(as_of)
            return repr(await _attempt(ctx, deps, kind, lambda: run_scheduled_job(deps, kind, at),
                                       limit=deps.job_timeout))

        return func(job, name=kind, max_tries=deps.policy.max_tries, timeout=deps.job_timeout + timedelta(seconds=30))

    async def alerts(ctx: dict[str, Any], as_of: str) -> str:
        at = datetime.fromisoformat(as_of)

        async def body() -> Any:
            lock = deps.alerts_lock(ctx["redis"])
            if not await lock.try_acquire():
                log.info("alerts_skipped", slot=as_of, reason="another worker is dispatching alerts")
                return ALERTS_LOCKED
            try:
                return await run_scheduled_job(deps, "alerts", at)
            finally:
                await lock.release()

        return repr(await _attempt(ctx, deps, "alerts", body, limit=deps.alerts_timeout))

    async def evals(ctx: dict[str, Any], as_of: str, kind: str = "nightly") -> str:
        at = datetime.fromisoformat(as_of)
        return repr(await _attempt(ctx, deps, EVALS, lambda: run_evals(deps, at, kind), limit=deps.job_timeout))

    cycle_timeout = deps.cycle_timeout + deps.lock_wait + timedelta(seconds=30)
    return [func(run_cycle, name=RUN_CYCLE, max_tries=deps.policy.max_tries, timeout=cycle_timeout),
            *(scheduled(kind) for kind in SCHEDULED_KINDS if kind not in ("alerts", EVALS)),
            func(evals, name=EVALS, max_tries=deps.policy.max_tries, timeout=deps.job_timeout + timedelta(seconds=30)),
            func(alerts, name="alerts", max_tries=deps.policy.max_tries, keep_result=3600,
                 timeout=deps.alerts_timeout + timedelta(seconds=30))]


def job_id(kind: JobKind, slot: datetime) -> str:
    """The arq job id of a scheduled (non-cycle) job: one per kind and slot."""
    return f"quorum:{kind}:{slot.isoformat()}"


def _tick(deps: WorkerDeps, queue_name: str) -> Any:
    async def schedule_tick(ctx: dict[str, Any]) -> list[str]:
        pool = ctx["redis"]
        queue = ArqCycleQueue(pool, queue_name=queue_name)

        async def dispatch(kind: JobKind, slot: datetime) -> bool:
            if kind == "cycle":
                return await jobs.enqueue_cycle(queue, deps.uow_factory, deps.scope,
                                                jobs.scheduled_cycle(deps.scope, slot, deps.calendar.tz))
            queued = await pool.enqueue_job(kind, slot.isoformat(), _job_id=job_id(kind, slot),
                                            _queue_name=queue_name)
            return queued is not None

        done = await jobs.schedule_tick(deps.clock.now(), uow_factory=deps.uow_factory, scope=deps.scope,
                                        calendar=deps.calendar, config=deps.schedule, dispatch=dispatch,
                                        kinds=deps.kinds)
        return [f"{k}@{s.isoformat()}" for k, s in done]

    return schedule_tick


def worker_settings(deps: WorkerDeps, *, redis_settings: Any = None, redis_pool: Any = None,
                    queue_name: str = default_queue_name, schedule: bool = True,
                    **worker_kwargs: Any) -> dict[str, Any]:
    """Keyword arguments of `arq.Worker` running Quorum's jobs.

    Args:
        deps: what the jobs run on.
        redis_settings: arq `RedisSettings` (or give `redis_pool`).
        redis_pool: an existing `ArqRedis` pool; it must serialise jobs as JSON (`create_json_pool`).
        queue_name: the arq queue.
        schedule: whether this worker runs the every-minute schedule tick (arq keeps each tick unique across
            workers, so every worker may run it).
        worker_kwargs: more `arq.Worker` arguments (burst, poll_delay, max_jobs, handle_signals...).
    """
    crons = [cron(_tick(deps, queue_name), name="schedule_tick", second=0, run_at_startup=True,
                  timeout=60, max_tries=1)] if schedule else []
    settings: dict[str, Any] = {
        "functions": _functions(deps),
        "cron_jobs": crons,
        "queue_name": queue_name,
        "max_tries": deps.policy.max_tries,
        "job_timeout": int(deps.job_timeout.total_seconds()) + 30,
        "keep_result": 24 * 3600,
        "redis_settings": redis_settings,
        "redis_pool": redis_pool,
        "job_serializer": job_serializer,
        "job_deserializer": job_deserializer,
        "job_completion_wait": int(deps.shutdown_wait.total_seconds()),
    }
    settings.update(worker_kwargs)
    return settings


__all__ = ["ALERTS_LOCKED", "EVALS", "SCHEDULED_KINDS", "LockNotAcquiredError", "WorkerDeps", "evals_job_id", "job_id",
           "run_evals", "run_scheduled_job", "worker_settings"]
