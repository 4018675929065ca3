"""PgUnitOfWork: one AsyncSession, one transaction, all repositories on it."""

from __future__ import annotations

import hashlib
import math
from types import TracebackType

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.postgres.eval_runs import PgEvalRunRepository
from adapters.postgres.repo_alerts import PgAlertRepository
from adapters.postgres.repo_discovery import (
    PgDiscoveredSymbolRepository,
    PgSuggestionRepository,
    PgWatchlistRepository,
)
from adapters.postgres.repo_trading_state import PgTradingStateRepository
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

LOCK_NOT_AVAILABLE = "55P03"
"""SQLSTATE of "canceling statement due to lock timeout" (PostgreSQL docs, Appendix A: lock_not_available)."""
MAX_LOCK_TIMEOUT_MS = 2**31 - 1
"""The largest `lock_timeout` PostgreSQL accepts (an int of milliseconds)."""


def cycle_lock_key(scope: str) -> int:
    """The advisory-lock key of `scope`'s trading cycles: a stable signed 64-bit hash of "quorum-cycle:" + scope.

    Stable across processes, machines and Python versions (BLAKE2b, unlike `hash()`), so every worker asks
    PostgreSQL for the same lock.
    """
    digest = hashlib.blake2b(f"quorum-cycle:{scope}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


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
        self.trading = PgTradingStateRepository(session)
        self.llm_calls = PgLLMCallRepository(session)
        self.alerts = PgAlertRepository(session)
        self.watchlist = PgWatchlistRepository(session)
        self.suggestions = PgSuggestionRepository(session)
        self.discovered = PgDiscoveredSymbolRepository(session)
        self.eval_runs = PgEvalRunRepository(session)
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

    async def lock_cycles(self, scope: str, *, wait_seconds: float) -> bool:
        """Take the trading lock of `scope` until this transaction ends (commit or rollback).

        A transaction-level advisory lock (`pg_advisory_xact_lock`), so it is released by commit, rollback or a
        dropped connection, and a worker that dies cannot leave it behind. A free lock costs one round trip
        (`pg_try_advisory_xact_lock`). A busy one is waited for by the server under `lock_timeout` set to
        `wait_seconds`, inside a savepoint: the timeout's error rolls back to the savepoint (undoing the setting
        with it) and leaves the transaction usable; on success the previous `lock_timeout` is put back. Taking it
        again in the same transaction succeeds at once.

        Returns:
            Whether the lock was taken within `wait_seconds` (0: only if it is free now).

        Raises:
            RuntimeError: the unit of work is not open.
            ValueError: `wait_seconds` is negative or not a number.
        """
        if not wait_seconds >= 0:
            raise ValueError(f"wait_seconds must be a non-negative number of seconds, got {wait_seconds}")
        session, key = self.session, cycle_lock_key(scope)
        if (await session.execute(select(func.pg_try_advisory_xact_lock(key)))).scalar_one():
            return True
        if wait_seconds == 0:
            return False
        wait_ms = wait_seconds * 1000
        timeout_ms = MAX_LOCK_TIMEOUT_MS if wait_ms >= MAX_LOCK_TIMEOUT_MS else max(1, math.ceil(wait_ms))
        previous = (await session.execute(select(func.current_setting("lock_timeout")))).scalar_one()
        try:
            async with session.begin_nested():
                await session.execute(select(func.set_config("lock_timeout", f"{timeout_ms}ms", True)))
                await session.execute(select(func.pg_advisory_xact_lock(key)))
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            return False
        await session.execute(select(func.set_config("lock_timeout", previous, True)))
        return True

    async def commit(self) -> None:
        """Commit the transaction."""
        await self.session.commit()

    async def rollback(self) -> None:
        """Roll the transaction back."""
        await self.session.rollback()
