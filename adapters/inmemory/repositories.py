"""In-memory repositories of the trading core: real code that backtests run on. Every mutation
records its undo in the shared `Journal`, so `InMemoryUnitOfWork` rolls back for real."""

from __future__ import annotations

from adapters.inmemory.repo_events import InMemoryEventRepository
from adapters.inmemory.repo_records import InMemoryCycleRepository, InMemoryLLMCallRepository, InMemoryStateRepository
from adapters.inmemory.repo_trading import (
    InMemoryEquityRepository,
    InMemoryFillRepository,
    InMemoryOrderRepository,
    InMemoryPositionRepository,
)

__all__ = [
    "InMemoryCycleRepository",
    "InMemoryEquityRepository",
    "InMemoryEventRepository",
    "InMemoryFillRepository",
    "InMemoryLLMCallRepository",
    "InMemoryOrderRepository",
    "InMemoryPositionRepository",
    "InMemoryStateRepository",
]
