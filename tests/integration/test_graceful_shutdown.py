"""Stopping never cuts a running cycle short: the arq worker on SIGTERM (real Redis) takes no new job and lets the
running cycle finish (`job_completion_wait`); `quorum serve` without Redis drains its in-process jobs the same way,
and its HTTP server stops gracefully first.

SIGTERM is what `docker stop` (and so every deploy) sends. Each test also shows what happens without the wait: the
running cycle is cancelled, so the tests can fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import pytest

from adapters.inmemory.clock import SimClock
from adapters.queue import ArqCycleQueue, InProcessJobs, WorkerDeps, redis_settings, worker_settings
from application import jobs
from application.cycle.trading_cycle import CycleResult
from tests.conftest import TEST_REDIS_URL as REDIS_URL
from tests.integration.test_worker_redis import (  # noqa: F401 - fixtures
    CAL,
    SCOPE,
    TUE,
    Runner,
    cycle_job,
    make_deps,
    ny,
    queue,
    uow_factory,
)

pytestmark = [pytest.mark.integration]
GUARD_S = 60
"""Only a guard against a hang: every wait below ends on an event, never on a timer."""


class GatedRunner(Runner):
    """A cycle runner whose cycle waits at a gate until the test opens it."""

    def __init__(self, factory: Any) -> None:
        super().__init__(factory)
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.cancelled = 0

    async def run_cycle(self, *, kind: str = "scheduled", symbol: str | None = None, as_of: datetime | None = None,
                        cycle_id: str | None = None) -> CycleResult:
        self.started.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return await super().run_cycle(kind=kind, symbol=symbol, as_of=as_of, cycle_id=cycle_id)


async def status(factory: Any, cycle_id: str) -> str | None:
    async with factory() as uow:
        record = await uow.cycles.get(cycle_id)
    return None if record is None else record.status


async def spin(turns: int = 50) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def sigterm_safety_net() -> AsyncIterator[None]:
    """Ignore a SIGTERM nobody handles (so a regression fails the test instead of killing pytest); afterwards
    remove the handlers the worker put on the loop (the loop outlives the test)."""
    loop = asyncio.get_running_loop()
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("wait", ["default", "none"])
async def test_a_worker_told_to_stop_finishes_the_running_cycle_and_starts_no_other(
        wait: str, queue: ArqCycleQueue, uow_factory: Any) -> None:  # noqa: F811
    from arq.worker import Worker

    runner = GatedRunner(uow_factory)
    running, waiting = cycle_job(0), cycle_job(1)
    assert await queue.enqueue(running) and await queue.enqueue(waiting)
    deps = make_deps(runner, uow_factory, SimClock(ny(TUE, 11)))
    settings = worker_settings(deps, redis_settings=redis_settings(REDIS_URL), schedule=False, poll_delay=0.01,
                               max_jobs=1)
    assert settings["job_completion_wait"] >= deps.cycle_timeout.total_seconds()
    if wait == "none":
        settings["job_completion_wait"] = 0      # arq's default: cancel at once
    async with sigterm_safety_net():
        worker = Worker(**settings)              # handles SIGTERM/SIGINT itself, as in `quorum worker`
        run = asyncio.create_task(worker.async_run())
        async with asyncio.timeout(GUARD_S):
            await runner.started.wait()
            signal.raise_signal(signal.SIGTERM)
            await spin()
            if wait == "default":
                assert not run.done() and not worker.allow_pick_jobs
                runner.gate.set()
            with contextlib.suppress(asyncio.CancelledError):
                await run
        await worker.close()
    if wait == "default":
        assert runner.calls == [running.cycle_id] and runner.cancelled == 0
        assert await status(uow_factory, running.cycle_id) == "completed"
        assert worker.jobs_complete == 1
    else:
        assert runner.calls == [] and runner.cancelled == 1
        assert await status(uow_factory, running.cycle_id) != "completed"
    assert await status(uow_factory, waiting.cycle_id) != "completed"
    assert await queue.queued() >= 1                        # the waiting cycle is left for the next worker


def in_process(runner: Runner, factory: Any, now: datetime = ny(TUE, 11)) -> InProcessJobs:
    return InProcessJobs(WorkerDeps(runner=runner, uow_factory=factory, calendar=CAL, clock=SimClock(now),
                                    scope=SCOPE, cycle_max_delay=None))


async def test_serve_drains_the_running_cycle_and_starts_nothing_new(uow_factory: Any) -> None:  # noqa: F811
    runner = GatedRunner(uow_factory)
    jobs_ = in_process(runner, uow_factory)
    jobs_.start()
    running, waiting = cycle_job(0), cycle_job(1)
    assert await jobs.enqueue_cycle(jobs_.queue, uow_factory, SCOPE, running)
    assert await jobs.enqueue_cycle(jobs_.queue, uow_factory, SCOPE, waiting)
    async with asyncio.timeout(GUARD_S):
        await runner.started.wait()
        shutdown = asyncio.create_task(jobs_.shutdown(jobs_.deps.shutdown_wait.total_seconds()))
        await spin()
        assert not shutdown.done() and jobs_.queue.state(running.cycle_id) == "running"
        assert not await jobs_.queue.enqueue(cycle_job(2))                  # closing: nothing new is taken
        assert not await jobs_.dispatch("backup", ny(TUE, 2))
        runner.gate.set()
        await shutdown
    assert runner.calls == [running.cycle_id] and runner.cancelled == 0
    assert await status(uow_factory, running.cycle_id) == "completed"
    assert jobs_.queue.state(waiting.cycle_id) == "queued"                 # not started
    assert await status(uow_factory, waiting.cycle_id) == "queued"


async def test_serve_cancels_a_cycle_that_overruns_the_drain_timeout(uow_factory: Any) -> None:  # noqa: F811
    runner = GatedRunner(uow_factory)
    jobs_ = in_process(runner, uow_factory)
    jobs_.start()
    job = cycle_job(0)
    assert await jobs.enqueue_cycle(jobs_.queue, uow_factory, SCOPE, job)
    async with asyncio.timeout(GUARD_S):
        await runner.started.wait()
        await jobs_.shutdown(0)
    assert runner.cancelled == 1 and await status(uow_factory, job.cycle_id) != "completed"


async def test_quorum_serve_on_sigterm_lets_the_running_cycle_finish_before_it_exits(uow_factory: Any) -> None:  # noqa: F811
    """The real `_serve` (API, scheduler and in-process jobs) on a free port, stopped by SIGTERM mid-cycle."""
    import socket

    import httpx
    from dependency_injector import providers

    from entrypoints.commands import serve as serve_command
    from entrypoints.container import build_container
    from tests.support.explicit_settings import explicit_settings

    runner = GatedRunner(uow_factory)
    reconciled: list[str] = []

    async def reconcile_now() -> int:
        reconciled.append("reconcile")
        return 0

    runner.reconcile_now = reconcile_now  # type: ignore[attr-defined]
    settings = explicit_settings(env="test")     # never the developer's environment: no REDIS_URL, no broker keys
    assert settings.redis_url is None
    container = build_container(settings, "test", scope=SCOPE)
    container.runner.override(providers.Object(runner))
    container.uow_factory.override(providers.Object(uow_factory))
    saturday = ny(date(2024, 3, 9), 11)         # no scheduled cycle is due: the only cycle is the test's
    container.job_deps.override(providers.Object(in_process(runner, uow_factory, saturday).deps))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serving = asyncio.create_task(serve_command._serve(container, "127.0.0.1", port, tick=3600))
    job = cycle_job(0)
    async with asyncio.timeout(GUARD_S), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while True:                              # until the API answers (the server starts on this loop)
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/health")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
            assert not serving.done()
        jobs_ = container.in_process_jobs()
        draining = asyncio.Event()
        drain = jobs_.shutdown

        async def shutdown(grace: float) -> None:
            draining.set()
            await drain(grace)

        jobs_.shutdown = shutdown  # type: ignore[method-assign]
        assert await jobs.enqueue_cycle(jobs_.queue, uow_factory, SCOPE, job)
        await runner.started.wait()
        signal.raise_signal(signal.SIGTERM)
        # the HTTP server stops first, then the jobs drain (or, were they not drained, `_serve` ends)
        drained = asyncio.ensure_future(draining.wait())
        await asyncio.wait({serving, drained}, return_when=asyncio.FIRST_COMPLETED)
        drained.cancel()
        await spin()
        assert not serving.done() and jobs_.queue.state(job.cycle_id) == "running"
        with pytest.raises(httpx.TransportError):
            await client.get("/health")                 # the API no longer answers while the cycle finishes
        runner.gate.set()
        await serving
    assert reconciled == ["reconcile"] and runner.cancelled == 0
    assert await status(uow_factory, job.cycle_id) == "completed"
