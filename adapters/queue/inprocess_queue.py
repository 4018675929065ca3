"""InProcessCycleQueue: the `CycleQueue` port inside one process (`quorum serve`), no Redis.

An asyncio queue drained by one consumer task, each job run under an `asyncio.Lock` that anything
else in the process that runs a cycle can share, so two cycles never run at once. A cycle id is
accepted once for the life of the process (queued, running or done); the job handler itself checks
the cycle repository, which remembers across restarts. `close(grace)` lets the running job finish (a
cycle is never cut short by a shutdown unless it overruns the grace period) and starts no other.
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
        self._busy = False
        self._closing = False

    async def enqueue(self, job: CycleJob) -> bool:
        """Queue `job` unless its cycle id was seen or the queue is closing. Returns whether it was queued."""
        if self._closing or job.queue_key in self._states:
            return False
        self._states[job.queue_key] = "queued"
        self._forget_old()
        await self._queue.put(job)
        return True

    def state(self, cycle_id: str) -> JobState | None:
        """queued, running, done or failed (its latest rerun's); None for an id this process has not seen (or has
        forgotten)."""
        runs = [k for k in self._states if k == cycle_id or k.startswith(f"{cycle_id}#rerun-")]
        return self._states[runs[-1]] if runs else None

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

    async def close(self, grace: float) -> None:
        """Take no new job and let the running one finish, for at most `grace` seconds; then cancel it.

        Jobs still waiting are not started (their cycle ids stay "queued"; the cycle repository has them).
        """
        self._closing = True
        consumer = self._consumer
        if consumer is None:
            return
        if not self._busy:
            consumer.cancel()
        elif not (await asyncio.wait({consumer}, timeout=grace))[0]:
            log.warning("cycle_job_cancelled_on_shutdown", grace_s=grace)
            consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        self._consumer = None
        if self.pending:
            log.info("cycle_jobs_not_started", pending=self.pending)

    async def stop(self) -> None:
        """Cancel the consumer; a job in progress is cancelled (its cycle rolls back)."""
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None

    async def _consume(self) -> None:
        while not self._closing:
            job = await self._queue.get()
            self._busy = True
            try:
                async with self.lock:
                    self._states[job.queue_key] = "running"
                    await self._handler(job)
                self._states[job.queue_key] = "done"
            except Exception as exc:  # noqa: BLE001 - the consumer must outlive a failing job
                self._states[job.queue_key] = "failed"
                log.error("cycle_job_failed", cycle_id=job.cycle_id, error=f"{type(exc).__name__}: {exc}")
            finally:
                self._busy = False
                self._queue.task_done()

    def _forget_old(self) -> None:
        while len(self._states) > self._remember:
            oldest = next(iter(self._states))
            if self._states[oldest] in ("queued", "running"):
                break
            self._states.popitem(last=False)
