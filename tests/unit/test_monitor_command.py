"""`quorum monitor` wiring: it watches the watchlist of the configured database (scope "live" unless told
otherwise), the broker's open positions and the --symbol extras; no substitute list when the watchlist is empty."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from dependency_injector import providers
from typer.testing import CliRunner

from domain.models.trading import Position
from domain.ports.discovery import WatchlistEntry
from entrypoints.commands import monitor as monitor_command
from entrypoints.container import Container, build_container
from entrypoints.settings import load_settings

NOW = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)


class Broker:
    async def positions(self) -> list[Position]:
        return [Position("ZZZZ", Decimal("2"), Decimal("10"))]


def watched(container: Container) -> Any:
    """The symbols provider of the container's event monitor (with the test's broker)."""
    container.broker.override(providers.Object(Broker()))
    return container.event_monitor()._symbols_provider


async def test_the_configured_databases_watchlist_open_positions_and_extras_are_watched() -> None:
    container = build_container(load_settings(_env_file=None), "test", watch=["AMD"])
    async with container.uow_factory()() as uow:
        await uow.watchlist.upsert("live", WatchlistEntry("MSFT", "manual", "core holding", NOW))
        await uow.watchlist.upsert("paper-2", WatchlistEntry("NVDA", "manual", "other scope", NOW))
        await uow.commit()
    assert await watched(container)(NOW) == ["AMD", "MSFT", "ZZZZ"]
    other = build_container(load_settings(_env_file=None), "test", scope="paper-2")
    other.memory_db.override(providers.Object(container.memory_db()))
    assert await watched(other)(NOW) == ["NVDA", "ZZZZ"]


async def test_an_empty_watchlist_gives_the_positions_only() -> None:
    container = build_container(load_settings(_env_file=None), "test")
    assert await watched(container)(NOW) == ["ZZZZ"]


def test_a_bad_symbol_is_refused_before_anything_starts() -> None:
    import typer

    app = typer.Typer()
    app.command()(monitor_command.monitor)
    result = CliRunner().invoke(app, ["--symbol", "not a ticker", "--once"])
    assert result.exit_code == 2 and "--symbol: 'not a ticker' is not a ticker symbol" in result.output
