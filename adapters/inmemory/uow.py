"""InMemoryUnitOfWork: transactions over in-memory repositories through an undo journal."""

from __future__ import annotations

import asyncio
from types import TracebackType

from adapters.inmemory.eval_runs import InMemoryEvalRunRepository
from adapters.inmemory.journal import Journal
from adapters.inmemory.repo_alerts import InMemoryAlertRepository
from adapters.inmemory.repo_discovery import (
    InMemoryDiscoveredSymbolRepository,
    InMemorySuggestionRepository,
    InMemoryWatchlistRepository,
)
from adapters.inmemory.repo_trading_state import InMemoryTradingStateRepository
from adapters.inmemory.repositories import (
    InMemoryCycleRepository,
    InMemoryEquityRepository,
    InMemoryEventRepository,
    InMemoryFillRepository,
    InMemoryLLMCallRepository,
    InMemoryOrderRepository,
    InMemoryPositionRepository,
    InMemoryStateRepository,
)
from adapters.inmemory.vector_memory import (
    InMemoryConditionMemory,
    InMemorySymbolContextMemory,
    InMemoryTradeMemory,
)
from domain.ports.embedder import Embedder
from domain.ports.uow import UnitOfWork


class InMemoryDatabase:
    """Everything the in-memory repositories hold, shared by all units of work."""

    def __init__(self, embedder: Embedder) -> None:
        self.journal = Journal()
        self.lock = asyncio.Lock()
        self.trade_memory = InMemoryTradeMemory(embedder, self.journal)
        self.condition_memory = InMemoryConditionMemory(embedder, self.journal)
        self.symbol_memory = InMemorySymbolContextMemory(embedder, self.journal)
        self.events = InMemoryEventRepository(self.journal)
        self.orders = InMemoryOrderRepository(self.journal)
        self.fills = InMemoryFillRepository(self.journal)
        self.positions = InMemoryPositionRepository(self.journal)
        self.equity = InMemoryEquityRepository(self.journal)
        self.cycles = InMemoryCycleRepository(self.journal)
        self.state = InMemoryStateRepository(self.journal)
        self.trading = InMemoryTradingStateRepository(self.journal)
        self.llm_calls = InMemoryLLMCallRepository(self.journal)
        self.alerts = InMemoryAlertRepository(self.journal)
        self.watchlist = InMemoryWatchlistRepository(self.journal)
        self.suggestions = InMemorySuggestionRepository(self.journal)
        self.discovered = InMemoryDiscoveredSymbolRepository(self.journal)
        self.eval_runs = InMemoryEvalRunRepository(self.journal)


class InMemoryUnitOfWork(UnitOfWork):
    """Implements `UnitOfWork` in memory; one transaction at a time.

    Entering the unit of work takes the database's global lock and leaving it releases the lock (a commit does
    not), so no two units of work on one `InMemoryDatabase` ever overlap: that is stricter than PostgreSQL,
    where only `lock_cycles` serialises trading cycles.
    """

    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db
        self._open = False
        self.trade_memory = db.trade_memory
        self.condition_memory = db.condition_memory
        self.symbol_memory = db.symbol_memory
        self.events = db.events
        self.orders = db.orders
        self.fills = db.fills
        self.positions = db.positions
        self.equity = db.equity
        self.cycles = db.cycles
        self.state = db.state
        self.trading = db.trading
        self.llm_calls = db.llm_calls
        self.alerts = db.alerts
        self.watchlist = db.watchlist
        self.suggestions = db.suggestions
        self.discovered = db.discovered
        self.eval_runs = db.eval_runs

    async def __aenter__(self) -> InMemoryUnitOfWork:
        await self._db.lock.acquire()
        self._open = True
        self._db.journal.commit()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._open = False
        self._db.journal.rollback()
        self._db.lock.release()

    async def lock_cycles(self, scope: str, *, wait_seconds: float) -> bool:
        """Take the trading lock of `scope`: always granted at once.

        This unit of work already holds the database's global lock from `async with` to its end, so no other
        transaction, of this scope or any other, can be running: the lock every cycle asks for is necessarily
        free. Arguments are checked as PostgreSQL's unit of work checks them.

        Raises:
            RuntimeError: the unit of work is not open.
            ValueError: `wait_seconds` is negative or not a number.
        """
        if not wait_seconds >= 0:
            raise ValueError(f"wait_seconds must be a non-negative number of seconds, got {wait_seconds}")
        if not self._open:
            raise RuntimeError("unit of work is not open; use `async with`")
        return True

    async def commit(self) -> None:
        """Keep the changes."""
        self._db.journal.commit()

    async def rollback(self) -> None:
        """Undo the changes."""
        self._db.journal.rollback()
