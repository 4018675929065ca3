"""The `quorum monitor` symbols provider: open positions plus the given symbols or the default universe."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.market_data import SyntheticMarket
from domain.models.trading import Position
from entrypoints.commands.monitor import positions_and_universe

CAL = NyseCalendar()
NOW = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)


class Broker:
    async def positions(self) -> list[Position]:
        return [Position("ZZZZ", Decimal("2"), Decimal("10"))]


async def test_given_symbols_and_open_positions_are_watched() -> None:
    market = SyntheticMarket(seed=1, n_symbols=5, start=date(2024, 1, 2), end=date(2024, 3, 5), calendar=CAL)
    provide = positions_and_universe(Broker(), market, ["aapl", "MSFT"])  # type: ignore[arg-type]
    assert await provide(NOW) == ["AAPL", "MSFT", "ZZZZ"]


async def test_without_symbols_the_liquid_universe_is_watched_without_context_symbols() -> None:
    market = SyntheticMarket(seed=1, n_symbols=5, start=date(2024, 1, 2), end=date(2024, 3, 5), calendar=CAL)
    provide = positions_and_universe(Broker(), market, universe_size=3)  # type: ignore[arg-type]
    got = await provide(NOW)
    assert "ZZZZ" in got and len(got) == 4
    assert set(got) - {"ZZZZ"} <= set(market.stock_symbols)
