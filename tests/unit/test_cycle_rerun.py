"""A failed cycle asked for again runs again (same cycle id) instead of staying "queued"; a completed one is
still asked for once."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from adapters.queue.inprocess_queue import InProcessCycleQueue
from application.cycle_requests import CycleRequestService
from domain.ports.queue import CycleJob
from domain.ports.repositories import CycleRecord
from domain.ports.uow import UnitOfWork

SCOPE = "live"
NOW = datetime(2024, 3, 4, 15, 0, 10, tzinfo=UTC)


class FailsThenCompletes:
    """The cycle handler: the first `failures` runs record the cycle failed, later ones completed."""

    def __init__(self, db: InMemoryDatabase, failures: int) -> None:
        self.db, self.failures = db, failures
        self.runs: list[CycleJob] = []

    def uow(self) -> UnitOfWork:
        return InMemoryUnitOfWork(self.db)

    async def __call__(self, job: CycleJob) -> None:
        self.runs.append(job)
        status = "failed" if len(self.runs) <= self.failures else "completed"
        async with self.uow() as uow:
            await uow.cycles.upsert(CycleRecord(job.cycle_id, SCOPE, job.kind, job.requested_at, status))
            await uow.commit()


async def status(handler: FailsThenCompletes, cycle_id: str) -> str | None:
    async with handler.uow() as uow:
        record = await uow.cycles.get(cycle_id)
    return None if record is None else record.status


async def test_a_failed_cycle_asked_for_again_runs_again_under_its_own_id() -> None:
    handler = FailsThenCompletes(InMemoryDatabase(HashingEmbedder()), failures=2)
    queue = InProcessCycleQueue(handler)
    queue.start()
    service = CycleRequestService(handler.uow, queue, scope=SCOPE, tz=ZoneInfo("America/New_York"))
    try:
        first = await service.request("manual", "AAPL", NOW)
        await queue.join()
        assert await status(handler, first.cycle_id) == "failed"
        for attempt, expected in ((1, "failed"), (2, "completed")):
            again = await service.request("manual", "AAPL", NOW.replace(second=40))
            assert again == (first.cycle_id, False)           # queued again, not "deduplicated"
            await queue.join()
            assert await status(handler, first.cycle_id) == expected
            assert handler.runs[-1].rerun == attempt
        done = await service.request("manual", "AAPL", NOW.replace(second=50))
        await queue.join()
        assert done == (first.cycle_id, True) and len(handler.runs) == 3   # completed: not run a fourth time
        assert [j.cycle_id for j in handler.runs] == [first.cycle_id] * 3
        assert queue.state(first.cycle_id) == "done"
    finally:
        await queue.stop()


async def test_a_cycle_still_queued_is_not_queued_twice() -> None:
    handler = FailsThenCompletes(InMemoryDatabase(HashingEmbedder()), failures=0)
    queue = InProcessCycleQueue(handler)                      # not started: the job waits
    service = CycleRequestService(handler.uow, queue, scope=SCOPE, tz=ZoneInfo("America/New_York"))
    first = await service.request("scheduled", None, NOW)
    assert await service.request("scheduled", None, NOW) == (first.cycle_id, True)
    assert queue.pending == 1
