"""Performance of an account over a daily equity curve."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np

from domain.analytics.ratios import (
    TRADING_DAYS,
    alpha_beta,
    annual_volatility,
    annualized_return,
    max_drawdown,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
    total_return,
    win_rate,
)
from domain.analytics.returns import EquitySeries, FlowSeries, daily_flows, time_weighted_returns
from domain.money import ZERO


def json_float(value: float | None) -> float | str | None:
    """A float for JSON: +/-inf become the strings "inf" / "-inf" (float() reads them back), NaN becomes None."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


@dataclass(frozen=True, slots=True)
class Performance:
    """Figures of one equity curve. Ratios follow empyrical (see `domain.analytics.ratios`).

    Attributes:
        total_return: compounded time-weighted return (flows are not return).
        annualized_return: (1 + total_return)^(periods_per_year / days) - 1.
        sharpe: annualised Sharpe ratio of the daily returns.
        sortino: annualised Sortino ratio (required return = risk_free).
        max_drawdown: largest fall of the time-weighted curve, a positive fraction.
        volatility: annualised standard deviation of the daily returns.
        win_rate: share of trades with a positive return.
        profit_factor: sum of winning trade returns / |sum of losing ones|.
        exposure: average gross exposure / equity over the days given.
        alpha: annualised alpha against the benchmark; None without one.
        beta: beta against the benchmark; None without one.
        net_deposits: deposits minus withdrawals booked after `start` up to `end`.
        profit: final equity - starting equity - net_deposits (money made, not money added).
        return_on_net_deposits: profit / (starting equity + net_deposits).
        trades: number of closed trades counted.
        start: day of the starting valuation the returns are measured from.
        end: day of the last valuation.
        days: number of daily returns measured (valuations - 1).

    None means "not enough data" (no returns, fewer than 2 returns, no trades, no
    benchmark, a 0/0 ratio); +/-inf means an unbounded ratio (a gain with no
    dispersion, wins without losses).
    """

    total_return: float | None
    annualized_return: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float | None
    volatility: float | None
    win_rate: float | None
    profit_factor: float | None
    exposure: float | None
    alpha: float | None
    beta: float | None
    net_deposits: Decimal
    profit: Decimal
    return_on_net_deposits: float | None
    trades: int
    start: date | None
    end: date | None
    days: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: Decimals as strings, dates ISO, infinities as "inf" / "-inf"."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if isinstance(value, Decimal):
                out[key] = str(value)
            elif isinstance(value, date):
                out[key] = value.isoformat()
            elif isinstance(value, float):
                out[key] = json_float(value)
            else:
                out[key] = value
        return out


def performance(
    equity: EquitySeries,
    *,
    flows: FlowSeries = (),
    trade_returns: Sequence[float] = (),
    benchmark_returns: Sequence[float] | None = None,
    exposure: Sequence[float] = (),
    risk_free: float = 0.0,
    periods_per_year: int = TRADING_DAYS,
) -> Performance:
    """Performance of an equity curve.

    Args:
        equity: (day, end-of-day equity), days strictly increasing. The first entry is the
            starting valuation; each later one contributes one daily return.
        flows: (day, net deposit) pairs, withdrawals negative; mapped to valuation days as
            `domain.analytics.returns` documents, so a deposit never shows up as return.
        trade_returns: returns of the trades closed in the period, in order.
        benchmark_returns: benchmark daily returns, one per daily return (len(equity) - 1).
        exposure: gross exposure / equity, one value per day of interest (usually per valuation).
        risk_free: risk-free return per period, used by Sharpe, Sortino and alpha.
        periods_per_year: 252 for daily valuations.

    Returns:
        The figures; see `Performance` for what None and inf mean. Never raises on short,
        flat or empty series.

    Raises:
        ValueError: days not strictly increasing, or a benchmark of the wrong length.
    """
    returns = time_weighted_returns(equity, flows)
    if benchmark_returns is not None and len(benchmark_returns) != returns.size:
        raise ValueError(f"benchmark has {len(benchmark_returns)} returns, the equity curve has {returns.size}")
    alpha, beta = (None, None)
    if benchmark_returns is not None:
        alpha, beta = alpha_beta(returns, benchmark_returns, risk_free=risk_free, periods_per_year=periods_per_year)
    net = sum(daily_flows(equity, flows), ZERO)
    first = equity[0][1] if equity else ZERO
    last = equity[-1][1] if equity else ZERO
    profit = last - first - net
    base = first + net
    return Performance(
        total_return=total_return(returns),
        annualized_return=annualized_return(returns, periods_per_year=periods_per_year),
        sharpe=sharpe_ratio(returns, risk_free=risk_free, periods_per_year=periods_per_year),
        sortino=sortino_ratio(returns, required_return=risk_free, periods_per_year=periods_per_year),
        max_drawdown=max_drawdown(returns),
        volatility=annual_volatility(returns, periods_per_year=periods_per_year),
        win_rate=win_rate(trade_returns),
        profit_factor=profit_factor(trade_returns),
        exposure=float(np.mean(np.asarray(exposure, dtype=np.float64))) if len(exposure) else None,
        alpha=alpha,
        beta=beta,
        net_deposits=net,
        profit=profit,
        return_on_net_deposits=float(profit / base) if equity and base > 0 else None,
        trades=len(trade_returns),
        start=equity[0][0] if equity else None,
        end=equity[-1][0] if equity else None,
        days=int(returns.size),
    )
