"""Unit of work: one database transaction and the repositories that share it."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from domain.ports.alerts import AlertRepository
from domain.ports.discovery import DiscoveredSymbolRepository, SuggestionRepository, WatchlistRepository
from domain.ports.memory import ConditionMemory, SymbolContextMemory, TradeMemory
from domain.ports.repositories import (
    CycleRepository,
    EquityRepository,
    EvalRunRepository,
    EventRepository,
    FillRepository,
    LLMCallRepository,
    OrderRepository,
    PositionRepository,
    StateRepository,
    TradingStateRepository,
)


class UnitOfWork(Protocol):
    """A transaction. Leaving the `async with` block without `commit()` rolls back."""

    trade_memory: TradeMemory
    condition_memory: ConditionMemory
    symbol_memory: SymbolContextMemory
    events: EventRepository
    orders: OrderRepository
    fills: FillRepository
    positions: PositionRepository
    equity: EquityRepository
    cycles: CycleRepository
    state: StateRepository
    trading: TradingStateRepository
    llm_calls: LLMCallRepository
    alerts: AlertRepository
    watchlist: WatchlistRepository
    suggestions: SuggestionRepository
    discovered: DiscoveredSymbolRepository
    eval_runs: EvalRunRepository

    async def __aenter__(self) -> UnitOfWork:
        """Begin the transaction."""
        ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Roll back whatever was not committed and release the connection."""
        ...

    async def lock_cycles(self, scope: str, *, wait_seconds: float) -> bool:
        """Take the trading lock of `scope` until this transaction ends (commit or rollback).

        One cycle (or start-up reconciliation, or flatten) at a time per scope, across processes and
        machines, with or without Redis: Postgres holds it as a transaction-level advisory lock.

        Returns:
            Whether the lock was taken within `wait_seconds` (False: another transaction holds it).
        """
        ...

    async def commit(self) -> None:
        """Make everything done in this unit of work permanent."""
        ...

    async def rollback(self) -> None:
        """Undo everything done since the last commit."""
        ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
