"""Paper-trade tracker: hypothetical trades from every suggestion against the trades actually taken.

- Hypothetical (B): for each suggestion of a picker (the ensemble by default), buy at the open of the
  first session that opens after the suggestion and sell at the close of the `horizon`-th session held
  (open of day 1 to close of day `horizon`). Only trades whose exit has closed by `as_of` count.
- Actual (A): round trips in the fills of the scope (average cost, closed by sells) whose symbol had
  been suggested by that picker at or before the entry, i.e. trades the cycle took from the watchlist.
Both are price returns before fees, so they compare like with like. The report gives the difference
of the mean returns (actual - hypothetical) and Welch's t-test (unequal variances) on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from domain.models.trading import Fill, Side
from domain.ports.clock import MarketCalendar
from domain.ports.discovery import ENSEMBLE, Suggestion
from domain.ports.market_data import MarketData
from domain.ports.uow import UnitOfWorkFactory


@dataclass(frozen=True)
class TradeReturn:
    """One trade, real or hypothetical, as a price return."""

    symbol: str
    entry_at: datetime
    exit_at: datetime
    entry_price: float
    exit_price: float

    @property
    def ret(self) -> float:
        """exit / entry - 1."""
        return self.exit_price / self.entry_price - 1.0


@dataclass(frozen=True)
class WelchTest:
    """Welch's two-sample t-test: statistic, Welch-Satterthwaite degrees of freedom, two-sided p-value."""

    t: float
    df: float
    p_value: float


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    m = math.fsum(values) / len(values)
    return m, math.fsum((v - m) ** 2 for v in values) / (len(values) - 1)


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> WelchTest | None:
    """Welch's t-test of mean(a) - mean(b); None with fewer than two values in a group or zero variance in both."""
    if len(a) < 2 or len(b) < 2:
        return None
    (ma, va), (mb, vb) = _mean_var(a), _mean_var(b)
    qa, qb = va / len(a), vb / len(b)
    if qa + qb <= 0:
        return None
    from scipy.special import stdtr  # Student's t CDF; imported here, where it is needed (scipy is slow to load)

    t = (ma - mb) / math.sqrt(qa + qb)
    df = (qa + qb) ** 2 / (qa**2 / (len(a) - 1) + qb**2 / (len(b) - 1))
    return WelchTest(t, df, float(2.0 * stdtr(df, -abs(t))))


def closed_trades(fills: Sequence[Fill]) -> list[TradeReturn]:
    """Round trips of long positions at average cost: each sell closes part of the open lot."""
    lots: dict[str, tuple[Decimal, Decimal, datetime]] = {}
    out: list[TradeReturn] = []
    for f in sorted(fills, key=lambda f: f.at):
        qty, cost, opened = lots.get(f.symbol, (Decimal(0), Decimal(0), f.at))
        if f.side == Side.BUY:
            lots[f.symbol] = (qty + f.qty, cost + f.qty * f.price, opened if qty > 0 else f.at)
        elif qty > 0:
            sold = min(f.qty, qty)
            avg = cost / qty
            out.append(TradeReturn(f.symbol, opened, f.at, float(avg), float(f.price)))
            lots[f.symbol] = (qty - sold, cost - avg * sold, opened)
    return out


def entry_session(calendar: MarketCalendar, at: datetime) -> date:
    """The first session whose open is strictly after `at`."""
    day = calendar.next_session(calendar.previous_session(at))
    return day if calendar.session_open(day) > at else calendar.next_session(day)


async def hypothetical_trades(market: MarketData, calendar: MarketCalendar, suggestions: Sequence[Suggestion], *,
                              horizon: int, as_of: datetime) -> list[TradeReturn]:
    """One trade per suggestion whose exit session has closed by `as_of` (see the module docstring)."""
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    last = calendar.previous_session(as_of)
    plans = []
    for s in suggestions:
        entry = entry_session(calendar, s.as_of)
        exit_ = entry
        for _ in range(horizon - 1):
            exit_ = calendar.next_session(exit_)
        if exit_ <= last:
            plans.append((s, entry, exit_))
    if not plans:
        return []
    lookback = len(calendar.sessions(min(e for _, e, _ in plans), last)) + 1
    bars = await market.daily_bars(sorted({s.symbol for s, _, _ in plans}), as_of=as_of, lookback=lookback)
    out = []
    for s, entry, exit_ in plans:
        b = bars.get(s.symbol)
        i, j = (b.index_of(entry), b.index_of(exit_)) if b is not None else (None, None)
        if b is None or i is None or j is None or not (b.open[i] > 0 and b.close[j] > 0):
            continue
        out.append(TradeReturn(s.symbol, calendar.session_open(entry), calendar.session_close(exit_),
                               float(b.open[i]), float(b.close[j])))
    return out


@dataclass(frozen=True)
class ABReport:
    """Actual trades (A) against hypothetical trades from suggestions (B)."""

    picker: str
    horizon: int
    actual: list[TradeReturn]
    hypothetical: list[TradeReturn]

    @property
    def mean_actual(self) -> float | None:
        """Mean return of the trades taken."""
        return math.fsum(t.ret for t in self.actual) / len(self.actual) if self.actual else None

    @property
    def mean_hypothetical(self) -> float | None:
        """Mean return of the hypothetical trades."""
        return math.fsum(t.ret for t in self.hypothetical) / len(self.hypothetical) if self.hypothetical else None

    @property
    def difference(self) -> float | None:
        """mean_actual - mean_hypothetical."""
        a, b = self.mean_actual, self.mean_hypothetical
        return None if a is None or b is None else a - b

    @property
    def test(self) -> WelchTest | None:
        """Welch's t-test of the difference."""
        return welch_t_test([t.ret for t in self.actual], [t.ret for t in self.hypothetical])

    def to_json(self) -> dict[str, Any]:
        """JSON-safe view."""
        test = self.test
        return {"picker": self.picker, "horizon_days": self.horizon, "actual_trades": len(self.actual),
                "hypothetical_trades": len(self.hypothetical), "mean_actual": self.mean_actual,
                "mean_hypothetical": self.mean_hypothetical, "difference": self.difference,
                "t": None if test is None else test.t, "df": None if test is None else test.df,
                "p_value": None if test is None else test.p_value}


class ABTracker:
    """Builds the A/B report of one scope."""

    def __init__(self, uow_factory: UnitOfWorkFactory, market: MarketData, calendar: MarketCalendar, *,
                 scope: str) -> None:
        self._uow_factory, self._market, self._calendar, self._scope = uow_factory, market, calendar, scope

    async def report(self, as_of: datetime, *, horizon: int = 5, picker: str = ENSEMBLE,
                     since: datetime | None = None) -> ABReport:
        """Trades taken and hypothetical trades from `picker`'s suggestions made in [since, as_of)."""
        async with self._uow_factory() as uow:
            suggestions = await uow.suggestions.list(self._scope, since=since, until=as_of, picker=picker,
                                                     limit=10_000_000)
            fills = await uow.fills.list(self._scope, since=since, until=as_of)
        first: dict[str, datetime] = {}
        for s in suggestions:
            first[s.symbol] = min(first.get(s.symbol, s.as_of), s.as_of)
        actual = [t for t in closed_trades([r.fill for r in fills])
                  if t.symbol in first and first[t.symbol] <= t.entry_at]
        hypothetical = await hypothetical_trades(self._market, self._calendar, suggestions, horizon=horizon,
                                                 as_of=as_of)
        return ABReport(picker, horizon, actual, hypothetical)
