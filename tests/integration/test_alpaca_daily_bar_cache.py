"""AlpacaMarketData reads daily bars once per session: the 13 cycles of a day ask Alpaca once, the next session
asks again, and what it serves is exactly what a fresh read would give."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from adapters.alpaca import AlpacaConfig, AlpacaMarketData
from adapters.calendar import NyseCalendar
from adapters.inmemory.alpaca_emulator import AlpacaEmulator
from adapters.inmemory.market_data import SyntheticMarket

pytestmark = pytest.mark.integration
NY = ZoneInfo("America/New_York")
CAL = NyseCalendar()
MARKET = SyntheticMarket(seed=5, n_symbols=4, start=date(2023, 6, 1), end=date(2024, 3, 29), calendar=CAL)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=NY)


async def test_daily_bars_are_read_once_per_session() -> None:
    mon, tue = date(2024, 2, 5), date(2024, 2, 6)
    with AlpacaEmulator(MARKET, CAL, at(mon, 9, 35), Decimal(1000), api_key="k", secret_key="s") as emu:
        config = AlpacaConfig(api_key="k", secret_key="s", trading_url=emu.url, data_url=emu.url, bars_feed="iex")
        syms = MARKET.stock_symbols
        async with AlpacaMarketData(config, calendar=CAL) as cached:
            first = await cached.daily_bars(syms, as_of=at(mon, 9, 35), lookback=60)
            again = await cached.daily_bars(syms[:2], as_of=at(mon, 15, 5), lookback=20)
            reads = [r for r in emu.requests if r.path == "/v2/stocks/bars"]
            assert len(reads) == 1, "the second read of the session was served from the first"
            assert all(again[s].days == first[s].days[-20:] for s in syms[:2])
            emu.advance_to(at(tue, 9, 35))
            tuesday = await cached.daily_bars(syms, as_of=at(tue, 9, 35), lookback=60)
            assert len([r for r in emu.requests if r.path == "/v2/stocks/bars"]) == 2
            assert all(tuesday[s].days[-1] == mon for s in syms)
        async with AlpacaMarketData(config, calendar=CAL) as fresh:
            assert {s: fresh_s.close.tolist() for s, fresh_s in (await fresh.daily_bars(
                syms, as_of=at(tue, 9, 35), lookback=60)).items()} == {s: v.close.tolist() for s, v in tuesday.items()}
