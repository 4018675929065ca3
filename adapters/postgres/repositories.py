"""PostgreSQL repositories of the trading core; each works on the AsyncSession of a `PgUnitOfWork`
and never commits."""

from __future__ import annotations

from adapters.postgres.repo_events import PgEventRepository
from adapters.postgres.repo_records import PgCycleRepository, PgLLMCallRepository, PgStateRepository
from adapters.postgres.repo_trading import (
    PgEquityRepository,
    PgFillRepository,
    PgOrderRepository,
    PgPositionRepository,
)

__all__ = [
    "PgCycleRepository",
    "PgEquityRepository",
    "PgEventRepository",
    "PgFillRepository",
    "PgLLMCallRepository",
    "PgOrderRepository",
    "PgPositionRepository",
    "PgStateRepository",
]
