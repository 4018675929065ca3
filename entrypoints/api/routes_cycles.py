"""POST /api/cycles/run and GET /api/cycles/{cycle_id}."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import get, post
from litestar.exceptions import NotFoundException
from litestar.params import Parameter

from entrypoints.api.common import READ_SECURITY, WRITE_SECURITY, CycleId
from entrypoints.api.errors import error_responses
from entrypoints.api.services import ApiServices
from entrypoints.api.shapes import cycle_json, cycle_request_json

CycleType = Literal["scheduled", "event", "manual"]


@post("/cycles/run", status_code=202, security=WRITE_SECURITY, tags=["cycles"],
      responses=error_responses(400, 401, 503), summary="Queue a trading cycle")
async def run_cycle(
    services: ApiServices,
    type: Annotated[CycleType, Parameter(description="scheduled (whole watchlist), event (one symbol that moved) "
                                                     "or manual")],
    symbol: Annotated[str | None, Parameter(max_length=20, description="ticker; required for event cycles")] = None,
) -> dict[str, Any]:
    """Queue a cycle and return its id.

    The id is deterministic (scope, type, symbol, minute of the request). An event for a symbol
    that already had an event cycle within the cooldown is not queued again: the earlier cycle id
    comes back with `deduplicated: true`.
    """
    return cycle_request_json(await services.cycle_requests.request(type, symbol, services.clock.now()))


@get("/cycles/{cycle_id:str}", security=READ_SECURITY, tags=["cycles"], responses=error_responses(401, 404),
     summary="One cycle")
async def get_cycle(services: ApiServices, cycle_id: CycleId) -> dict[str, Any]:
    """A cycle's status (queued, completed, skipped, failed), summary and error."""
    found = await services.read_models.cycle(cycle_id)
    if found is None:
        raise NotFoundException(detail=f"no cycle {cycle_id[:80]!r}")
    return cycle_json(found)


ROUTES = [run_cycle, get_cycle]
