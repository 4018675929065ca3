"""GET /api/evals, GET /api/evals/{run_id} and POST /api/evals/run through Litestar's test client, on the in-memory
container (the helpers of test_api)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from domain.ports.repositories import EvalRunRecord
from entrypoints.api import create_app
from tests.e2e.test_api import API_KEY, OPEN, Api, assert_error, build_api, open_client

RUN = EvalRunRecord(id="ev-nightly-20240612T060000Z-0", scope="live", at=OPEN, kind="nightly",
                    baseline_key="bk1-0123456789abcdef", llm="offline",
                    document={"schema": 1, "llm": "offline", "suites": {"signal": {"scores": {"r1": 1.0}}}},
                    verdict="regression", git_sha="deadbeef",
                    comparison={"status": "regression", "baseline": "run ev-base", "notes": [],
                                "suites": {"signal": {"status": "regression", "relative_drop": 0.3,
                                                      "drop_interval": [0.2, 0.4]}}})


class RecordingEvals:
    """Takes eval run requests like the job runners do: one job per request time."""

    def __init__(self) -> None:
        self.requested: list[datetime] = []

    async def request_evals(self, requested_at: datetime) -> str:
        if requested_at not in self.requested:
            self.requested.append(requested_at)
        return f"quorum:evals:manual:{requested_at.isoformat()}"


@pytest.fixture
async def api() -> Api:
    built = await build_api()
    built.services.evals = RecordingEvals()
    return built


@pytest.fixture
async def client(api: Api) -> AsyncIterator[AsyncTestClient[Any]]:
    async with open_client(api.app, key=API_KEY) as c:
        yield c


async def store(api: Api, *runs: EvalRunRecord, scope: str | None = None) -> None:
    async with api.uow() as uow:
        for r in runs:
            await uow.eval_runs.add(replace(r, scope=scope or api.services.scope))
        await uow.commit()


async def test_eval_runs_are_listed_newest_first_with_verdicts_and_paged(api: Api,
                                                                        client: AsyncTestClient[Any]) -> None:
    older = replace(RUN, id="ev-old", at=OPEN - timedelta(days=1), kind="baseline", verdict="ok", comparison={})
    await store(api, older, RUN)
    await store(api, replace(RUN, id="ev-other-scope"), scope="another-account")
    body = (await client.get("/api/evals")).json()
    assert (body["total"], body["limit"], body["offset"]) == (2, 20, 0)
    first, second = body["items"]
    assert (first["id"], first["verdict"], first["kind"], first["baseline"]) == (RUN.id, "regression", "nightly",
                                                                               "run ev-base")
    assert first["suites"]["signal"]["drop_interval"] == [0.2, 0.4] and "document" not in first
    assert (first["baseline_key"], first["git_sha"], first["at"]) == (RUN.baseline_key, "deadbeef", OPEN.isoformat())
    assert second["id"] == "ev-old" and second["suites"] == {}
    page = (await client.get("/api/evals", params={"limit": 1, "offset": 1, "kind": "baseline"})).json()
    assert [i["id"] for i in page["items"]] == [] and page["total"] == 1
    assert [i["id"] for i in (await client.get("/api/evals?kind=baseline")).json()["items"]] == ["ev-old"]
    assert_error(await client.get("/api/evals?limit=0"), 400)
    assert_error(await client.get("/api/evals?kind=weekly"), 400)


async def test_one_eval_run_comes_with_its_document(api: Api, client: AsyncTestClient[Any]) -> None:
    await store(api, RUN)
    body = (await client.get(f"/api/evals/{RUN.id}")).json()
    assert body["document"] == RUN.document and body["verdict"] == "regression"
    assert_error(await client.get("/api/evals/ev-missing"), 404, "no eval run")


async def test_post_run_queues_an_eval_run_once_per_second_and_needs_the_key(api: Api,
                                                                             client: AsyncTestClient[Any]) -> None:
    response = await client.post("/api/evals/run")
    assert response.status_code == 202
    body = response.json()
    assert body["job_id"] == f"quorum:evals:manual:{OPEN.isoformat()}"
    assert body["run_id"].startswith("ev-manual-20240612T150000Z-") and body["status_url"].endswith(body["run_id"])
    again = (await client.post("/api/evals/run")).json()
    assert again == body and api.services.evals.requested == [OPEN]  # type: ignore[union-attr]
    async with open_client(api.app) as anonymous:
        assert_error(await anonymous.post("/api/evals/run"), 401)
        assert (await anonymous.get("/api/evals")).status_code == 200           # reads are open on loopback


async def test_post_run_is_503_without_a_job_runner_for_evals(api: Api, client: AsyncTestClient[Any]) -> None:
    api.services.evals = None
    assert_error(await client.post("/api/evals/run"), 503, "evals not configured")


async def test_the_schema_lists_the_eval_endpoints(api: Api) -> None:
    async with open_client(create_app(api.services), key=API_KEY) as c:
        paths = (await c.get("/schema/openapi.json")).json()["paths"]
    assert {"/api/evals", "/api/evals/{run_id}", "/api/evals/run"} <= set(paths)
    assert paths["/api/evals/run"]["post"]["security"] == [{"ApiKeyHeader": []}]
