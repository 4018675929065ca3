"""A paper campaign: a named stretch of paper trading measured against the success criteria that must hold
before going live (docs/go-live.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class PaperCampaign:
    """A campaign as recorded when it starts.

    Attributes:
        name: the campaign's name (unique per scope).
        scope: the account scope it measures.
        started_at: when it started.
        target_sessions: how many trading sessions it should run (10 by default: two weeks).
        account_id: the broker account it runs on (paper).
        starting_equity: the account's equity at the start.
        settings: the settings that matter for the verdict (models, caps, limits), as recorded at the start.
        ended_at: when it was stopped, if it was.
    """

    name: str
    scope: str
    started_at: datetime
    target_sessions: int
    account_id: str
    starting_equity: Decimal
    settings: dict[str, Any] = field(default_factory=dict)
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Criterion:
    """One success criterion: its verdict (None: not measurable yet) and what was measured."""

    name: str
    passed: bool | None
    detail: str


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    """Where a campaign stands at `as_of`.

    Attributes:
        campaign: the campaign.
        as_of: when it was measured.
        sessions: trading sessions elapsed since the start.
        criteria: every criterion with its verdict.
    """

    campaign: PaperCampaign
    as_of: datetime
    sessions: int
    criteria: tuple[Criterion, ...]

    @property
    def complete(self) -> bool:
        """Whether it ran its target number of sessions."""
        return self.sessions >= self.campaign.target_sessions

    @property
    def met(self) -> bool:
        """Whether it is complete and every criterion passed."""
        return self.complete and all(c.passed is True for c in self.criteria)
