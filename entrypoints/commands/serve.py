"""`quorum serve`: the HTTP API, and without Redis also the scheduler and every job, in one process.

- No REDIS_URL (the embedded default): the database is first reconciled with the broker, then cycles go
  to an in-process queue (one at a time, under a lock), a scheduler loop ticks every `--tick` seconds and
  the daily jobs and the every-minute alerts job run as tasks of this process, each with retries and a
  SYSTEM_ERROR event after the last try. Nothing else has to run.
- REDIS_URL set: the API queues cycles on Redis and `quorum worker` processes run them and the
  schedule; this process serves the API only (that is how docker-compose runs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any

import structlog
import typer

from adapters.inmemory.inprocess_queue import InProcessCycleQueue
from adapters.queue import ArqCycleQueue, WorkerDeps, run_scheduled_job
from application import jobs
from application.schedule import JobKind
from domain.events import Event
from domain.ports.queue import CycleJob, CycleQueue
from entrypoints.bootstrap import run, start
from entrypoints.commands.worker import startup_reconcile
from entrypoints.container import Container, close_container

log = structlog.get_logger(__name__)
Sleep = Callable[[float], Awaitable[None]]
REMEMBER_DISPATCHED = 10_000


class InProcessJobs:
    """Runs Quorum's jobs inside this process: cycles through an `InProcessCycleQueue`, the rest as tasks.

    The alerts job runs under a lock of its own: a run due while the previous one is still going is skipped.

    Args:
        deps: what the jobs run on (the same as the arq worker's).
        sleep: how to wait between retries (tests pass a fake).
    """

    def __init__(self, deps: WorkerDeps, *, sleep: Sleep = asyncio.sleep) -> None:
        self.deps = deps
        self._sleep = sleep
        self.queue = InProcessCycleQueue(self.run_cycle)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dispatched: dict[str, None] = {}      # insertion-ordered, the oldest forgotten first
        self.alerts_lock = asyncio.Lock()

    def _hook(self, name: str, cycle_id: str | None = None) -> jobs.FinalFailureHook:
        record = jobs.job_failure_recorder(self.deps.uow_factory, self.deps.scope, name, self.deps.clock.now,
                                           cycle_id=cycle_id)

        async def hook(exc: BaseException, tries: int) -> Event:
            event = await record(exc, tries)
            if self.deps.on_failure is not None:
                await self.deps.on_failure(event)
            return event

        return hook

    async def run_cycle(self, job: CycleJob) -> jobs.CycleJobOutcome:
        """Run one queued cycle with retries (the queue already holds the cycle lock)."""
        d = self.deps

        async def attempt() -> jobs.CycleJobOutcome:
            async with asyncio.timeout(d.cycle_timeout.total_seconds()):
                return await jobs.run_cycle_job(d.runner, job, uow_factory=d.uow_factory, scope=d.scope,
                                                now=d.clock.now(), max_delay=d.cycle_max_delay)

        return await jobs.with_retries(attempt, policy=d.policy, on_final_failure=self._hook("run_cycle", job.cycle_id),
                                       sleep=self._sleep, name="run_cycle")

    async def run_job(self, kind: JobKind, at: datetime) -> Any:
        """Run one scheduled job (not a cycle) with retries; the alerts job only if no other run holds its lock."""
        limit = self.deps.alerts_timeout if kind == "alerts" else self.deps.job_timeout

        async def attempt() -> Any:
            async with asyncio.timeout(limit.total_seconds()):
                return await run_scheduled_job(self.deps, kind, at)

        async def with_retries() -> Any:
            return await jobs.with_retries(attempt, policy=self.deps.policy, on_final_failure=self._hook(kind),
                                           sleep=self._sleep, name=kind)

        if kind != "alerts":
            return await with_retries()
        if self.alerts_lock.locked():
            log.info("alerts_skipped", slot=at.isoformat(), reason="the previous alerts run is still going")
            return None
        async with self.alerts_lock:
            return await with_retries()

    async def dispatch(self, kind: JobKind, slot: datetime) -> bool:
        """Start the job due at `slot` (once per kind and slot). Returns whether it was started."""
        if kind == "cycle":
            return await jobs.enqueue_cycle(self.queue, self.deps.uow_factory, self.deps.scope,
                                            jobs.scheduled_cycle(self.deps.scope, slot, self.deps.calendar.tz))
        key = f"{kind}:{slot.isoformat()}"
        if key in self._dispatched:
            return False
        self._dispatched[key] = None
        while len(self._dispatched) > REMEMBER_DISPATCHED:
            del self._dispatched[next(iter(self._dispatched))]
        task = asyncio.create_task(self._run_logged(kind, slot), name=key)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run_logged(self, kind: JobKind, slot: datetime) -> None:
        with contextlib.suppress(Exception):  # with_retries logged it and wrote the SYSTEM_ERROR event
            await self.run_job(kind, slot)

    async def tick(self) -> list[tuple[JobKind, datetime]]:
        """Dispatch whatever is due now."""
        d = self.deps
        return await jobs.schedule_tick(d.clock.now(), uow_factory=d.uow_factory, scope=d.scope, calendar=d.calendar,
                                        config=d.schedule, dispatch=self.dispatch, kinds=d.kinds)

    async def scheduler_loop(self, every: float) -> None:
        """Tick every `every` seconds until cancelled."""
        while True:
            try:
                await self.tick()
            except Exception as exc:  # noqa: BLE001 - the scheduler must survive a database hiccup
                log.error("schedule_tick_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(every)

    def start(self) -> None:
        """Start consuming the cycle queue."""
        self.queue.start()

    async def drain(self) -> None:
        """Wait for the queued cycles and the running jobs."""
        await self.queue.join()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel what still runs."""
        await self.queue.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)


