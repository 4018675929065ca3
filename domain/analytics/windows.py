"""Performance over the usual reporting windows: today, week, month, all.

Windows count trading sessions, not calendar days: "today" is the latest
session on or before `as_of`, "week" the last 5 sessions, "month" the last 21,
"all" everything up to `as_of`. A window of k sessions measures k daily
returns, so it starts from the valuation of the session before its first one
(today's return is measured from yesterday's close).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import date
from typing import Literal

from domain.analytics.performance import Performance, performance
from domain.analytics.ratios import TRADING_DAYS
from domain.analytics.returns import EquitySeries, FlowSeries, check_ascending

Window = Literal["today", "week", "month", "all"]
WINDOW_SESSIONS: dict[str, int] = {"today": 1, "week": 5, "month": 21}


def window_start(window: Window, as_of: date, sessions: Sequence[date]) -> date | None:
    """First session whose daily return belongs to the window.

    Args:
        window: "today" (1 session), "week" (5), "month" (21) or "all".
        as_of: last day of the window; later sessions are ignored.
        sessions: trading sessions, ascending.

    Returns:
        The first session of the window (the earliest session when there are fewer than the
        window asks for); None for "all" (no lower bound) or when no session is on or before as_of.

    Raises:
        ValueError: an unknown window.
    """
    if window == "all":
        return None
    if window not in WINDOW_SESSIONS:
        raise ValueError(f"unknown window {window!r}; expected today, week, month or all")
    upto = bisect.bisect_right(sessions, as_of)
    if upto == 0:
        return None
    return sessions[max(upto - WINDOW_SESSIONS[window], 0)]


def performance_for_window(
    window: Window,
    equity: EquitySeries,
    *,
    as_of: date,
    sessions: Sequence[date] | None = None,
    flows: FlowSeries = (),
    trades: Sequence[tuple[date, float]] = (),
    benchmark: Sequence[tuple[date, float]] | None = None,
    exposure: Sequence[tuple[date, float]] = (),
    risk_free: float = 0.0,
    periods_per_year: int = TRADING_DAYS,
) -> Performance:
    """`performance` of the part of the series that falls in `window`.

    The equity curve is cut to the valuation before the window's first session (the base)
    through `as_of`; flows, trades, benchmark returns and exposure are taken on the window's
    days (first session through as_of; for "all", every day up to as_of).

    Args:
        window: "today", "week", "month" or "all".
        equity: (day, end-of-day equity), days strictly increasing.
        as_of: last day counted; nothing after it is seen.
        sessions: trading sessions; the equity days when omitted.
        flows: (day, net deposit) pairs.
        trades: (day closed, trade return) pairs.
        benchmark: (day, benchmark daily return) pairs; must cover every return day of the window.
        exposure: (day, gross exposure / equity) pairs.
        risk_free: risk-free return per period.
        periods_per_year: 252 for daily valuations.

    Returns:
        The window's Performance (empty figures when no valuation falls in it).

    Raises:
        ValueError: an unknown window, unsorted days, or a benchmark missing a return day.
    """
    check_ascending(equity)
    days = [d for d, _ in equity]
    first = window_start(window, as_of, days if sessions is None else sessions)
    hi = bisect.bisect_right(days, as_of)
    if window == "all":
        lo, first_day = 0, date.min
    elif first is None:
        lo, first_day = hi, as_of
    else:
        lo, first_day = max(bisect.bisect_left(days, first) - 1, 0), first
    cut = list(equity[lo:hi])

    def in_window(day: date) -> bool:
        return first_day <= day <= as_of

    bench: list[float] | None = None
    if benchmark is not None:
        by_day = dict(benchmark)
        missing = [d for d, _ in cut[1:] if d not in by_day]
        if missing:
            raise ValueError(f"benchmark has no return for {missing[0].isoformat()}")
        bench = [by_day[d] for d, _ in cut[1:]]
    return performance(
        cut,
        flows=[(d, a) for d, a in flows if d <= as_of],
        trade_returns=[r for d, r in trades if in_window(d)],
        benchmark_returns=bench,
        exposure=[x for d, x in exposure if in_window(d)],
        risk_free=risk_free,
        periods_per_year=periods_per_year,
    )
