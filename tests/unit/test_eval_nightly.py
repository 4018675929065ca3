"""The nightly eval job on in-memory storage: stored runs, the baseline of a key, the alert on a regression, and
how the scheduler and the in-process jobs of `quorum serve` start it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.clock import SimClock
from adapters.queue import InProcessJobs, WorkerDeps, run_scheduled_job
from application.evals.baseline import BaselineKey
from application.evals.nightly import COMMITTED, EvalJob, eval_run_id
from application.evals.results import EvalDocument, parse_document
from domain.events import Event, EventType
from domain.ports.repositories import EventQuery
from entrypoints.container import build_container
from entrypoints.settings import load_settings

CAL = NyseCalendar()
NY = ZoneInfo("America/New_York")
SCOPE = "live"
TUE = date(2024, 3, 5)


def ny(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), NY).astimezone(UTC)


def scores(seed: int, flip: float = 0.0) -> dict[str, float]:
    """400 rows, about 60% right; `flip` of the right answers made wrong."""
    rng = np.random.default_rng(seed)
    hits = rng.random(400) < 0.6
    drop = np.random.default_rng(seed + 1).random(400) < flip
    return {f"r{i:03d}": float(h and not d) for i, (h, d) in enumerate(zip(hits, drop, strict=True))}


def document(flip: float = 0.0, *, version: str = "v1", answers: float = 0.5) -> dict[str, Any]:
    return {"schema": 1, "llm": "offline", "datasets": {"signal": version},
            "suites": {"signal": {"scores": scores(1, flip), "metrics": {"brier": {"value": float("nan")}},
                                  "answers": [{"row": "r000", "confidence": answers}]}},
            "memorisation": {}}


def key(doc: EvalDocument) -> BaselineKey:
    return BaselineKey(f"bk1-{doc.llm_label}-{doc.datasets['signal']}", {"datasets": doc.datasets})


class Suites:
    """Stands in for the suite runner: returns the next document, remembers the LLM asked for."""

    def __init__(self, *docs: dict[str, Any]) -> None:
        self.docs, self.asked = list(docs), []

    async def __call__(self, llm: str) -> dict[str, Any]:
        self.asked.append(llm)
        return self.docs.pop(0)


class Env:
    def __init__(self, *docs: dict[str, Any], committed: dict[str, Any] | None = None) -> None:
        self.uow_factory = build_container(load_settings(env="test"), "test").uow_factory()
        self.clock = SimClock(ny(TUE, 2, 0, 5))
        self.suites = Suites(*docs)
        self.notified: list[Event] = []

        async def notify(event: Event) -> None:
            self.notified.append(event)

        self.job = EvalJob(run_suites=self.suites, key_of=key, uow_factory=self.uow_factory, clock=self.clock,
                           scope=SCOPE, llm="offline", git_sha="abc123", notify=notify,
                           committed_baseline=lambda: None if committed is None else parse_document(committed))

    async def runs(self) -> list[Any]:
        async with self.uow_factory() as uow:
            return await uow.eval_runs.list(SCOPE)

    async def events(self) -> list[Event]:
        async with self.uow_factory() as uow:
            return await uow.events.query(EventQuery(SCOPE, types=(EventType.EVAL_REGRESSION,)))


async def test_the_first_run_of_a_key_is_held_to_the_committed_baseline_and_becomes_the_keys_baseline() -> None:
    env = Env(document(), committed=document())
    outcome = await env.job.run(ny(TUE, 2))
    assert (outcome.verdict, outcome.baseline, outcome.kind) == ("ok", COMMITTED, "baseline")
    [run] = await env.runs()
    assert (run.id, run.kind, run.verdict, run.git_sha, run.llm) == (
        eval_run_id(SCOPE, "nightly", ny(TUE, 2)), "baseline", "ok", "abc123", "offline")
    assert run.baseline_key == "bk1-offline-v1" and run.at == env.clock.now()
    assert run.comparison["baseline"] == COMMITTED and run.comparison["suites"]["signal"]["status"] == "ok"
    assert run.document["suites"]["signal"]["metrics"]["brier"]["value"] is None         # NaN stored as null
    assert run.document["suites"]["signal"]["answers"] == [{"row": "r000", "confidence": 0.5}]  # kept as given
    assert env.suites.asked == ["offline"] and await env.events() == [] and env.notified == []


async def test_later_nights_are_held_to_the_stored_baseline_of_their_key() -> None:
    env = Env(document(), document(answers=0.7), committed=document(flip=0.5))
    first = await env.job.run(ny(TUE, 2))
    second = await env.job.run(ny(TUE + timedelta(days=1), 2))
    assert first.kind == "baseline"
    assert (second.verdict, second.baseline, second.kind) == ("ok", f"run {first.run_id}", "nightly")
    assert [r.kind for r in await env.runs()] == ["nightly", "baseline"]


async def test_a_regression_is_stored_logged_and_alerted_once_with_the_events_id() -> None:
    env = Env(document(), document(flip=0.3), committed=document())
    await env.job.run(ny(TUE, 2))
    bad = await env.job.run(ny(TUE + timedelta(days=1), 2))
    assert (bad.verdict, bad.kind) == ("regression", "nightly")
    assert bad.report is not None and bad.report.suites[0].status == "regression"
    [event] = await env.events()
    assert event.severity.value == "warning" and bad.run_id in event.message and "signal" in event.message
    assert event.payload["run_id"] == bad.run_id and event.payload["signal_drop_pct"] > 0.1
    assert [e.id for e in env.notified] == [event.id] and event.id is not None
    assert [r.verdict for r in await env.runs()] == ["regression", "ok"]


async def test_a_regressing_first_run_of_a_key_does_not_become_its_baseline() -> None:
    env = Env(document(flip=0.3), document(), committed=document())
    assert (await env.job.run(ny(TUE, 2))).kind == "nightly"
    again = await env.job.run(ny(TUE + timedelta(days=1), 2))
    assert (again.baseline, again.kind) == (COMMITTED, "baseline")


async def test_a_new_key_is_held_to_the_committed_file_not_to_another_keys_baseline() -> None:
    env = Env(document(), document(version="v2", flip=0.3), committed=document(version="v2"))
    await env.job.run(ny(TUE, 2))
    other = await env.job.run(ny(TUE + timedelta(days=1), 2))
    assert other.key == "bk1-offline-v2" and other.baseline == COMMITTED and other.verdict == "regression"


async def test_without_any_baseline_the_run_is_stored_as_no_baseline() -> None:
    env = Env(document())
    outcome = await env.job.run(ny(TUE, 2), kind="manual")
    assert (outcome.verdict, outcome.baseline, outcome.kind) == ("no_baseline", "none", "manual")
    [run] = await env.runs()
    assert run.comparison["baseline"] == "none" and "suites" not in run.comparison


async def test_a_retried_slot_is_not_run_or_stored_twice() -> None:
    env = Env(document(), document(flip=0.3), committed=document())
    first = await env.job.run(ny(TUE, 2))
    again = await env.job.run(ny(TUE, 2))
    assert again.duplicate and again.run_id == first.run_id and again.verdict == "ok"
    assert len(env.suites.asked) == 1 and len(await env.runs()) == 1


def deps(uow_factory: Any, clock: SimClock, evals: Any) -> WorkerDeps:
    return WorkerDeps(runner=None, uow_factory=uow_factory, calendar=CAL, clock=clock, scope=SCOPE,  # type: ignore[arg-type]
                      evals=evals)


async def test_the_scheduler_dispatches_the_nightly_evals_at_two_new_york_time_only_when_configured() -> None:
    uow_factory = build_container(load_settings(env="test"), "test").uow_factory()
    calls: list[tuple[datetime, str]] = []

    async def evals(at: datetime, kind: str) -> str:
        calls.append((at, kind))
        return "ok"

    clock = SimClock(ny(TUE, 2, 0, 20))
    assert "evals" in deps(uow_factory, clock, evals).kinds
    assert "evals" not in deps(uow_factory, clock, None).kinds
    assert await run_scheduled_job(deps(uow_factory, clock, None), "evals", ny(TUE, 2)) is None
    inproc = InProcessJobs(deps(uow_factory, clock, evals))
    done = await inproc.tick()
    await inproc.drain()
    assert ("evals", ny(TUE, 2)) in done and calls == [(ny(TUE, 2), "nightly")]
    assert await inproc.tick() == []


async def test_a_requested_eval_run_starts_once_per_request_time_with_retries() -> None:
    uow_factory = build_container(load_settings(env="test"), "test").uow_factory()
    calls: list[tuple[datetime, str]] = []

    async def evals(at: datetime, kind: str) -> str:
        calls.append((at, kind))
        if len(calls) == 1:
            raise ConnectionError("database restarting")
        return "ok"

    async def no_sleep(_: float) -> None:
        await asyncio.sleep(0)

    inproc = InProcessJobs(deps(uow_factory, SimClock(ny(TUE, 11)), evals), sleep=no_sleep)
    at = ny(TUE, 11)
    first = await inproc.request_evals(at)
    assert await inproc.request_evals(at) == first and first.endswith(at.isoformat())
    await inproc.drain()
    assert calls == [(at, "manual"), (at, "manual")]


@pytest.mark.parametrize("kind", ["nightly", "manual"])
def test_run_ids_are_stable_per_scope_kind_and_time(kind: str) -> None:
    at = ny(TUE, 2)
    assert eval_run_id(SCOPE, kind, at) == eval_run_id(SCOPE, kind, at.astimezone(NY))
    assert eval_run_id(SCOPE, kind, at).startswith(f"ev-{kind}-20240305T070000Z-")
    assert eval_run_id("other", kind, at) != eval_run_id(SCOPE, kind, at)