def build_app(container: Container, queue: CycleQueue) -> Any:
    """The Litestar API app on the container's system, its cycles sent to `queue`."""
    from entrypoints.api.app import create_app
    from entrypoints.api.wiring import build_api_services

    return create_app(build_api_services(container, queue))


def _server(config: Any) -> Any:
    """A uvicorn server that stops gracefully on SIGINT/SIGTERM and then lets `_serve` clean up.

    (uvicorn re-raises the signal once it has stopped, which would kill the process before the
    in-process jobs and the broker connections are closed.)
    """
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server(config)


async def _serve(container: Container, host: str, port: int, tick: float) -> None:
    import uvicorn

    settings = container.settings()
    in_process: InProcessJobs | None = None
    queue: CycleQueue
    background: list[asyncio.Task[None]] = []
    if settings.redis_url:
        queue = await ArqCycleQueue.connect(settings.redis_url)
        log.info("serve_mode", mode="api only: cycles go to Redis, run `quorum worker` for them and the schedule")
    else:
        await startup_reconcile(container)
        in_process = InProcessJobs(container.job_deps())
        in_process.start()
        queue = in_process.queue
        background.append(asyncio.create_task(in_process.scheduler_loop(tick), name="scheduler"))
        log.info("serve_mode", mode="all in one: API, scheduler and jobs in this process",
                 cycle_minutes=settings.schedule.cycle_minutes)
    server = _server(uvicorn.Config(build_app(container, queue), host=host, port=port,
                                    log_config=None, lifespan="on"))
    try:
        await server.serve()
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if in_process is not None:
            await in_process.stop()
        if isinstance(queue, ArqCycleQueue):
            await queue.close()
        await close_container(container)
        log.info("serve_stopped")


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0 in a container)"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="port to listen on"),
    tick: float = typer.Option(20.0, "--tick", min=1.0, help="seconds between two scheduler ticks (no Redis)"),
) -> None:
    """Serve the HTTP API; without REDIS_URL also run the scheduler and every job in this process."""
    _, container = start()
    run(_serve(container, host, port, tick))
