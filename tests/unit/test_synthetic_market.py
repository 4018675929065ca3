"""SyntheticMarket: deterministic, consistent OHLC, positive prices, regimes that drive VIX, fundamentals, speed."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from adapters.calendar import NyseCalendar
from adapters.inmemory.market_data import SECTOR_ETFS, SyntheticMarket
from domain.models.market import BarSeries

NY = ZoneInfo("America/New_York")
START, END = date(2022, 1, 1), date(2023, 12, 31)


def bars(m: SyntheticMarket, symbol: str) -> BarSeries:
    s = m.series(symbol)
    assert s is not None
    return s


@pytest.fixture(scope="module")
def cal() -> NyseCalendar:
    return NyseCalendar()


@pytest.fixture(scope="module")
def market(cal: NyseCalendar) -> SyntheticMarket:
    return SyntheticMarket(7, 60, START, END, cal)


def test_same_seed_same_data_other_seed_other_data(cal: NyseCalendar, market: SyntheticMarket) -> None:
    again = SyntheticMarket(7, 60, START, END, cal)
    other = SyntheticMarket(8, 60, START, END, cal)
    for symbol in market.symbols:
        a, b = market.series(symbol), again.series(symbol)
        assert a is not None and b is not None
        for field in ("open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert market.sectors == again.sectors and market.market_caps == again.market_caps
    s0, o0 = market.series("S0000"), other.series("S0000")
    assert s0 is not None and o0 is not None
    assert not np.array_equal(s0.close, o0.close)


def test_universe_and_sessions(cal: NyseCalendar, market: SyntheticMarket) -> None:
    assert len(market.stock_symbols) == 60
    assert set(market.symbols) == {*market.stock_symbols, "SPY", "VIX", *SECTOR_ETFS}
    spy = market.series("SPY")
    assert spy is not None
    assert list(spy.days) == cal.sessions(START, END)


def test_ohlc_is_consistent_and_prices_positive(market: SyntheticMarket) -> None:
    for symbol in market.symbols:
        s = market.series(symbol)
        assert s is not None
        assert (s.low > 0).all(), symbol
        assert (s.low <= s.open).all() and (s.low <= s.close).all(), symbol
        assert (s.high >= s.open).all() and (s.high >= s.close).all(), symbol
        assert (s.volume >= 0).all()


def test_prices_stay_positive_in_a_long_stressed_run(cal: NyseCalendar) -> None:
    m = SyntheticMarket(3, 300, date(2000, 1, 1), date(2009, 12, 31), cal)
    lows = np.array([bars(m, s).low.min() for s in m.stock_symbols])
    assert (lows >= 0.01).all()


def test_vix_is_higher_in_the_stressed_regime(cal: NyseCalendar) -> None:
    m = SyntheticMarket(11, 5, date(2010, 1, 1), date(2019, 12, 31), cal)
    stressed = m.data.stressed
    assert 0.05 < stressed.mean() < 0.5  # both regimes occur
    vix, spy = m.series("VIX"), m.series("SPY")
    assert vix is not None and spy is not None
    assert vix.close[stressed].mean() > 1.4 * vix.close[~stressed].mean()
    r = spy.returns()
    assert r[stressed[1:]].std() > 2 * r[~stressed[1:]].std()
    assert np.corrcoef(r, np.diff(np.log(vix.close)))[0, 1] < -0.5
    assert m.regime(spy.days[int(np.argmax(stressed))]) == "stressed"


def test_stocks_move_with_the_market_and_gap_on_earnings(market: SyntheticMarket) -> None:
    spy = market.series("SPY")
    assert spy is not None
    corr = [np.corrcoef(spy.returns(), bars(market, s).returns())[0, 1] for s in market.stock_symbols]
    assert np.median(corr) > 0.3
    gaps = [np.abs(np.log(bars(market, s).open[1:] / bars(market, s).close[:-1])).max() for s in market.stock_symbols]
    assert np.median(gaps) > 0.05


def test_dollar_volume_spans_orders_of_magnitude(market: SyntheticMarket) -> None:
    dv = np.array([np.median(bars(market, s).close * bars(market, s).volume) for s in market.stock_symbols])
    assert dv.max() / dv.min() > 1000


async def test_fundamentals_sector_and_market_cap(market: SyntheticMarket) -> None:
    assert set(market.sectors.values()) <= set(SECTOR_ETFS.values())
    assert all(cap > 0 for cap in market.market_caps.values())
    fundamentals = market.fundamentals()
    s = market.stock_symbols[0]
    early = await fundamentals.get([s, "NOPE"], as_of=START)
    assert early == {}  # nothing dated before the first session
    rec = (await fundamentals.get([s], as_of=date(2022, 6, 30)))[s]
    assert rec.sector == market.sectors[s]
    series = market.series(s)
    assert series is not None
    i = series.index_of(rec.as_of)
    assert i is not None
    assert rec.market_cap == pytest.approx(market.market_caps[s] * series.close[i] / series.close[0])


async def test_market_data_reads_have_no_look_ahead(market: SyntheticMarket) -> None:
    bars = await market.daily_bars(["S0001"], as_of=datetime(2022, 3, 15, 12, tzinfo=NY), lookback=500)
    assert bars["S0001"].days[-1] == date(2022, 3, 14)
