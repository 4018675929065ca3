"""Performance of the live account over today, week, month or all, from the recorded equity and fills.

The equity repository holds a point per cycle (several a day); the daily curve takes
the last point of each New York trading day. `EquityPoint.net_deposits` is read as the
running total of money moved in (withdrawals negative), so a day's flow is the change of
that total. Closed-trade returns come from the real fills, average cost per symbol.

With market data, alpha and beta are measured against SPY: its daily closes on the valuation days (today's
latest quote while today's bar is not in yet), each return taken between the same two days as the equity's.
Without a close on every valuation day of the window there is no alpha (None), never a guessed one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import cast, get_args

import structlog

from domain.analytics import Performance, Window, performance_for_window
from domain.errors import QuorumError
from domain.market_conditions import BENCHMARK
from domain.models.trading import Fill, Side
from domain.money import ZERO, money
from domain.ports.clock import MarketCalendar
from domain.ports.market_data import MarketData
from domain.ports.repositories import EquityPoint
from domain.ports.uow import UnitOfWorkFactory

log = structlog.get_logger(__name__)
WINDOWS: tuple[str, ...] = get_args(Window)


@dataclass(frozen=True)
class PerformanceReport:
    """Performance of an account over a window.

    Attributes:
        window: "today", "week", "month" or "all".
        as_of: the end of the window.
        start_equity: equity at the first valuation of the window (None without one).
        end_equity: equity at the last valuation of the window (None without one).
        valuations: daily valuations in the window.
        performance: the figures (None where there is not enough data).
        benchmark: the symbol alpha and beta are measured against (None when they were not measured).
    """

    window: str
    as_of: datetime
    start_equity: Decimal | None
    end_equity: Decimal | None
    valuations: int
    performance: Performance
    benchmark: str | None = None


def daily_points(points: Sequence[EquityPoint], tz: tzinfo) -> list[tuple[date, EquityPoint]]:
    """The last point of each exchange day (in the exchange's time zone `tz`), days ascending."""
    by_day: dict[date, EquityPoint] = {}
    for p in sorted(points, key=lambda p: p.at):
        by_day[p.at.astimezone(tz).date()] = p
    return sorted(by_day.items())


def closed_trade_returns(fills: Sequence[Fill], tz: tzinfo) -> list[tuple[date, float]]:
    """(exchange day closed, return) of every sale against the average cost of the shares it sells, fees included;
    days in the exchange's time zone `tz`."""
    book: dict[str, tuple[Decimal, Decimal]] = {}
    out: list[tuple[date, float]] = []
    for f in sorted(fills, key=lambda f: f.at):
        qty, cost = book.get(f.symbol, (ZERO, ZERO))
        if f.side is Side.BUY:
            book[f.symbol] = (qty + f.qty, cost + money(f.qty * f.price) + f.fee)
        elif qty > 0:
            avg = cost / qty
            sold = min(f.qty, qty)
            if avg > 0:
                out.append((f.at.astimezone(tz).date(), float((money(sold * f.price) - f.fee) / (avg * sold) - 1)))
            book[f.symbol] = (qty - sold, cost - avg * sold)
    return out


def aligned_returns(days: Sequence[date], closes: dict[date, float]) -> list[tuple[date, float]]:
    """(day, return since the previous day of `days`) for every day after the first whose close and whose previous
    day's close are both known: a benchmark's returns over the same spans as the equity curve's."""
    return [(d, closes[d] / closes[p] - 1) for p, d in itertools.pairwise(days)
            if d in closes and p in closes and closes[p] > 0]


async def benchmark_closes(market: MarketData, calendar: MarketCalendar, symbol: str, days: Sequence[date], *,
                           as_of: datetime) -> dict[date, float]:
    """Closes of `symbol` by exchange day from the first of `days` on; the day of `as_of` from the latest quote
    while its bar is not in yet. Empty when the market data cannot be read (logged)."""
    if not days:
        return {}
    today = as_of.astimezone(calendar.tz).date()
    lookback = len(calendar.sessions(days[0], max(days[-1], today))) + 5
    try:
        bars = await market.daily_bars([symbol], as_of=as_of, lookback=lookback)
        series = bars.get(symbol)
        closes = {} if series is None else {d: float(c) for d, c in zip(series.days, series.close, strict=True)}
        if today in days and today not in closes:
            quote = (await market.latest_quotes([symbol], as_of=as_of)).get(symbol)
            if quote is not None and quote.mid > 0:
                closes[today] = quote.mid
    except QuorumError as exc:
        log.warning("benchmark_unavailable", symbol=symbol, error=str(exc))
        return {}
    return closes


async def performance_report(uow_factory: UnitOfWorkFactory, scope: str, calendar: MarketCalendar, *, window: str,
                             as_of: datetime, market: MarketData | None = None,
                             benchmark: str = BENCHMARK) -> PerformanceReport:
    """Performance of `scope` over `window` ending at `as_of`.

    Args:
        uow_factory: opens units of work.
        scope: whose equity and fills.
        calendar: trading sessions (windows count sessions).
        window: "today", "week", "month" or "all".
        as_of: end of the window (timezone-aware).
        market: daily bars and quotes of `benchmark`, for alpha and beta (None: not measured).
        benchmark: the symbol alpha is measured against (SPY).

    Returns:
        The window's first and last equity, its number of valuations and the performance figures.

    Raises:
        ValueError: an unknown window.
    """
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window[:20]!r}; expected one of {', '.join(WINDOWS)}")
    async with uow_factory() as uow:
        points = await uow.equity.list(scope, until=as_of)
        fills = await uow.fills.list(scope, until=as_of)
    days = daily_points(points, calendar.tz)
    today = as_of.astimezone(calendar.tz).date()
    equity = [(d, p.equity) for d, p in days]
    flows = [(d, p.net_deposits - prev.net_deposits) for (_, prev), (d, p) in itertools.pairwise(days)
             if p.net_deposits != prev.net_deposits]
    exposure = [(d, float(p.exposure / p.equity)) for d, p in days if p.equity > 0]
    sessions = calendar.sessions(days[0][0], today) if days else []
    trades = closed_trade_returns([r.fill for r in fills], calendar.tz)
    perf = performance_for_window(cast(Window, window), equity, as_of=today, sessions=sessions or None, flows=flows,
                                  trades=trades, exposure=exposure)
    measured = None
    if market is not None and perf.start is not None and perf.end is not None and perf.days >= 2:
        cut = [d for d, _ in equity if perf.start <= d <= perf.end]
        bench = aligned_returns(cut, await benchmark_closes(market, calendar, benchmark, cut, as_of=as_of))
        if len(bench) == len(cut) - 1:
            measured = benchmark
            perf = performance_for_window(cast(Window, window), equity, as_of=today, sessions=sessions or None,
                                          flows=flows, trades=trades, exposure=exposure, benchmark=bench)
    by_day = dict(equity)
    return PerformanceReport(window, as_of, None if perf.start is None else by_day[perf.start],
                             None if perf.end is None else by_day[perf.end],
                             0 if perf.start is None else perf.days + 1, perf, measured)
