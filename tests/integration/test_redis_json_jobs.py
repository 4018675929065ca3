"""Redis hardening against the real Redis of this machine: jobs are JSON, never pickle, and the Redis the compose
files start asks for a password.

A pickled job planted in Redis (what anyone who can write to Redis could do) is refused by the worker, not
unpickled; jobs and their results round-trip as JSON; an argument JSON cannot hold is refused at enqueue.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from arq.connections import create_pool
from arq.jobs import Job, SerializationError

from adapters.inmemory.clock import SimClock
from adapters.queue import ArqCycleQueue, create_json_pool, job_deserializer, redis_settings
from tests.ci_strict import require_or_skip
from tests.conftest import TEST_REDIS_URL as REDIS_URL
from tests.integration.test_worker_redis import (  # noqa: F401 - fixtures
    TUE,
    Runner,
    cycle_job,
    make_deps,
    make_worker,
    ny,
    queue,
    uow_factory,
)

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
PLANTED: list[str] = []


def _planted_code_ran(note: str) -> str:
    """What the planted pickle calls when it is unpickled."""
    PLANTED.append(note)
    return note


class Planted:
    """Unpickles by calling `_planted_code_ran`: a stand-in for `os.system`."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _planted_code_ran, ("unpickled",)


async def test_a_pickled_job_planted_in_redis_is_refused_not_unpickled(redis: Any, uow_factory: Any) -> None:  # noqa: F811
    PLANTED.clear()
    pickling = await create_pool(redis_settings(REDIS_URL))      # arq's default serializer: pickle
    try:
        await pickling.enqueue_job("run_cycle", Planted(), _job_id="planted")
    finally:
        await pickling.aclose()  # type: ignore[attr-defined]
    raw = await redis.get("arq:job:planted")
    runner = Runner(uow_factory)
    worker = make_worker(make_deps(runner, uow_factory, SimClock(ny(TUE, 11))))
    await worker.async_run()
    await worker.close()
    assert PLANTED == [] and runner.calls == []
    assert (worker.jobs_complete, worker.jobs_failed) == (0, 1)
    pool = await create_json_pool(redis_settings(REDIS_URL))
    try:
        info = await Job("planted", pool, _deserializer=pool.job_deserializer).result_info()
    finally:
        await pool.aclose()  # type: ignore[attr-defined]
    assert info is not None and not info.success and "DeserializationError" in str(info.result)
    pickle.loads(raw)   # noqa: S301 - the control: the payload refused above does run code when unpickled
    assert PLANTED == ["unpickled"]


async def test_cycle_and_eval_jobs_and_their_results_round_trip_as_json(queue: ArqCycleQueue, redis: Any,  # noqa: F811
                                                                        uow_factory: Any) -> None:  # noqa: F811
    ran: list[tuple[datetime, str]] = []

    async def evals(at: datetime, kind: str) -> str:
        ran.append((at, kind))
        return "gate passed"

    job = cycle_job(0)
    asked = ny(TUE, 12)
    assert await queue.enqueue(job)
    eval_id = await queue.request_evals(asked)
    stored = json.loads(await redis.get(f"arq:job:{job.cycle_id}"))
    assert stored["f"] == "run_cycle" and stored["a"] == [{"cycle_id": job.cycle_id, "kind": "scheduled",
                                                           "symbol": None,
                                                           "requested_at": job.requested_at.isoformat()}]
    assert json.loads(await redis.get(f"arq:job:{eval_id}"))["a"] == [asked.isoformat(), "manual"]
    runner = Runner(uow_factory)
    worker = make_worker(make_deps(runner, uow_factory, SimClock(ny(TUE, 11)), evals=evals))
    await worker.async_run()
    await worker.close()
    assert runner.calls == [job.cycle_id] and ran == [(asked, "manual")]
    results = {jid: await Job(jid, queue.pool, _deserializer=job_deserializer).result_info()
               for jid in (job.cycle_id, eval_id)}
    assert {jid: (r.success, r.result) for jid, r in results.items() if r} == {
        job.cycle_id: (True, "completed"), eval_id: (True, repr("gate passed"))}
    assert json.loads(await redis.get(f"arq:result:{job.cycle_id}"))["r"] == "completed"


async def test_an_argument_json_cannot_hold_is_refused_at_enqueue(queue: ArqCycleQueue) -> None:  # noqa: F811
    with pytest.raises(SerializationError):
        await queue.pool.enqueue_job("evals", datetime(2024, 3, 5, tzinfo=UTC), "manual")
    assert await queue.queued() == 0


async def test_the_cycle_queue_refuses_a_pool_that_pickles(redis: Any) -> None:
    pickling = await create_pool(redis_settings(REDIS_URL))
    try:
        with pytest.raises(ValueError, match="JSON"):
            ArqCycleQueue(pickling)
    finally:
        await pickling.aclose()  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["docker-compose.yml", "docker-compose.prod.yml"])
def compose_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """redis-server started with the compose file's own command (its password variable set), on a free port.
    Yields the port, the password and the health check command."""
    server = shutil.which("redis-server")
    require_or_skip(server is not None, "redis-server is not installed (`make redis` needs it too)")
    service = yaml.safe_load((ROOT / request.param).read_text())["services"]["redis"]
    password = "compose-test-redis-password"
    argv = [part.replace(ref, password) if (ref := _var_ref(part)) else part for part in service["command"]]
    assert argv[0] == "redis-server" and "--requirepass" in argv
    port = _free_port()
    proc = subprocess.Popen([str(server), *argv[1:], "--port", str(port), "--bind", "127.0.0.1", "--dir",
                             str(tmp_path), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(500):     # until it answers at all (NOAUTH without the password)
            probe = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True,
                                   check=False)
            if probe.stdout.strip():
                break
        assert "NOAUTH" in probe.stdout, probe.stdout + probe.stderr
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL"
        auth_env = {k: v for k, v in service.get("environment", {}).items() if k == "REDISCLI_AUTH"}
        assert auth_env, "the health check must log in (REDISCLI_AUTH)"
        yield port, password, [test[1].replace("redis-cli", f"redis-cli -p {port}", 1)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _var_ref(text: str) -> str | None:
    start = text.find("${REDIS_PASSWORD")
    return text[start:text.index("}", start) + 1] if start >= 0 else None


def test_the_compose_redis_health_check_passes_only_with_the_password(compose_redis: tuple[int, str, list[str]]
                                                                       ) -> None:
    _, password, health = compose_redis
    anonymous_env = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
    healthy = subprocess.run(["sh", "-c", *health], env={**anonymous_env, "REDISCLI_AUTH": password}, check=False)
    anonymous = subprocess.run(["sh", "-c", *health], env=anonymous_env, check=False)
    assert healthy.returncode == 0 and anonymous.returncode != 0


async def test_the_compose_redis_refuses_clients_without_the_password(compose_redis: tuple[int, str, list[str]]
                                                                      ) -> None:
    port, password, _ = compose_redis
    no_password = redis_settings(f"redis://127.0.0.1:{port}/0")
    no_password.conn_retries = 0
    with pytest.raises(Exception, match=r"(?i)auth"):
        await ArqCycleQueue.connect(no_password)
    authed = await ArqCycleQueue.connect(f"redis://:{password}@127.0.0.1:{port}/0")
    try:
        assert await authed.ping() and await authed.enqueue(cycle_job(0)) and await authed.queued() == 1
    finally:
        await authed.close()
