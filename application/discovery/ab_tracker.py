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

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from domain.discovery.evaluation import ABReport, TradeReturn, WelchTest, welch_t_test
from domain.models.trading import Fill, Side
from domain.ports.clock import MarketCalendar
from domain.ports.discovery import ENSEMBLE, Suggestion
from domain.ports.market_data import MarketData
from domain.ports.uow import UnitOfWorkFactory

__all__ = ["ABReport", "ABTracker", "TradeReturn", "WelchTest", "closed_trades", "entry_session",
           "hypothetical_trades", "welch_t_test"]


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
