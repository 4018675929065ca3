"""DailyBarMarketData / ReplayMarketData: no look-ahead, quotes during and after a session, intraday bars."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from adapters.calendar import NyseCalendar
from adapters.inmemory.market_data import (
    BENCHMARK_SYMBOLS,
    SECTOR_ETFS,
    DailyBarMarketData,
    ReplayMarketData,
)
from domain.models.bar import Bar
from domain.models.market import BarSeries
from domain.ports.market_data import MarketData

NY = ZoneInfo("America/New_York")


def ny(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=NY)


@pytest.fixture(scope="module")
def cal() -> NyseCalendar:
    return NyseCalendar()


def series(symbol: str, days: list[date], start: float = 100.0) -> BarSeries:
    rows = [(d, start + i, start + i + 2, start + i - 2, start + i + 1, 1000.0 + i) for i, d in enumerate(days)]
    return BarSeries.from_rows(symbol, rows)


@pytest.fixture
def market(cal: NyseCalendar) -> DailyBarMarketData:
    days = cal.sessions(date(2024, 7, 1), date(2024, 7, 10))
    return DailyBarMarketData({"AAA": series("AAA", days), "VIX": series("VIX", days, 12.0)}, cal)


async def test_is_a_market_data_port(market: DailyBarMarketData) -> None:
    assert isinstance(market, MarketData)


async def test_a_bar_appears_exactly_when_its_session_closes(market: DailyBarMarketData) -> None:
    before = await market.daily_bars(["AAA"], as_of=ny(2024, 7, 2, 15, 59), lookback=10)
    at_close = await market.daily_bars(["AAA"], as_of=ny(2024, 7, 2, 16, 0), lookback=10)
    assert before["AAA"].days[-1] == date(2024, 7, 1)
    assert at_close["AAA"].days[-1] == date(2024, 7, 2)


async def test_early_close_is_respected(market: DailyBarMarketData) -> None:
    during = await market.daily_bars(["AAA"], as_of=ny(2024, 7, 3, 12, 59), lookback=10)
    after = await market.daily_bars(["AAA"], as_of=ny(2024, 7, 3, 13, 0), lookback=10)
    assert during["AAA"].days[-1] == date(2024, 7, 2)
    assert after["AAA"].days[-1] == date(2024, 7, 3)
    holiday = await market.daily_bars(["AAA"], as_of=ny(2024, 7, 4, 18), lookback=10)
    assert holiday["AAA"].days[-1] == date(2024, 7, 3)


async def test_lookback_and_unknown_symbols(market: DailyBarMarketData) -> None:
    bars = await market.daily_bars(["AAA", "NOPE"], as_of=ny(2024, 7, 10, 20), lookback=3)
    assert list(bars) == ["AAA"]
    assert bars["AAA"].days == (date(2024, 7, 8), date(2024, 7, 9), date(2024, 7, 10))
    none_yet = await market.daily_bars(["AAA"], as_of=ny(2024, 6, 30, 12), lookback=3)
    assert none_yet == {}
    with pytest.raises(ValueError, match="lookback must be >= 1"):
        await market.daily_bars(["AAA"], as_of=ny(2024, 7, 10, 20), lookback=0)
    naive = datetime(2024, 7, 10, 20)  # noqa: DTZ001 - naive on purpose: the market must refuse it
    with pytest.raises(ValueError, match="timezone-aware"):
        await market.daily_bars(["AAA"], as_of=naive, lookback=3)


async def test_quote_during_a_session_is_the_open_and_after_the_close_is_the_close(market: DailyBarMarketData) -> None:
    aaa = market.series("AAA")
    assert aaa is not None
    i = aaa.index_of(date(2024, 7, 2))
    assert i is not None
    pre = (await market.latest_quotes(["AAA"], as_of=ny(2024, 7, 2, 9, 0)))["AAA"]
    during = (await market.latest_quotes(["AAA"], as_of=ny(2024, 7, 2, 11, 0)))["AAA"]
    after = (await market.latest_quotes(["AAA"], as_of=ny(2024, 7, 2, 16, 30)))["AAA"]
    assert pre.last == aaa.close[i - 1]
    assert during.last == aaa.open[i]
    assert during.at == ny(2024, 7, 2, 11, 0)
    assert after.last == aaa.close[i]
    assert after.at == ny(2024, 7, 2, 16, 0)
    assert after.bid == pytest.approx(after.last * (1 - 2.5e-4))
    assert after.ask == pytest.approx(after.last * (1 + 2.5e-4))
    assert after.spread_pct == pytest.approx(5e-4, rel=1e-6)


async def test_quotes_spread_is_configurable_and_index_has_none(cal: NyseCalendar) -> None:
    days = cal.sessions(date(2024, 7, 1), date(2024, 7, 3))
    md = DailyBarMarketData({"AAA": series("AAA", days), "VIX": series("VIX", days, 12.0)}, cal, spread_bps=20)
    quotes = await md.latest_quotes(["AAA", "VIX", "NOPE"], as_of=ny(2024, 7, 5, 12))
    assert set(quotes) == {"AAA", "VIX"}
    assert quotes["AAA"].spread_pct == pytest.approx(20e-4, rel=1e-6)
    assert quotes["VIX"].bid == quotes["VIX"].ask == quotes["VIX"].last


async def test_assets(cal: NyseCalendar) -> None:
    days = cal.sessions(date(2024, 7, 1), date(2024, 7, 3))
    md = DailyBarMarketData(
        {s: series(s, days) for s in ("AAA", "BBB", "VIX", "SPY")},
        cal,
        fractionable={"BBB": False},
        shortable={"AAA": True},
    )
    assets = {a.symbol: a for a in await md.assets()}
    assert assets["AAA"].tradable and assets["AAA"].fractionable and assets["AAA"].shortable
    assert not assets["BBB"].fractionable and not assets["BBB"].shortable
    assert not assets["VIX"].tradable and assets["VIX"].asset_class == "index"
    assert assets["SPY"].tradable and assets["SPY"].asset_class == "us_equity"


async def test_minute_bars_returns_only_completed_bars(cal: NyseCalendar) -> None:
    start = ny(2024, 7, 2, 9, 30)
    bars = [Bar("AAA", start + timedelta(minutes=5 * i), 1, 2, 0.5, 1.5, 10) for i in range(6)]
    md = DailyBarMarketData({}, cal, intraday={"AAA": list(reversed(bars))})
    got = await md.minute_bars(["AAA", "NOPE"], start=start, end=ny(2024, 7, 2, 9, 47))
    assert [b.at for b in got["AAA"]] == [bars[0].at, bars[1].at, bars[2].at]  # 09:45 bar ends at 09:50
    exact = await md.minute_bars(["AAA"], start=ny(2024, 7, 2, 9, 35), end=ny(2024, 7, 2, 9, 50))
    assert [b.at for b in exact["AAA"]] == [bars[1].at, bars[2].at, bars[3].at]
    assert await md.minute_bars(["AAA"], start=ny(2024, 7, 2, 9, 30), end=ny(2024, 7, 2, 9, 34)) == {}


async def test_ohlc_on_gives_decimals_for_the_broker(market: DailyBarMarketData) -> None:
    ohlc = market.ohlc_on(date(2024, 7, 1))
    assert ohlc["AAA"] == (Decimal("100"), Decimal("102"), Decimal("98"), Decimal("101"))
    assert market.opens_on(date(2024, 7, 1), ["AAA", "NOPE"]) == {"AAA": Decimal("100")}
    assert market.ohlc_on(date(2024, 7, 4)) == {}


def test_context_symbols_are_recognised() -> None:
    assert BENCHMARK_SYMBOLS == ("SPY", "VIX")
    assert set(SECTOR_ETFS) == {"XLB", "XLC", "XLE", "XLF", "XLI", "XLK", "XLP", "XLRE", "XLU", "XLV", "XLY"}
    assert SECTOR_ETFS["XLK"] == "Information Technology"


async def test_replay_from_a_directory_reports_what_it_skipped(tmp_path: Path, cal: NyseCalendar) -> None:
    (tmp_path / "AAA_data.csv").write_text(
        "date,open,high,low,close,volume,Name\n"
        "2024-07-01,10,11,9,10.5,100,AAA\n2024-07-02,10.5,11,10,10.8,100,AAA\n"
        "2024-07-04,10.8,11,10,10.9,100,AAA\n2024-07-05,,,,10.9,0,AAA\n"
    )
    md = ReplayMarketData([tmp_path], cal)
    assert dict(md.load_report.for_file("AAA_data.csv").skipped) == {"not a trading day": 1, "blank open, high, low": 1}
    bars = await md.daily_bars(["AAA"], as_of=ny(2024, 7, 10, 12), lookback=10)
    assert bars["AAA"].days == (date(2024, 7, 1), date(2024, 7, 2))


async def test_replay_real_data_has_no_look_ahead(shared_data: Path, cal: NyseCalendar) -> None:
    d = shared_data / "daily" / "sp500_2013_2018"
    intraday = shared_data / "intraday" / "1min_2022-10_2022-11"
    md = ReplayMarketData(
        [d / "AAPL_data.csv", d / "MSFT_data.csv", shared_data / "daily" / "context", intraday / "AAPL.csv"], cal
    )
    as_of = ny(2016, 6, 24, 12)  # the Brexit-vote session is in progress
    bars = await md.daily_bars(["AAPL", "MSFT", "SPY", "VIX", *SECTOR_ETFS], as_of=as_of, lookback=250)
    assert {"AAPL", "MSFT", "SPY", "VIX", "XLK"} <= set(bars)
    assert "XLC" not in bars  # XLC starts trading in 2018
    for s in bars.values():
        assert s.days[-1] == date(2016, 6, 23)
        assert len(s) == (179 if s.symbol == "XLRE" else 250)  # XLRE starts trading on 2015-10-08
    spy = md.series("SPY")
    assert spy is not None
    quote = (await md.latest_quotes(["SPY"], as_of=as_of))["SPY"]
    i = spy.index_of(date(2016, 6, 24))
    assert i is not None and quote.last == spy.open[i] != spy.close[i]
    minute = await md.minute_bars(["AAPL"], start=ny(2022, 10, 19, 9, 30), end=ny(2022, 10, 19, 9, 35))
    assert len(minute["AAPL"]) == 5
    assert np.all(np.diff([b.at.timestamp() for b in minute["AAPL"]]) == 60)
    assert minute["AAPL"][-1].at == datetime(2022, 10, 19, 13, 34, tzinfo=UTC)
