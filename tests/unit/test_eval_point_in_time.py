"""Snapshots read nothing after their session (every port read is as of the snapshot's close), and a validator
candidate is shown only past trades that had closed before it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.market_data import DailyBarMarketData, ReplayMarketData
from application.evals.evidence import EvidencePool
from application.evals.history import load_history
from application.evals.snapshot import Snapshots
from application.market_conditions import CONTEXT_SYMBOLS
from domain.models.market import BarSeries
from domain.ports.market_data import MarketData
from domain.risk.config import RiskSettings

MARKET = Path(__file__).resolve().parents[1] / "fixtures" / "market"
CALENDAR = NyseCalendar()
DAY = date(2015, 8, 20)  # the day before the August 2015 sell-off


@pytest.fixture(scope="module")
def real() -> ReplayMarketData:
    return ReplayMarketData([MARKET / "daily", MARKET / "context"], CALENDAR)


class SpyMarket(MarketData):
    """Delegates to a market and records every read and the newest bar it returned."""

    def __init__(self, inner: MarketData) -> None:
        self.inner = inner
        self.reads: list[tuple[datetime, date | None]] = []

    async def assets(self) -> Any:
        return await self.inner.assets()

    async def daily_bars(self, symbols: Sequence[str], *, as_of: datetime, lookback: int) -> dict[str, BarSeries]:
        out = await self.inner.daily_bars(symbols, as_of=as_of, lookback=lookback)
        newest = max((b.days[-1] for b in out.values() if len(b)), default=None)
        self.reads.append((as_of, newest))
        return out

    async def minute_bars(self, symbols: Sequence[str], *, start: datetime, end: datetime) -> Any:
        raise AssertionError("a snapshot reads no intraday bars")

    async def latest_quotes(self, symbols: Sequence[str], *, as_of: datetime) -> Any:
        raise AssertionError("a snapshot reads no quotes")


async def test_every_read_of_a_snapshot_is_as_of_its_close_and_returns_no_later_bar(real: ReplayMarketData) -> None:
    spy = SpyMarket(real)
    snap = await Snapshots(spy, CALENDAR).take("AAPL", DAY)
    assert snap is not None and snap.day == DAY and snap.as_of == CALENDAR.session_close(DAY)
    assert len(spy.reads) == 2  # the symbol, then the market context
    for as_of, newest in spy.reads:
        assert as_of == CALENDAR.session_close(DAY)
        assert newest == DAY


def _garbled_after(market: ReplayMarketData, day: date) -> DailyBarMarketData:
    """The same bars up to `day`; every later bar's prices tripled and volume zeroed."""
    out = {}
    for s in market.symbols:
        b = market.series(s)
        assert b is not None
        later = np.array([d > day for d in b.days])
        out[s] = replace(b, open=np.where(later, b.open * 3, b.open), high=np.where(later, b.high * 3, b.high),
                         low=np.where(later, b.low * 3, b.low), close=np.where(later, b.close * 3, b.close),
                         volume=np.where(later, 0.0, b.volume))
    return DailyBarMarketData(out, CALENDAR)


async def test_changing_every_bar_after_the_snapshot_changes_nothing_it_shows(real: ReplayMarketData) -> None:
    garbled = _garbled_after(real, DAY)
    for symbol in ("AAPL", "XOM", "GE"):
        before = await Snapshots(real, CALENDAR).take(symbol, DAY)
        after = await Snapshots(garbled, CALENDAR).take(symbol, DAY)
        assert before is not None and before == after
    later = await Snapshots(garbled, CALENDAR).take("AAPL", date(2015, 9, 1))
    assert later is not None and later.features.price > 2 * before.features.price  # the garbling is real


async def test_no_snapshot_on_a_day_without_a_bar_or_without_history(real: ReplayMarketData) -> None:
    snaps = Snapshots(real, CALENDAR)
    with pytest.raises(ValueError, match="not an NYSE trading day"):
        await snaps.take("AAPL", date(2015, 8, 22))  # a Saturday
    assert await snaps.take("AAPL", date(2014, 9, 10)) is None  # days into the data: no 61 bars yet
    assert await snaps.take("NOPE", DAY) is None


async def test_validator_evidence_is_only_trades_closed_before_the_snapshot(real: ReplayMarketData) -> None:
    history = await load_history(real, CALENDAR, end=date(2016, 6, 30), exclude=CONTEXT_SYMBOLS)
    pool = EvidencePool(history, seed=1, draws=600, horizon=20, risk=RiskSettings())
    assert len(pool.trades) > 50
    trade = pool.trades[len(pool.trades) // 2]
    on_exit = pool.nearest(trade.features, trade.exit_day, len(pool.trades))
    assert trade not in [m.trade for m in on_exit]
    assert all(m.trade.exit_day < trade.exit_day for m in on_exit)
    after = pool.nearest(trade.features, CALENDAR.next_session(trade.exit_day), 1)
    assert after[0].trade == trade and after[0].distance == pytest.approx(0.0, abs=1e-12)
    assert pool.nearest(trade.features, history.sessions[0], 5) == ()
