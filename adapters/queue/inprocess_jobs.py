"""InProcessJobs: Quorum's jobs inside one process (`quorum serve` without Redis, `quorum rehearse`): cycles
through an `InProcessCycleQueue`, the other scheduled jobs as tasks, each with the same retries and final
failure record as the arq worker's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog

from adapters.queue.arq_queue import EVALS, evals_job_id
from adapters.queue.inprocess_queue import InProcessCycleQueue
from adapters.queue.worker import WorkerDeps, run_evals, run_scheduled_job
from application import jobs
from application.schedule import JobKind
from domain.events import Event
from domain.ports.queue import CycleJob, EvalRequests

log = structlog.get_logger(__name__)
Sleep = Callable[[float], Awaitable[None]]
REMEMBER_DISPATCHED = 10_000


class InProcessJobs(EvalRequests):
    """Runs Quorum's jobs inside this process: cycles through an `InProcessCycleQueue`, the rest as tasks
    (the nightly evals among them; `request_evals` starts a manual eval run the same way).

    The alerts job runs under a lock of its own: a run due while the previous one is still going is skipped.
    `shutdown(grace)` drains: nothing new starts, the running cycle and jobs finish (within `grace` seconds).

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
        self._closing = False

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
        return self._start(f"{kind}:{slot.isoformat()}", lambda: self.run_job(kind, slot))

    def _start(self, key: str, job: Callable[[], Awaitable[Any]]) -> bool:
        """Run `job` as a task once per `key` (the oldest keys are forgotten after `REMEMBER_DISPATCHED`)."""
        if self._closing or key in self._dispatched:
            return False
        self._dispatched[key] = None
        while len(self._dispatched) > REMEMBER_DISPATCHED:
            del self._dispatched[next(iter(self._dispatched))]

        async def logged() -> None:
            with contextlib.suppress(Exception):  # with_retries logged it and wrote the SYSTEM_ERROR event
                await job()

        task = asyncio.create_task(logged(), name=key)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def request_evals(self, requested_at: datetime) -> str:
        """Start a manual eval run as of `requested_at` with retries. Returns its job id (started once)."""
        job_id = evals_job_id("manual", requested_at)

        async def job() -> Any:
            return await jobs.with_retries(lambda: self._timed(run_evals(self.deps, requested_at, "manual")),
                                           policy=self.deps.policy, on_final_failure=self._hook(EVALS),
                                           sleep=self._sleep, name=EVALS)

        self._start(job_id, job)
        return job_id

    async def _timed(self, body: Awaitable[Any]) -> Any:
        async with asyncio.timeout(self.deps.job_timeout.total_seconds()):
            return await body

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

    @property
    def closing(self) -> bool:
        """Whether `shutdown` has begun (nothing new starts)."""
        return self._closing

    async def shutdown(self, grace: float) -> None:
        """Drain before exit: start nothing new, let the running cycle and jobs finish for at most `grace`
        seconds, then cancel what still runs (a cancelled cycle rolls back)."""
        self._closing = True
        running = list(self._tasks)
        log.info("jobs_draining", running_jobs=len(running), grace_s=grace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        await self.queue.close(grace)
        if running:
            await asyncio.wait(running, timeout=max(0.0, deadline - loop.time()))
        await self.stop()

    async def stop(self) -> None:
        """Cancel what still runs."""
        await self.queue.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
