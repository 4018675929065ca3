"""Benchmarks of a simulation, on Quorum's terms: SPY buy-and-hold and the equal-weighted universe.

A benchmark buys at the same price the simulated broker would fill a market order sent before the first
session (that session's open moved against it by the slippage, `domain.risk.fees.fill_price`), pays the same
fees (`order_fee` with the run's `FeeSettings`), holds to the end and is valued like Quorum's equity: cash plus
shares at each close, no exit costs for what is still held. Fractional shares (to 9 decimals) as the
simulated broker allows; the cent left over stays in cash. When the run counts dividends
(`application.dividends`), a benchmark is credited the cash dividends of the shares it held at the previous
close, on the ex-date, as Quorum's account is.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import Any

from domain.analytics import performance
from domain.market_conditions import BENCHMARK
from domain.models.market import BarSeries
from domain.models.trading import Side
from domain.money import CENT, QTY_STEP, ZERO, money, price
from domain.ports.clock import MarketCalendar
from domain.ports.market_data import MarketData
from domain.risk.config import FeeSettings
from domain.risk.fees import fill_price, order_fee

Dividends = Mapping[str, Mapping[date, Decimal]]
NAMES = ("spy_buy_and_hold", "equal_weight_universe")


@dataclass(frozen=True, slots=True)
class BuyAndHold:
    """A buy-and-hold portfolio's value at every day of its window, and what it paid and received."""

    values: list[Decimal]
    fees: Decimal
    dividends: Decimal


@dataclass(frozen=True, slots=True)
class _Bought:
    series: BarSeries
    qty: Decimal
    paid: Decimal
    fee: Decimal


def _buy(series: BarSeries, budget: Decimal, fees: FeeSettings) -> _Bought:
    """A market buy of `budget` filled at the open of the window's second day (a cent is kept for rounding)."""
    px = fill_price(Side.BUY, price(series.open[1]), fees)
    spendable = budget - order_fee(Side.BUY, ZERO, px, fees) - CENT
    qty = (spendable / px).quantize(QTY_STEP, rounding=ROUND_DOWN) if spendable > 0 else ZERO
    if qty <= 0:
        return _Bought(series, ZERO, ZERO, ZERO)
    fee = order_fee(Side.BUY, qty, px, fees)
    return _Bought(series, qty, money(qty * px) + fee, fee)


def buy_and_hold(window: Sequence[BarSeries], cash: Decimal, fees: FeeSettings,
                 dividends: Dividends | None = None) -> BuyAndHold:
    """`cash` split equally over the series, bought at the open of their second day (the first is the close the
    run starts from), then held.

    Args:
        window: bars of every symbol over the same days (the session before the run, then the run's sessions).
        cash: starting cash.
        fees: the run's slippage and fees.
        dividends: cash dividend per share by ex-date of each symbol, when the run counts dividends.

    Returns:
        The value at each day of the window (`cash` on the first), fees paid and dividends received.
    """
    if not window:
        return BuyAndHold([], ZERO, ZERO)
    n = min(len(s) for s in window)
    budget = (cash / len(window)).quantize(CENT, rounding=ROUND_DOWN)
    held = [b for b in (_buy(s, budget, fees) for s in window) if b.qty > 0]
    left = cash - sum((b.paid for b in held), ZERO)
    values, received = [cash], ZERO
    for k in range(1, n):
        if k >= 2 and dividends:
            received += sum((money(b.qty * d) for b in held
                             if (d := dividends.get(b.series.symbol, {}).get(b.series.days[k]))), ZERO)
        values.append(left + received + sum((money(b.qty * price(b.series.close[k])) for b in held), ZERO))
    return BuyAndHold(values, sum((b.fee for b in held), ZERO), received)


def _window(bars: Mapping[str, BarSeries], symbol: str, sessions: Sequence[date]) -> BarSeries | None:
    b = bars.get(symbol)
    if b is None:
        return None
    b = b.between(sessions[0], sessions[-1])
    return b if len(b) == len(sessions) else None


def _summary(run: BuyAndHold, sessions: Sequence[date]) -> dict[str, float | None]:
    if not run.values:
        return {"total_return": None, "sharpe": None, "max_drawdown": None}
    p = performance(list(zip(sessions, run.values, strict=False)))
    return {"total_return": p.total_return, "annualized_return": p.annualized_return, "sharpe": p.sharpe,
            "max_drawdown": p.max_drawdown, "final_equity": float(run.values[-1]), "fees": float(run.fees),
            "dividends": float(run.dividends)}


async def benchmarks(market: MarketData, calendar: MarketCalendar, symbols: list[str], sessions: list[date],
                     cash: Decimal, *, fees: FeeSettings, dividends: Dividends | None = None) -> dict[str, Any]:
    """SPY buy-and-hold and the equal-weighted universe over `sessions` (the session before the run, then the
    run's) from `cash`, on Quorum's terms (see the module docstring); the SPY benchmark's daily returns under
    "_spy_returns", for alpha and beta; and under "_curves" each benchmark's value at every session ({name: [(day,
    value)]}, for the report's charts). A benchmark without bars on every session has no figures (None) and no
    curve."""
    end_at = calendar.session_close(sessions[-1])
    bars = await market.daily_bars(sorted(set(symbols) | {BENCHMARK}), as_of=end_at, lookback=len(sessions) + 5)
    spy = _window(bars, BENCHMARK, sessions)
    universe = [w for w in (_window(bars, s, sessions) for s in symbols) if w is not None]
    out: dict[str, Any] = {"_spy_returns": [], "_curves": {}}
    for name, window in zip(NAMES, ([spy] if spy is not None else [], universe), strict=True):
        run = buy_and_hold(window, cash, fees, dividends)
        out[name] = _summary(run, sessions)
        if run.values:
            out["_curves"][name] = list(zip(sessions, run.values, strict=False))
        if name == NAMES[0] and run.values:
            v = [float(x) for x in run.values]
            out["_spy_returns"] = [b / a - 1.0 for a, b in itertools.pairwise(v)]
    return out
