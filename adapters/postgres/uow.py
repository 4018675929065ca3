"""PgUnitOfWork: one AsyncSession, one transaction, all repositories on it."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.postgres.repo_alerts import PgAlertRepository
from adapters.postgres.repo_discovery import (
    PgDiscoveredSymbolRepository,
    PgSuggestionRepository,
    PgWatchlistRepository,
)
from adapters.postgres.repositories import (
    PgCycleRepository,
    PgEquityRepository,
    PgEventRepository,
    PgFillRepository,
    PgLLMCallRepository,
    PgOrderRepository,
    PgPositionRepository,
    PgStateRepository,
)
from adapters.postgres.vector_memory import PgConditionMemory, PgSymbolContextMemory, PgTradeMemory
from domain.ports.embedder import Embedder
from domain.ports.uow import UnitOfWork


class PgUnitOfWork(UnitOfWork):
    """Implements `UnitOfWork` on PostgreSQL."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], embedder: Embedder) -> None:
        self._sessionmaker = sessionmaker
        self._embedder = embedder
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> PgUnitOfWork:
        session = self._sessionmaker()
        self._session = session
        self.trade_memory = PgTradeMemory(session, self._embedder)
        self.condition_memory = PgConditionMemory(session, self._embedder)
        self.symbol_memory = PgSymbolContextMemory(session, self._embedder)
        self.events = PgEventRepository(session)
        self.orders = PgOrderRepository(session)
        self.fills = PgFillRepository(session)
        self.positions = PgPositionRepository(session)
        self.equity = PgEquityRepository(session)
        self.cycles = PgCycleRepository(session)
        self.state = PgStateRepository(session)
        self.llm_calls = PgLLMCallRepository(session)
        self.alerts = PgAlertRepository(session)
        self.watchlist = PgWatchlistRepository(session)
        self.suggestions = PgSuggestionRepository(session)
        self.discovered = PgDiscoveredSymbolRepository(session)
        return self

    @property
    def session(self) -> AsyncSession:
        """The session of the open transaction."""
        if self._session is None:
            raise RuntimeError("unit of work is not open; use `async with`")
        return self._session

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.rollback()
            await session.close()

    async def commit(self) -> None:
        """Commit the transaction."""
        await self.session.commit()

    async def rollback(self) -> None:
        """Roll the transaction back."""
        await self.session.rollback()
