"""InProcessCycleQueue: the `CycleQueue` port inside one process (`quorum serve`), no Redis.

An asyncio queue drained by one consumer task, each job run under an `asyncio.Lock` that anything
else in the process that runs a cycle can share, so two cycles never run at once. A cycle id is
accepted once for the life of the process (queued, running or done); the job handler itself checks
the cycle repository, which remembers across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Literal

import structlog

from domain.ports.queue import CycleJob, CycleQueue

log = structlog.get_logger(__name__)
JobState = Literal["queued", "running", "done", "failed"]
Handler = Callable[[CycleJob], Awaitable[object]]


class InProcessCycleQueue(CycleQueue):
    """Implements `CycleQueue` with an asyncio queue and one consumer.

    Args:
        handler: awaited for each job, one at a time (retries are its business: an exception is logged
            and the job marked failed).
        lock: the lock jobs run under (a new one by default).
        remember: how many finished cycle ids are remembered for de-duplication.
    """

    def __init__(self, handler: Handler, *, lock: asyncio.Lock | None = None, remember: int = 100_000) -> None:
        self._handler = handler
        self.lock = lock or asyncio.Lock()
        self._remember = remember
        self._queue: asyncio.Queue[CycleJob] = asyncio.Queue()
        self._states: OrderedDict[str, JobState] = OrderedDict()
        self._consumer: asyncio.Task[None] | None = None

    async def enqueue(self, job: CycleJob) -> bool:
        """Queue `job` unless its cycle id was seen. Returns whether it was queued."""
        if job.cycle_id in self._states:
            return False
        self._states[job.cycle_id] = "queued"
        self._forget_old()
        await self._queue.put(job)
        return True

    def state(self, cycle_id: str) -> JobState | None:
        """queued, running, done or failed; None for an id this process has not seen (or has forgotten)."""
        return self._states.get(cycle_id)

    @property
    def pending(self) -> int:
        """Jobs waiting to run."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the consumer task (idempotent)."""
        if self._consumer is None or self._consumer.done():
            self._consumer = asyncio.create_task(self._consume(), name="inprocess-cycle-queue")

    async def join(self) -> None:
        """Wait until every queued job has been handled."""
        await self._queue.join()

    async def stop(self) -> None:
        """Cancel the consumer; a job in progress is cancelled (its cycle rolls back)."""
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None

    async def _consume(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                async with self.lock:
                    self._states[job.cycle_id] = "running"
                    await self._handler(job)
                self._states[job.cycle_id] = "done"
            except Exception as exc:  # noqa: BLE001 - the consumer must outlive a failing job
                self._states[job.cycle_id] = "failed"
                log.error("cycle_job_failed", cycle_id=job.cycle_id, error=f"{type(exc).__name__}: {exc}")
            finally:
                self._queue.task_done()

    def _forget_old(self) -> None:
        while len(self._states) > self._remember:
            oldest = next(iter(self._states))
            if self._states[oldest] in ("queued", "running"):
                break
            self._states.popitem(last=False)
