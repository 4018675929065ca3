"""The figures behind the tearsheet, computed from a backtest's result: value curves of Quorum and the
benchmarks, monthly and yearly returns, drawdowns, rolling Sharpe, results per symbol and per exit reason.

Every curve starts at the starting cash on the session before the run (the value returns are measured from, as in
`application.backtest`), so the months compound to the run's total return."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from application.backtest import BacktestResult
from application.round_trips import RoundTrip
from domain.analytics import drawdown_curve, sharpe_ratio
from domain.models.trading import Fill, Side

Curve = list[tuple[date, float]]
QUORUM = "quorum"
LABELS = {QUORUM: "Quorum", "spy_buy_and_hold": "SPY buy & hold", "equal_weight_universe": "Equal-weight universe"}
EXIT_KINDS = ("stop", "take profit", "trend exit", "breaker", "kill switch", "signal exit")


def value_curves(result: BacktestResult) -> dict[str, Curve]:
    """Quorum's equity and each benchmark's value by day, Quorum first, each starting with the starting cash on
    the session before the run (the benchmarks say which day that was; without them, the day before the first
    session). Empty when the run has no sessions."""
    if not result.equity:
        return {}
    firsts = [pts[0][0] for pts in result.benchmark_curves.values() if pts]
    start = min(firsts) if firsts else result.equity[0].day - timedelta(days=1)
    out = {QUORUM: [(start, float(result.starting_cash)), *((r.day, float(r.equity)) for r in result.equity)]}
    for name, pts in result.benchmark_curves.items():
        out[name] = [(d, float(v)) for d, v in pts]
    return out


def daily_returns(values: Sequence[float]) -> list[float]:
    """Simple return of each value over the one before it (0 after a value of 0)."""
    return [b / a - 1.0 if a else 0.0 for a, b in itertools.pairwise(values)]


def drawdowns(values: Sequence[float]) -> list[float]:
    """Drawdown (<= 0) at every value, from the highest value before it (0 at the first)."""
    if not values:
        return []
    return [0.0, *(float(x) for x in drawdown_curve(daily_returns(values)))]


def monthly_returns(curve: Curve) -> dict[int, dict[int, float]]:
    """Return of every calendar month after the curve's first value (the starting value): the last value of the
    month over the last value of the month before, or over the starting value for the first month.
    {year: {month: return}}; the months compound to the curve's total return."""
    if not curve:
        return {}
    start_value = curve[0][1]
    out: dict[int, dict[int, float]] = defaultdict(dict)
    ends: dict[tuple[int, int], float] = {}
    for day, value in curve[1:]:
        ends[(day.year, day.month)] = value
    base = start_value
    for (year, month), end in ends.items():
        out[year][month] = end / base - 1.0 if base else 0.0
        base = end
    return dict(out)


def yearly_returns(curve: Curve) -> dict[int, float]:
    """Return of every calendar year after the curve's first value, from the last value of the year before (the
    starting value for the first year)."""
    if not curve:
        return {}
    ends: dict[int, float] = {}
    for day, value in curve[1:]:
        ends[day.year] = value
    out, base = {}, curve[0][1]
    for year, end in ends.items():
        out[year] = end / base - 1.0 if base else 0.0
        base = end
    return out


def rolling_window(n_returns: int) -> int:
    """Sessions in the rolling Sharpe's window: 63 (a quarter) when the run has at least two of them, else a
    third of the run (at least 5)."""
    return 63 if n_returns >= 126 else max(5, n_returns // 3)


def rolling_sharpe(returns: Sequence[float], window: int) -> list[float | None]:
    """Annualised Sharpe of the `window` returns ending at each return; None before a full window and where the
    ratio is undefined or unbounded (no dispersion)."""
    out: list[float | None] = []
    for i in range(len(returns)):
        if i + 1 < window:
            out.append(None)
            continue
        s = sharpe_ratio(returns[i + 1 - window:i + 1])
        out.append(s if s is not None and math.isfinite(s) else None)
    return out


@dataclass(frozen=True, slots=True)
class TradeGroup:
    """The round trips of one symbol or one exit reason.

    Attributes:
        name: the symbol or the exit reason.
        trips: round trips.
        wins: round trips with a positive P&L.
        pnl: P&L net of fees, USD.
        avg_return: mean return of the round trips.
        best: best round-trip return.
        worst: worst round-trip return.
        avg_days: mean calendar days from the opening buy to the closing sell.
        fees: fees of every fill of the symbol (0 for an exit reason).
        open_at_end: shares still held at the end (symbols only).
    """

    name: str
    trips: int
    wins: int
    pnl: Decimal
    avg_return: float | None
    best: float | None
    worst: float | None
    avg_days: float | None
    fees: Decimal = Decimal(0)
    open_at_end: Decimal = Decimal(0)

    @property
    def win_rate(self) -> float | None:
        """Share of winning round trips; None without round trips."""
        return self.wins / self.trips if self.trips else None


def _group(name: str, trips: Sequence[RoundTrip], fees: Decimal = Decimal(0),
           held: Decimal = Decimal(0)) -> TradeGroup:
    returns = [t.return_pct for t in trips]
    days = [(t.closed_at - t.opened_at).total_seconds() / 86400 for t in trips]
    return TradeGroup(name, len(trips), sum(t.pnl > 0 for t in trips), sum((t.pnl for t in trips), Decimal(0)),
                      sum(returns) / len(returns) if returns else None, max(returns, default=None),
                      min(returns, default=None), sum(days) / len(days) if days else None, fees, held)


def per_symbol(trips: Sequence[RoundTrip], fills: Sequence[Fill]) -> list[TradeGroup]:
    """Results of every symbol traded, best P&L first: its round trips, the fees of all its fills and the shares
    still held at the end."""
    by_symbol: dict[str, list[RoundTrip]] = defaultdict(list)
    for t in trips:
        by_symbol[t.symbol].append(t)
    fees: dict[str, Decimal] = defaultdict(Decimal)
    held: dict[str, Decimal] = defaultdict(Decimal)
    for f in fills:
        fees[f.symbol] += f.fee
        held[f.symbol] += f.qty if f.side is Side.BUY else -f.qty
    groups = [_group(s, by_symbol.get(s, []), fees[s], max(held[s], Decimal(0))) for s in {*by_symbol, *fees}]
    return sorted(groups, key=lambda g: (-g.pnl, g.name))


def exit_kind(reason: str) -> str:
    """What closed a round trip, from the closing sell's reason: "kill switch", "breaker", "stop", "take profit",
    "trend exit" or, for any other exit the cycle decided, "signal exit"."""
    text = reason.lower()
    if "kill switch" in text:
        return "kill switch"
    if "breaker" in text:
        return "breaker"
    if "stop" in text:
        return "stop"
    if "take profit" in text or "take-profit" in text:
        return "take profit"
    if "trend" in text:
        return "trend exit"
    return "signal exit"


def per_exit(trips: Sequence[RoundTrip]) -> list[TradeGroup]:
    """Results of the round trips by what closed them, in the order of `EXIT_KINDS` (kinds without trips left
    out)."""
    by_kind: dict[str, list[RoundTrip]] = defaultdict(list)
    for t in trips:
        by_kind[exit_kind(t.exit_reason)].append(t)
    return [_group(k, by_kind[k]) for k in EXIT_KINDS if by_kind.get(k)]
