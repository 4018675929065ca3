"""The event monitor's symbols: the watchlist read from the database and the open positions read from the broker
at every poll, plus symbols asked for; an empty watchlist means positions only, said once in the log."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.monitor_symbols import watchlist_and_positions
from domain.errors import BrokerUnavailableError, DatabaseError
from domain.models.trading import Position
from domain.ports.discovery import WatchlistEntry
from domain.ports.uow import UnitOfWork

NOW = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)


class FakeBroker:
    """Open positions as the broker reports them; can be unreachable, as Alpaca can."""

    def __init__(self, *symbols: str) -> None:
        self.held = list(symbols)
        self.down = False

    async def positions(self) -> list[Position]:
        if self.down:
            raise BrokerUnavailableError("GET /v2/positions: 503 Service Unavailable")
        return [Position(s, Decimal("2"), Decimal("10")) for s in self.held]


class Database:
    def __init__(self) -> None:
        self.db = InMemoryDatabase(HashingEmbedder())
        self.down = False

    def uow(self) -> UnitOfWork:
        if self.down:
            raise DatabaseError("connection refused")
        return InMemoryUnitOfWork(self.db)

    async def watch(self, scope: str, *symbols: str) -> None:
        async with InMemoryUnitOfWork(self.db) as uow:
            for s in symbols:
                await uow.watchlist.upsert(scope, WatchlistEntry(s, "manual", "test", NOW))
            await uow.commit()

    async def unwatch(self, scope: str, symbol: str) -> None:
        async with InMemoryUnitOfWork(self.db) as uow:
            await uow.watchlist.remove(scope, symbol)
            await uow.commit()


async def test_the_watchlist_of_the_scope_the_open_positions_and_the_extras_are_watched() -> None:
    db, broker = Database(), FakeBroker("TSLA", "AAPL")
    await db.watch("live", "AAPL", "MSFT")
    await db.watch("backtest:run-1", "NVDA")
    provide = watchlist_and_positions(db.uow, broker, "live", extra=["amd", " AAPL "])  # type: ignore[arg-type]
    assert await provide(NOW) == ["AAPL", "AMD", "MSFT", "TSLA"]
    other = watchlist_and_positions(db.uow, FakeBroker(), "backtest:run-1")  # type: ignore[arg-type]
    assert await other(NOW) == ["NVDA"]


async def test_each_poll_reads_the_watchlist_and_the_positions_afresh() -> None:
    db, broker = Database(), FakeBroker()
    await db.watch("live", "MSFT")
    provide = watchlist_and_positions(db.uow, broker)  # type: ignore[arg-type]
    assert await provide(NOW) == ["MSFT"]
    await db.watch("live", "NVDA")
    broker.held.append("XOM")
    assert await provide(NOW) == ["MSFT", "NVDA", "XOM"]
    await db.unwatch("live", "MSFT")
    broker.held.clear()
    assert await provide(NOW) == ["NVDA"]


async def test_an_empty_watchlist_means_positions_only_and_the_log_says_so_once() -> None:
    db, broker = Database(), FakeBroker("TSLA")
    provide = watchlist_and_positions(db.uow, broker)  # type: ignore[arg-type]
    with capture_logs() as logs:
        assert await provide(NOW) == ["TSLA"]
        assert await provide(NOW) == ["TSLA"]
        await db.watch("live", "MSFT")
        assert await provide(NOW) == ["MSFT", "TSLA"]
    empty = [e for e in logs if e["event"] == "monitor_watchlist_empty"]
    assert len(empty) == 1 and empty[0]["log_level"] == "warning"
    assert empty[0]["positions"] == ["TSLA"] and "watching open positions only" in empty[0]["reason"]
    assert [e["event"] for e in logs if e["event"] == "monitor_watchlist_filled"] == ["monitor_watchlist_filled"]
    assert [e["symbols"] for e in logs if e["event"] == "monitor_symbols"] == [["TSLA"], ["MSFT", "TSLA"]]


async def test_with_an_empty_watchlist_and_no_position_nothing_is_watched() -> None:
    provide = watchlist_and_positions(Database().uow, FakeBroker())  # type: ignore[arg-type]
    assert await provide(NOW) == []


@pytest.mark.parametrize("failing", ["broker", "database"])
async def test_a_source_that_cannot_be_read_raises_so_the_monitor_keeps_its_last_symbols(failing: str) -> None:
    db, broker = Database(), FakeBroker("TSLA")
    provide = watchlist_and_positions(db.uow, broker)  # type: ignore[arg-type]
    broker.down, db.down = failing == "broker", failing == "database"
    with pytest.raises((BrokerUnavailableError, DatabaseError)):
        await provide(NOW)
