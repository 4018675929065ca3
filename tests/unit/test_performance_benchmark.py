"""Performance with a benchmark: a deposit is not return, and alpha and beta against SPY are measured over the
same days as the equity (an account that moves exactly with SPY, deposit included, has beta 1 and alpha 0)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.performance_report import aligned_returns, performance_report
from domain.chat import ToolCall
from domain.money import money
from domain.ports.repositories import EquityPoint
from tests.support.chat_fakes import CAL, SCOPE, SpyMarket, make_chat_world

DAYS = CAL.sessions(date(2024, 7, 8), date(2024, 7, 16))
SPY = dict(zip(DAYS, [400.0, 404.0, 402.0, 410.0, 405.0, 412.0, 415.0], strict=True))
DEPOSIT_DAY, DEPOSIT = DAYS[3], Decimal(1000)


def tracking_spy(db: InMemoryDatabase) -> list[EquityPoint]:
    """An account that earns exactly SPY's daily return, with $1,000 deposited at the close of DEPOSIT_DAY."""
    points, equity, deposits = [], Decimal(10_000), Decimal(0)
    for prev, day in zip([None, *DAYS], DAYS, strict=False):
        if prev is not None:
            equity = money(equity * Decimal(str(SPY[day] / SPY[prev])))
        if day == DEPOSIT_DAY:
            equity += DEPOSIT
            deposits += DEPOSIT
        points.append(EquityPoint(CAL.session_close(day), equity, equity, Decimal(0), deposits))
    return points


async def stored(points: list[EquityPoint]) -> InMemoryDatabase:
    db = InMemoryDatabase(HashingEmbedder())
    async with InMemoryUnitOfWork(db) as uow:
        for p in points:
            await uow.equity.add(SCOPE, p)
        await uow.commit()
    return db


async def test_a_deposit_is_not_return_and_alpha_against_spy_is_zero_for_an_account_that_is_spy() -> None:
    db = await stored(tracking_spy(InMemoryDatabase(HashingEmbedder())))
    as_of = CAL.session_close(DAYS[-1]) + timedelta(hours=1)
    report = await performance_report(lambda: InMemoryUnitOfWork(db), SCOPE, CAL, window="all", as_of=as_of,
                                      market=SpyMarket(SPY))
    p = report.performance
    assert report.benchmark == "SPY" and p.net_deposits == DEPOSIT
    assert p.total_return == pytest.approx(415 / 400 - 1, abs=1e-5)
    assert p.beta == pytest.approx(1.0, abs=1e-3) and p.alpha == pytest.approx(0.0, abs=1e-3)
    plain = await performance_report(lambda: InMemoryUnitOfWork(db), SCOPE, CAL, window="all", as_of=as_of)
    assert plain.benchmark is None and plain.performance.alpha is None
    assert plain.performance.total_return == p.total_return


async def test_an_account_ahead_of_spy_has_positive_alpha() -> None:
    points = [EquityPoint(x.at, x.equity + Decimal(30) * i, x.cash, x.exposure, x.net_deposits)
              for i, x in enumerate(tracking_spy(InMemoryDatabase(HashingEmbedder())))]
    db = await stored(points)
    as_of = CAL.session_close(DAYS[-1]) + timedelta(hours=1)
    report = await performance_report(lambda: InMemoryUnitOfWork(db), SCOPE, CAL, window="week", as_of=as_of,
                                      market=SpyMarket(SPY))
    assert report.performance.alpha is not None and report.performance.alpha > 0.1


async def test_no_alpha_without_a_spy_close_on_every_valuation_day() -> None:
    db = await stored(tracking_spy(InMemoryDatabase(HashingEmbedder())))
    gappy = {d: c for d, c in SPY.items() if d != DAYS[4]}
    as_of = CAL.session_close(DAYS[-1]) + timedelta(hours=1)
    report = await performance_report(lambda: InMemoryUnitOfWork(db), SCOPE, CAL, window="all", as_of=as_of,
                                      market=SpyMarket(gappy))
    assert report.benchmark is None and report.performance.alpha is None
    assert report.performance.net_deposits == DEPOSIT


async def test_during_the_session_todays_spy_close_is_its_latest_quote() -> None:
    points = tracking_spy(InMemoryDatabase(HashingEmbedder()))
    points[-1] = EquityPoint(CAL.session_open(DAYS[-1]) + timedelta(hours=2), points[-1].equity, points[-1].cash,
                             points[-1].exposure, points[-1].net_deposits)
    db = await stored(points)
    as_of = CAL.session_open(DAYS[-1]) + timedelta(hours=2, minutes=1)
    with_quote = await performance_report(lambda: InMemoryUnitOfWork(db), SCOPE, CAL, window="week", as_of=as_of,
                                          market=SpyMarket(SPY, quote=SPY[DAYS[-1]]))
    assert with_quote.benchmark == "SPY" and with_quote.performance.beta == pytest.approx(1.0, abs=1e-3)
    without = await performance_report(lambda: InMemoryUnitOfWork(db), SCOPE, CAL, window="week", as_of=as_of,
                                       market=SpyMarket(SPY))
    assert without.benchmark is None and without.performance.alpha is None


def test_benchmark_returns_span_the_same_days_as_the_equity() -> None:
    closes = {date(2024, 7, 8): 100.0, date(2024, 7, 9): 110.0, date(2024, 7, 11): 121.0}
    days = [date(2024, 7, 8), date(2024, 7, 11)]  # no valuation on the 9th: one return over both sessions
    assert aligned_returns(days, closes) == [(date(2024, 7, 11), pytest.approx(0.21))]


async def test_the_performance_tool_reports_alpha_and_keeps_deposits_out() -> None:
    world = make_chat_world(market=SpyMarket(SPY))
    async with world.uow() as uow:
        for p in tracking_spy(world.db):
            await uow.equity.add(SCOPE, p)
        await uow.commit()
    at: datetime = CAL.session_close(DAYS[-1]) + timedelta(hours=1)
    result = await world.tools.run(ToolCall("c1", "performance", {"window": "all"}), who="alice", as_of=at)
    assert result.ok and result.data["benchmark"] == "SPY" and result.data["alpha"] == pytest.approx(0, abs=1e-3)
    assert Decimal(result.data["net_deposits"]) == DEPOSIT
    assert "return +3.75%" in result.text and "net deposits $1,000.00 are not counted as return" in result.text
    assert "alpha against SPY +0.00% a year (beta 1.00)" in result.text
    assert ("alpha", result.data["alpha"]) in result.rows
