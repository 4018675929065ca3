"""Where campaigns are kept: one state document per scope (`paper_campaigns`) listing them in start order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.paper import PaperCampaign
from domain.ports.uow import UnitOfWork

CAMPAIGNS_DOC = "paper_campaigns"


def campaign_to_dict(c: PaperCampaign) -> dict[str, Any]:
    """JSON-safe dict of a campaign (Decimals as strings, times ISO 8601)."""
    return {"name": c.name, "scope": c.scope, "started_at": c.started_at.isoformat(),
            "target_sessions": c.target_sessions, "account_id": c.account_id,
            "starting_equity": str(c.starting_equity), "settings": c.settings,
            "ended_at": None if c.ended_at is None else c.ended_at.isoformat()}


def campaign_from_dict(d: dict[str, Any]) -> PaperCampaign:
    """The campaign stored as `d` (`campaign_to_dict`)."""
    ended = d.get("ended_at")
    return PaperCampaign(name=str(d["name"]), scope=str(d["scope"]), started_at=datetime.fromisoformat(d["started_at"]),
                         target_sessions=int(d["target_sessions"]), account_id=str(d.get("account_id") or ""),
                         starting_equity=Decimal(str(d["starting_equity"])), settings=dict(d.get("settings") or {}),
                         ended_at=None if ended is None else datetime.fromisoformat(ended))


async def load_campaigns(uow: UnitOfWork, scope: str) -> list[PaperCampaign]:
    """The campaigns of `scope`, oldest first."""
    doc = await uow.state.load(scope, CAMPAIGNS_DOC) or {}
    return [campaign_from_dict(d) for d in doc.get("campaigns") or []]


async def save_campaigns(uow: UnitOfWork, scope: str, campaigns: list[PaperCampaign], *, at: datetime) -> None:
    """Store the campaigns of `scope` (replacing the list)."""
    await uow.state.save(scope, CAMPAIGNS_DOC, {"campaigns": [campaign_to_dict(c) for c in campaigns]}, at=at)
