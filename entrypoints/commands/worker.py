"""`quorum worker`: the arq worker on Redis. Runs queued cycles and the scheduled jobs; several may run at once.

Also the job wiring shared with `quorum serve` (`build_worker_deps`): the live system, the schedule
from settings, the nightly backup, the discovery hook and the alert service (the every-minute alerts job
and final failures), and the start-up reconciliation with the broker (`startup_reconcile`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog
import typer
from arq.constants import default_queue_name

from adapters.postgres.backup import backup_database
from adapters.queue import WorkerDeps, redis_settings, worker_settings
from application.alerts import AlertService
from application.jobs import Discovery, JobPolicy
from application.schedule import ScheduleConfig
from application.startup import reconcile_at_startup
from domain.events import Event
from entrypoints.alerts_wiring import build_alert_service
from entrypoints.bootstrap import fail, run, start
from entrypoints.container import Container
from entrypoints.live import LiveApp, build_live_app
from entrypoints.settings import Settings

log = structlog.get_logger(__name__)
HEALTH_INTERVAL_S = 30
NO_REDIS = ("quorum worker needs Redis: set REDIS_URL (or QUORUM_REDIS_URL), e.g. REDIS_URL=redis://localhost:6379/0. "
            "On one machine without Redis, `quorum serve` runs the API, the scheduler and the jobs in one process.")


def schedule_config(settings: Settings) -> ScheduleConfig:
    """The job timing from QUORUM_SCHEDULE__*."""
    s = settings.schedule
    return ScheduleConfig(cycle_minutes=s.cycle_minutes, discovery_hours=s.discovery_hours)


def make_backup(settings: Settings, container: Container) -> Callable[[datetime], Awaitable[object]]:
    """The nightly backup: pg_dump of the configured (or embedded) database into QUORUM_SCHEDULE__BACKUP_DIR."""

    async def backup(at: datetime) -> object:
        url, _ = container.database()
        path = await backup_database(url, settings.schedule.backup_dir, keep_days=settings.schedule.backup_keep_days,
                                     now=at)
        return str(path)

    return backup


def discovery_service(settings: Settings, container: Container, live: LiveApp) -> Discovery | None:
    """The discovery use case for the scheduled discovery and forward-return jobs (and the API in `serve`).

    None when discovery is not part of this build: those jobs then log "discovery not configured".
    """
    try:
        from entrypoints.live import build_discovery
    except ImportError:
        return None
    return build_discovery(settings, container, live.market, live.calendar, clock=live.clock, scope=live.scope)


def alert_notifier(service: AlertService) -> Callable[[Event], Awaitable[object]]:
    """Forwards a job's final-failure event to the alert channels at once.

    The alerts job forwards it too from the event log; the alert service never sends one alert twice.
    """

    async def notify(event: Event) -> object:
        try:
            return await service.dispatch([event])
        except Exception as exc:  # noqa: BLE001 - the event is in the log; the alerts job forwards it later
            log.error("alert_dispatch_failed", error=f"{type(exc).__name__}: {exc}")
            return None

    return notify


def build_worker_deps(settings: Settings, container: Container, live: LiveApp,
                      discovery: Discovery | None) -> WorkerDeps:
    """Everything the job functions need, on the live system."""
    alerts = build_alert_service(settings, container.uow_factory(), live.scope, clock=live.clock)
    return WorkerDeps(
        runner=live,
        uow_factory=container.uow_factory(),
        calendar=live.calendar,
        clock=live.clock,
        scope=live.scope,
        conditions=live.conditions,
        discovery=discovery,
        backup=make_backup(settings, container),
        schedule=schedule_config(settings),
        policy=JobPolicy(),
        alerts=alerts,
        on_failure=alert_notifier(alerts),
    )


async def startup_reconcile(container: Container, live: LiveApp) -> int | None:
    """Reconcile the database with the broker once at start-up (see `application.startup`).

    Returns:
        The number of differences, or None when the broker could not be read (logged, SYSTEM_ERROR event).
    """
    return await reconcile_at_startup(live, uow_factory=container.uow_factory(), scope=live.scope,
                                      now=live.clock.now)


def health_key() -> str:
    """The Redis key this worker (this host or container) refreshes while it runs."""
    return f"{default_queue_name}:health-check:{socket.gethostname()}"


async def _check(redis_url: str) -> int:
    from arq.worker import async_check_health

    rs = redis_settings(redis_url)
    rs.conn_retries = 0
    return await async_check_health(rs, health_check_key=health_key())


async def _run_worker(settings: Settings, container: Container, redis_url: str, *, burst: bool,
                      max_jobs: int) -> None:
    from arq.connections import create_pool
    from arq.worker import Worker

    rs = redis_settings(redis_url)
    rs.conn_retries = 2
    try:
        pool = await create_pool(rs)
    except Exception as exc:  # noqa: BLE001 - any connection failure gets the same clear message
        fail(f"cannot reach Redis at {rs.host}:{rs.port} (REDIS_URL): {type(exc).__name__}; is it running?", 1)
    live = await build_live_app(settings, container)
    await startup_reconcile(container, live)
    deps = build_worker_deps(settings, container, live, discovery_service(settings, container, live))
    worker = Worker(**worker_settings(deps, redis_pool=pool, burst=burst, max_jobs=max_jobs,
                                      health_check_key=health_key(), health_check_interval=HEALTH_INTERVAL_S))
    log.info("worker_started", burst=burst, max_jobs=max_jobs, cycle_minutes=deps.schedule.cycle_minutes)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await worker.async_run()
    finally:
        await worker.close()
        await live.close()


def worker(
    burst: bool = typer.Option(False, "--burst", help="exit once the queue is empty (for tests and one-off runs)"),
    max_jobs: int = typer.Option(10, "--max-jobs", min=1, help="jobs run at once (cycles still one at a time)"),
    check: bool = typer.Option(False, "--check", help="health check: exit 0 if this host's worker reported in the "
                               f"last {HEALTH_INTERVAL_S} s, 1 otherwise (for container health checks)"),
) -> None:
    """Run the arq worker: queued cycles, scheduled cycles, discovery, forward returns, market conditions,
    the daily summary, the nightly backup and alert forwarding. Reconciles with the broker at start-up.
    Needs REDIS_URL; start more workers to scale out."""
    settings, container = start()
    if not settings.redis_url:
        fail(NO_REDIS)
    if check:
        raise typer.Exit(run(_check(settings.redis_url)))
    run(_run_worker(settings, container, settings.redis_url, burst=burst, max_jobs=max_jobs))
