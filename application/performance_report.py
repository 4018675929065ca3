"""Performance of the live account over today, week, month or all, from the recorded equity and fills.

The equity repository holds a point per cycle (several a day); the daily curve takes
the last point of each New York trading day. `EquityPoint.net_deposits` is read as the
running total of money moved in (withdrawals negative), so a day's flow is the change of
that total. Closed-trade returns come from the real fills, average cost per symbol.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import cast, get_args

from domain.analytics import Performance, Window, performance_for_window
from domain.models.trading import Fill, Side
from domain.money import ZERO, money
from domain.ports.clock import MarketCalendar
from domain.ports.repositories import EquityPoint
from domain.ports.uow import UnitOfWorkFactory

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
    """

    window: str
    as_of: datetime
    start_equity: Decimal | None
    end_equity: Decimal | None
    valuations: int
    performance: Performance


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


async def performance_report(uow_factory: UnitOfWorkFactory, scope: str, calendar: MarketCalendar, *, window: str,
                             as_of: datetime) -> PerformanceReport:
    """Performance of `scope` over `window` ending at `as_of`.

    Args:
        uow_factory: opens units of work.
        scope: whose equity and fills.
        calendar: trading sessions (windows count sessions).
        window: "today", "week", "month" or "all".
        as_of: end of the window (timezone-aware).

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
    perf = performance_for_window(cast(Window, window), equity, as_of=today, sessions=sessions or None, flows=flows,
                                  trades=closed_trade_returns([r.fill for r in fills], calendar.tz), exposure=exposure)
    by_day = dict(equity)
    return PerformanceReport(window, as_of, None if perf.start is None else by_day[perf.start],
                             None if perf.end is None else by_day[perf.end],
                             0 if perf.start is None else perf.days + 1, perf)
