"""Paper-trade tracker: Welch's t-test (checked against scipy), round trips from fills, hypothetical trades from
suggestions (next open to the horizon's close, only once known), and the A/B report."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from scipy import stats

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.market_data import DailyBarMarketData
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from adapters.reports.shapes import paper_trades_json
from application.discovery.ab_tracker import (
    ABTracker,
    closed_trades,
    entry_session,
    hypothetical_trades,
    welch_t_test,
)
from domain.models.market import BarSeries
from domain.models.trading import Fill, Side
from domain.ports.discovery import Suggestion
from domain.ports.repositories import FillRecord

NY = ZoneInfo("America/New_York")
CAL = NyseCalendar()


def test_welch_matches_a_hand_computed_case_and_scipy() -> None:
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0]
    # means 2.5 and 6, variances 5/3 and 10: se^2 = 5/12 + 2 = 29/12
    t_hand = -3.5 / math.sqrt(29 / 12)
    df_hand = (29 / 12) ** 2 / ((5 / 12) ** 2 / 3 + 2**2 / 4)
    test = welch_t_test(a, b)
    assert test is not None
    assert test.t == pytest.approx(t_hand) and test.df == pytest.approx(df_hand)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert test.t == pytest.approx(ref.statistic) and test.p_value == pytest.approx(ref.pvalue)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_welch_agrees_with_scipy_on_random_samples(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.01, 0.05, 17).tolist(), rng.normal(-0.005, 0.02, 40).tolist()
    test, ref = welch_t_test(a, b), stats.ttest_ind(a, b, equal_var=False)
    assert test is not None
    assert (test.t, test.p_value) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))


def test_welch_needs_two_values_per_group_and_some_variance() -> None:
    assert welch_t_test([0.1], [0.2, 0.3]) is None
    assert welch_t_test([0.1, 0.1], [0.2, 0.2]) is None


def fill(symbol: str, side: Side, qty: str, price: str, at: datetime) -> Fill:
    return Fill(f"o-{symbol}-{at.isoformat()}", symbol, side, Decimal(qty), Decimal(price), Decimal("0.10"), at)


T = datetime(2024, 6, 3, 13, 30, tzinfo=UTC)


def test_round_trips_at_average_cost_before_fees() -> None:
    fills = [fill("AAA", Side.BUY, "10", "100", T), fill("AAA", Side.BUY, "10", "110", T + timedelta(days=1)),
             fill("AAA", Side.SELL, "5", "126", T + timedelta(days=2)),
             fill("AAA", Side.SELL, "15", "94.5", T + timedelta(days=3)),
             fill("BBB", Side.SELL, "1", "50", T)]  # a sell without a position is no trade
    trades = closed_trades(fills)
    assert [(t.symbol, t.entry_at, round(t.ret, 10)) for t in trades] == [("AAA", T, 0.2), ("AAA", T, -0.1)]


@pytest.mark.parametrize(("at", "expected"), [
    (datetime(2024, 6, 3, 9, 30, tzinfo=NY), date(2024, 6, 4)),   # exactly at the open: that open is not after it
    (datetime(2024, 6, 3, 8, 0, tzinfo=NY), date(2024, 6, 3)),    # before the open
    (datetime(2024, 6, 3, 13, 30, tzinfo=NY), date(2024, 6, 4)),  # during the session
    (datetime(2024, 6, 8, 12, 0, tzinfo=NY), date(2024, 6, 10)),  # Saturday
])
def test_the_hypothetical_entry_is_the_next_open(at: datetime, expected: date) -> None:
    assert entry_session(CAL, at) == expected


def bars(symbol: str, start: float) -> BarSeries:
    days = CAL.sessions(date(2024, 5, 1), date(2024, 6, 28))
    rows = [(d, start + i, start + i + 1, start + i - 1, start + i + 0.5, 1e6) for i, d in enumerate(days)]
    return BarSeries.from_rows(symbol, rows)


@pytest.fixture(scope="module")
def market() -> DailyBarMarketData:
    return DailyBarMarketData({"AAA": bars("AAA", 100.0), "BBB": bars("BBB", 50.0)}, CAL)


def suggestion(symbol: str, at: datetime) -> Suggestion:
    return Suggestion("r1", "live", "ensemble", symbol, 0.8, 1, at)


async def test_hypothetical_trades_run_from_the_next_open_to_the_horizons_close(market: DailyBarMarketData) -> None:
    made = CAL.session_open(date(2024, 6, 3))
    series = market.series("AAA")
    assert series is not None
    i, j = series.index_of(date(2024, 6, 4)), series.index_of(date(2024, 6, 5))
    expected = series.close[j] / series.open[i] - 1
    done = await hypothetical_trades(market, CAL, [suggestion("AAA", made)], horizon=2,
                                     as_of=CAL.session_close(date(2024, 6, 5)))
    assert [(t.symbol, t.entry_at, t.exit_at) for t in done] == [
        ("AAA", CAL.session_open(date(2024, 6, 4)), CAL.session_close(date(2024, 6, 5)))]
    assert done[0].ret == pytest.approx(expected)
    early = await hypothetical_trades(market, CAL, [suggestion("AAA", made)], horizon=2,
                                      as_of=CAL.session_close(date(2024, 6, 5)) - timedelta(minutes=1))
    assert early == []


async def test_the_report_compares_trades_taken_from_suggestions_with_the_hypothetical_ones(
    market: DailyBarMarketData,
) -> None:
    db = InMemoryDatabase(HashingEmbedder())
    d = [CAL.session_open(x) for x in CAL.sessions(date(2024, 6, 3), date(2024, 6, 14))]
    async with InMemoryUnitOfWork(db) as uow:
        await uow.suggestions.add([suggestion("AAA", d[0]), suggestion("BBB", d[0]), suggestion("AAA", d[1])])
        fills = [fill("AAA", Side.BUY, "1", "100", d[1]), fill("AAA", Side.SELL, "1", "110", d[3]),   # +10%
                 fill("BBB", Side.BUY, "2", "50", d[2]), fill("BBB", Side.SELL, "2", "49", d[4]),     # -2%
                 fill("AAA", Side.BUY, "1", "100", d[5]), fill("AAA", Side.SELL, "1", "104", d[6]),   # +4%
                 fill("CCC", Side.BUY, "1", "10", d[1]), fill("CCC", Side.SELL, "1", "20", d[2]),     # never suggested
                 ]
        await uow.fills.add([FillRecord(f, "live", None) for f in fills])
        await uow.commit()
    as_of = CAL.session_close(date(2024, 6, 14))
    report = await ABTracker(lambda: InMemoryUnitOfWork(db), market, CAL, scope="live").report(as_of, horizon=2)
    assert sorted(round(t.ret, 10) for t in report.actual) == [-0.02, 0.04, 0.1]
    assert len(report.hypothetical) == 3
    actual = [t.ret for t in report.actual]
    hypothetical = [t.ret for t in report.hypothetical]
    assert report.difference == pytest.approx(np.mean(actual) - np.mean(hypothetical))
    ref = stats.ttest_ind(actual, hypothetical, equal_var=False)
    assert report.test is not None and report.test.p_value == pytest.approx(ref.pvalue)
    as_json = paper_trades_json(report)
    assert as_json["actual_trades"] == 3 and as_json["p_value"] == pytest.approx(ref.pvalue)
