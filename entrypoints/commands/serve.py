"""`quorum serve`: the HTTP API, and without Redis also the scheduler and every job, in one process.

- No REDIS_URL (the embedded default): the database is first reconciled with the broker, then cycles go
  to an in-process queue (one at a time, under a lock), a scheduler loop ticks every `--tick` seconds and
  the daily jobs and the every-minute alerts job run as tasks of this process, each with retries and a
  SYSTEM_ERROR event after the last try. Nothing else has to run.
- REDIS_URL set: the API queues cycles on Redis and `quorum worker` processes run them and the
  schedule; this process serves the API only (that is how docker-compose runs it).

On SIGTERM/SIGINT it drains: the HTTP server stops accepting connections and gives open requests
`GRACEFUL_HTTP_S` seconds; then, without Redis, the scheduler stops, nothing new starts, and the running
cycle and jobs finish (for up to the jobs' `shutdown_wait`, long enough for a cycle) before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import structlog
import typer

from adapters.queue import InProcessJobs
from domain.ports.queue import CycleQueue, EvalRequests
from entrypoints.bootstrap import run, start
from entrypoints.commands.worker import startup_reconcile
from entrypoints.container import Container, close_container

log = structlog.get_logger(__name__)
GRACEFUL_HTTP_S = 30
"""How long open HTTP requests may take to finish once the server is told to stop."""


def build_app(container: Container, queue: CycleQueue, evals: EvalRequests | None = None) -> Any:
    """The Litestar API app on the container's system, its cycles sent to `queue` (eval runs to `evals`, or to
    `queue` when it takes them)."""
    from entrypoints.api.app import create_app
    from entrypoints.api.wiring import build_api_services

    return create_app(build_api_services(container, queue, evals=evals))


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
        queue = await container.redis_queue()
        log.info("serve_mode", mode="api only: cycles go to Redis, run `quorum worker` for them and the schedule")
    else:
        await startup_reconcile(container, process="quorum serve")
        in_process = container.in_process_jobs()
        in_process.start()
        queue = in_process.queue
        background.append(asyncio.create_task(in_process.scheduler_loop(tick), name="scheduler"))
        log.info("serve_mode", mode="all in one: API, scheduler and jobs in this process",
                 cycle_minutes=settings.schedule.cycle_minutes)
    server = _server(uvicorn.Config(build_app(container, queue, in_process), host=host, port=port,
                                    log_config=None, lifespan="on", timeout_graceful_shutdown=GRACEFUL_HTTP_S))
    try:
        await server.serve()
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if in_process is not None:
            await in_process.shutdown(in_process.deps.shutdown_wait.total_seconds())
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
