"""GET /api/paper: the paper campaign measured now against the go-live criteria (`quorum paper status --json`)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.params import Parameter

from application.paper.campaign import CampaignNotFoundError, campaign_status, list_campaigns, status_to_json
from entrypoints.api.common import READ_SECURITY
from entrypoints.api.errors import error_responses
from entrypoints.api.services import ApiServices

CampaignName = Annotated[str | None, Parameter(pattern=r"^[A-Za-z0-9 ._:-]{1,80}$",
                                               description="the campaign (default: the latest started)")]


@get("/paper", security=READ_SECURITY, tags=["paper"], responses=error_responses(400, 401, 404),
     summary="The paper campaign and its go-live criteria")
async def paper_campaign(services: ApiServices, name: CampaignName = None) -> dict[str, Any]:
    """The campaign (the latest by default) measured now: sessions elapsed of its target, `complete`, `met`, and
    each criterion (no crash, Sharpe > 0, win rate > 50%, no trade lost more than 20%, every breaker rule exercised,
    chat answering, evals passing) with `passed` true, false or null (not measurable yet) and what was measured;
    `campaigns` lists every campaign of the scope."""
    try:
        status = await campaign_status(services.uow_factory, services.calendar, services.scope,
                                       as_of=services.clock.now(), name=name)
    except CampaignNotFoundError as exc:
        raise NotFoundException(detail=str(exc)) from exc
    every = await list_campaigns(services.uow_factory, services.scope)
    return {**status_to_json(status),
            "campaigns": [{"name": c.name, "started_at": c.started_at.isoformat(),
                           "ended_at": None if c.ended_at is None else c.ended_at.isoformat()} for c in every]}


ROUTES = [paper_campaign]
