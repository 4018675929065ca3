"""The evals job on the arq worker against the real Redis of this machine (database 5): the schedule tick starts
the nightly run at 02:00 New York time, a run asked for through the Redis queue (POST /api/evals/run) runs once as
"manual", and a failing run is retried."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from adapters.inmemory.clock import SimClock
from tests.integration.test_worker_redis import (
    TUE,
    Runner,
    make_deps,
    make_worker,
    ny,
    queue,  # noqa: F401 - the fixture
    uow_factory,  # noqa: F401 - the fixture
)

pytestmark = [pytest.mark.integration]


class Evals:
    def __init__(self, *, fail_first: bool = False) -> None:
        self.calls: list[tuple[datetime, str]] = []
        self.fail_first = fail_first

    async def __call__(self, at: datetime, kind: str) -> str:
        self.calls.append((at, kind))
        if self.fail_first and len(self.calls) == 1:
            raise ConnectionError("database restarting")
        return "ok"


async def test_the_schedule_tick_starts_the_nightly_evals_once(redis: Any, uow_factory: Any) -> None:  # noqa: F811
    evals = Evals()
    deps = make_deps(Runner(uow_factory), uow_factory, SimClock(ny(TUE, 2, 0, 40)), evals=evals)
    for _ in range(2):              # a second worker start finds the slot done
        worker = make_worker(deps, schedule=True)
        await worker.async_run()
        await worker.close()
    assert evals.calls == [(ny(TUE, 2), "nightly")]


async def test_a_requested_eval_run_runs_once_as_manual_with_retries(queue: Any, uow_factory: Any) -> None:  # noqa: F811
    evals = Evals(fail_first=True)
    at = ny(TUE, 11, 5)
    job_id = await queue.request_evals(at)
    assert await queue.request_evals(at) == job_id == f"quorum:evals:manual:{at.isoformat()}"
    worker = make_worker(make_deps(Runner(uow_factory), uow_factory, SimClock(at), evals=evals))
    await worker.async_run()
    await worker.close()
    assert evals.calls == [(at, "manual"), (at, "manual")]
