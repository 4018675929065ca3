"""Contract of the eval run repository, run against the in-memory fake and PostgreSQL.

Each test keeps to its own scope, so the shared Postgres database does not leak rows between tests.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.ports.repositories import EvalRunRecord
from domain.ports.uow import UnitOfWorkFactory

T0 = datetime(2024, 3, 5, 7, 0, tzinfo=UTC)
DOC = {"schema": 1, "llm": "offline", "datasets": {"signal": "44905196b5c0"},
       "suites": {"signal": {"metrics": {"accuracy": {"value": 0.61, "low": 0.56, "high": 0.66, "n": 400}},
                             "scores": {"r1": 1.0, "r2": 0.0, "r3": 0.5}, "failures": 0,
                             "latency_ms": {"p50": None, "p95": None}, "tokens": 0, "cost_usd": 0.0}},
       "memorisation": {}}


def run(scope: str, n: int = 1, *, at: datetime = T0, kind: str = "nightly", key: str = "bk1-aaaa",
        verdict: str = "ok") -> EvalRunRecord:
    return EvalRunRecord(id=f"{scope}:{n}", scope=scope, at=at, kind=kind, baseline_key=key, llm="offline",
                         document=DOC, verdict=verdict, git_sha="0123abcd",
                         comparison={"status": verdict, "suites": {"signal": {"relative_drop": 0.01}}})


async def test_a_stored_run_reads_back_identically_in_utc(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    r = run(scope, at=datetime(2024, 3, 5, 2, 0, tzinfo=timezone(timedelta(hours=-5))))
    async with uow_factory() as uow:
        await uow.eval_runs.add(r)
        await uow.commit()
    async with uow_factory() as uow:
        got = await uow.eval_runs.get(r.id)
        assert await uow.eval_runs.get(f"{scope}:missing") is None
    assert got == replace(r, at=T0)
    assert got is not None and got.at.tzinfo is not None and got.document == DOC


async def test_runs_list_newest_first_filtered_and_paged(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    runs = [run(scope, 1, at=T0), run(scope, 2, at=T0 + timedelta(days=1), kind="baseline"),
            run(scope, 3, at=T0 + timedelta(days=2), key="bk1-bbbb", verdict="regression"),
            run(scope, 4, at=T0 + timedelta(days=3), kind="manual")]
    async with uow_factory() as uow:
        for r in runs:
            await uow.eval_runs.add(r)
        await uow.eval_runs.add(run(f"{scope}-other", 9, at=T0 + timedelta(days=9)))
        await uow.commit()
    async with uow_factory() as uow:
        repo = uow.eval_runs
        assert [r.id for r in await repo.list(scope)] == [runs[3].id, runs[2].id, runs[1].id, runs[0].id]
        assert [r.id for r in await repo.list(scope, limit=2, offset=1)] == [runs[2].id, runs[1].id]
        assert [r.id for r in await repo.list(scope, kind="baseline")] == [runs[1].id]
        assert [r.id for r in await repo.list(scope, baseline_key="bk1-aaaa")] == [runs[3].id, runs[1].id,
                                                                                    runs[0].id]
        assert [r.id for r in await repo.list(scope, baseline_key="bk1-aaaa", kind="nightly")] == [runs[0].id]
        assert (await repo.count(scope), await repo.count(scope, kind="manual"),
                await repo.count(scope, baseline_key="bk1-bbbb"), await repo.count(f"{scope}-none")) == (4, 1, 1, 0)
        light = await repo.list(scope, documents=False)
    assert [r.document for r in light] == [{}] * 4
    assert light[1].verdict == "regression" and light[1].comparison == runs[2].comparison
    assert replace(light[1], document=DOC) == runs[2]


async def test_an_uncommitted_run_is_rolled_back(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        await uow.eval_runs.add(run(scope))
    async with uow_factory() as uow:
        await uow.eval_runs.add(run(scope, 2))
        await uow.rollback()
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.eval_runs.list(scope) == []


async def test_an_id_is_stored_once(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        await uow.eval_runs.add(run(scope))
        with pytest.raises(ValueError, match="already stored"):
            await uow.eval_runs.add(replace(run(scope), verdict="regression"))
        await uow.commit()                                  # the transaction is still usable
    async with uow_factory() as uow:
        [stored] = await uow.eval_runs.list(scope)
    assert stored.verdict == "ok"


@pytest.mark.parametrize("bad", [
    {"kind": "weekly"}, {"verdict": "fine"}, {"at": datetime(2024, 3, 5, 7)},  # noqa: DTZ001 - naive on purpose
    {"document": {"x": float("nan")}}, {"document": {"x": object()}}, {"baseline_key": ""},
])
async def test_invalid_runs_are_refused_alike(uow_factory: UnitOfWorkFactory, scope: str,
                                              bad: dict[str, object]) -> None:
    async with uow_factory() as uow:
        with pytest.raises(ValueError):  # noqa: PT011 - the message depends on the field
            await uow.eval_runs.add(replace(run(scope), **bad))  # type: ignore[arg-type]
        assert await uow.eval_runs.count(scope) == 0


async def test_a_negative_page_is_refused(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        with pytest.raises(ValueError, match="limit"):
            await uow.eval_runs.list(scope, limit=-1)
        with pytest.raises(ValueError, match="offset"):
            await uow.eval_runs.list(scope, offset=-1)
