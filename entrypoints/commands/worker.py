"""`quorum worker`: the arq worker on Redis. Runs queued cycles and the scheduled jobs; several may run at once.
Everything it runs comes from the container (`container.job_deps()`); it reconciles with the broker at start-up
(`startup_reconcile`, shared with `quorum serve`). Jobs in Redis are JSON, never pickle. On SIGTERM/SIGINT
(`docker stop`) it takes no new job and lets running ones finish, for up to `WorkerDeps.shutdown_wait`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import structlog
import typer
from arq.constants import default_queue_name

from adapters.queue import create_json_pool, redis_settings, worker_settings
from application.startup import reconcile_at_startup, record_process_start
from entrypoints.bootstrap import fail, run, start
from entrypoints.container import Container, close_container
from entrypoints.settings import Settings
from entrypoints.wiring.embeddings import check_embeddings

log = structlog.get_logger(__name__)
HEALTH_INTERVAL_S = 30
NO_REDIS = ("quorum worker needs Redis: set REDIS_URL (or QUORUM_REDIS_URL), e.g. REDIS_URL=redis://localhost:6379/0. "
            "On one machine without Redis, `quorum serve` runs the API, the scheduler and the jobs in one process.")


async def startup_reconcile(container: Container, *, process: str = "quorum") -> int | None:
    """Check the embedding model against the stored vectors (`check_embeddings`), record that `process` started
    (PROCESS_STARTED), then reconcile the database with the broker once (see `application.startup`).

    Returns:
        The number of differences, or None when reconciling failed (logged, SYSTEM_ERROR event).

    Raises:
        ConfigurationError: the configured embedding model is not available, or another model made stored vectors
            (EmbeddingModelMismatchError: run `quorum memory reembed`).
    """
    await check_embeddings(container.embedder(), container.embedding_store())
    await record_process_start(container.uow_factory(), container.scope(), at=container.clock().now(),
                               process=process)
    return await reconcile_at_startup(container.runner(), uow_factory=container.uow_factory(),
                                      scope=container.scope(), now=container.clock().now)


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
    from arq.worker import Worker

    rs = redis_settings(redis_url)
    rs.conn_retries = 2
    try:
        pool = await create_json_pool(rs)
    except Exception as exc:  # noqa: BLE001 - any connection failure gets the same clear message
        fail(f"cannot reach Redis at {rs.host}:{rs.port} (REDIS_URL): {type(exc).__name__}; is it running?", 1)
    await startup_reconcile(container, process="quorum worker")
    deps = container.job_deps()
    worker = Worker(**worker_settings(deps, redis_pool=pool, burst=burst, max_jobs=max_jobs,
                                      health_check_key=health_key(), health_check_interval=HEALTH_INTERVAL_S))
    log.info("worker_started", burst=burst, max_jobs=max_jobs, cycle_minutes=deps.schedule.cycle_minutes,
             shutdown_wait_s=int(deps.shutdown_wait.total_seconds()))
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await worker.async_run()
    finally:
        await worker.close()
        await close_container(container)


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
