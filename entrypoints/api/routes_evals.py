"""GET /api/evals (stored eval runs with their verdicts), GET /api/evals/{run_id} and POST /api/evals/run (queue an
eval run now); the POST answers 503 "evals not configured" when no job runner takes eval runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import get, post
from litestar.exceptions import NotFoundException, ServiceUnavailableException
from litestar.params import Parameter

from application.evals.nightly import eval_run_id, eval_runs_page
from domain.ports.repositories import EvalRunRecord
from entrypoints.api.common import READ_SECURITY, WRITE_SECURITY, Limit, Offset
from entrypoints.api.errors import error_responses
from entrypoints.api.services import ApiServices
from entrypoints.api.shapes import page_json

RunKind = Literal["nightly", "ci", "manual", "baseline"]
RunId = Annotated[str, Parameter(pattern=r"^[A-Za-z0-9._:-]{1,120}$", description="e.g. ev-nightly-20240305T070000Z-"
                                                                                   "1a2b3c4d")]


def eval_run_json(run: EvalRunRecord, *, document: bool = False) -> dict[str, Any]:
    """A stored run: its verdict, the baseline it was held to and each suite's status and figures."""
    c = run.comparison
    suites = c.get("suites") if isinstance(c.get("suites"), dict) else {}
    out: dict[str, Any] = {
        "id": run.id, "at": run.at.isoformat(), "kind": run.kind, "verdict": run.verdict, "llm": run.llm,
        "baseline_key": run.baseline_key, "git_sha": run.git_sha, "baseline": c.get("baseline"),
        "suites": suites, "notes": c.get("notes", []),
    }
    if document:
        out["document"] = run.document
    return out


@get("/evals", security=READ_SECURITY, tags=["evals"], responses=error_responses(400, 401),
     summary="Eval runs with their verdicts, newest first")
async def eval_runs(services: ApiServices, limit: Limit = 20, offset: Offset = 0,
                    kind: Annotated[RunKind | None, Parameter(description="only runs of this kind")] = None,
                    ) -> dict[str, Any]:
    """Stored eval runs (nightly, manual, baseline...), newest first, paged: verdict (ok, noise, regression,
    refused, no_baseline), the baseline each was held to and per suite the score, its relative drop and the paired
    bootstrap interval of the drop."""
    page = await eval_runs_page(services.uow_factory, services.scope, limit=limit, offset=offset, kind=kind)
    return page_json(page, eval_run_json)


@get("/evals/{run_id:str}", security=READ_SECURITY, tags=["evals"], responses=error_responses(401, 404),
     summary="One eval run with its document")
async def eval_run(services: ApiServices, run_id: RunId) -> dict[str, Any]:
    """A stored run with its verdict and its whole document (`quorum evals run --json`)."""
    async with services.uow_factory() as uow:
        found = await uow.eval_runs.get(run_id)
    if found is None or found.scope != services.scope:
        raise NotFoundException(detail=f"no eval run {run_id!r}")
    return eval_run_json(found, document=True)


@post("/evals/run", status_code=202, security=WRITE_SECURITY, tags=["evals"], responses=error_responses(401, 503),
      summary="Queue an eval run now")
async def run_evals(services: ApiServices) -> dict[str, Any]:
    """Queue an eval run (the nightly job's suites, LLM and gate) and return its job id and the id its stored run
    will have. Asking again within the same second gives the same ids and one run."""
    if services.evals is None:
        raise ServiceUnavailableException(detail="evals not configured")
    now = services.clock.now().replace(microsecond=0)
    job_id = await services.evals.request_evals(now)
    run_id = eval_run_id(services.scope, "manual", now)
    return {"job_id": job_id, "run_id": run_id, "status_url": f"/api/evals/{run_id}"}


ROUTES = [eval_runs, eval_run, run_evals]
