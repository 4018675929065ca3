"""Return-series statistics with empyrical's conventions.

Every function takes simple (non-cumulative) periodic returns, oldest first.
Where empyrical answers NaN (too little data, a 0/0 ratio) these answer None;
where it answers +/-inf (a non-zero mean over zero dispersion, wins without
losses) these answer +/-inf as well. Nothing here raises on short or flat input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Returns = Sequence[float] | FloatArray

TRADING_DAYS = 252
BETA_MIN_VARIANCE = 1.0e-30


def as_array(returns: Returns) -> FloatArray:
    """Returns as a 1-d float64 array."""
    return np.asarray(returns, dtype=np.float64).reshape(-1)


def _ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, with +/-inf for x/0 and None for 0/0."""
    if denominator != 0:
        return numerator / denominator
    if numerator == 0:
        return None
    return math.copysign(math.inf, numerator)


def total_return(returns: Returns) -> float | None:
    """Compounded return of the whole series: prod(1 + r) - 1; None when empty."""
    r = as_array(returns)
    if r.size == 0:
        return None
    return float(np.prod(1.0 + r)) - 1.0


def annualized_return(returns: Returns, *, periods_per_year: int = TRADING_DAYS) -> float | None:
    """Compound annual growth rate: (1 + total)^(periods_per_year / n) - 1.

    Returns:
        The CAGR, or None when the series is empty or lost more than everything.
    """
    r = as_array(returns)
    total = total_return(r)
    if total is None or 1.0 + total < 0:
        return None
    return float((1.0 + total) ** (periods_per_year / r.size)) - 1.0


def annual_volatility(returns: Returns, *, periods_per_year: int = TRADING_DAYS) -> float | None:
    """Sample standard deviation (ddof=1) times sqrt(periods_per_year); None for fewer than 2 returns."""
    r = as_array(returns)
    if r.size < 2:
        return None
    return float(np.std(r, ddof=1)) * math.sqrt(periods_per_year)


def sharpe_ratio(returns: Returns, *, risk_free: float = 0.0, periods_per_year: int = TRADING_DAYS) -> float | None:
    """Annualised Sharpe ratio: mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year).

    Args:
        returns: periodic simple returns.
        risk_free: risk-free return per period (not annual).
        periods_per_year: 252 for daily returns.

    Returns:
        The ratio; None for fewer than 2 returns or a zero mean over zero dispersion;
        +/-inf for a non-zero mean over identical returns.
    """
    r = as_array(returns) - risk_free
    if r.size < 2:
        return None
    std = 0.0 if r.max() == r.min() else float(np.std(r, ddof=1))
    ratio = _ratio(float(np.mean(r)), std)
    return None if ratio is None else ratio * math.sqrt(periods_per_year)


def downside_risk(
    returns: Returns, *, required_return: float = 0.0, periods_per_year: int = TRADING_DAYS
) -> float | None:
    """Annualised downside deviation below `required_return`: sqrt(mean(min(r - req, 0)^2)) * sqrt(ppy)."""
    r = as_array(returns)
    if r.size < 1:
        return None
    below = np.clip(r - required_return, -np.inf, 0.0)
    return math.sqrt(float(np.mean(np.square(below)))) * math.sqrt(periods_per_year)


def sortino_ratio(
    returns: Returns, *, required_return: float = 0.0, periods_per_year: int = TRADING_DAYS
) -> float | None:
    """Annualised Sortino ratio as empyrical computes it.

    mean(r - req) * ppy / downside_risk(r, req).

    Returns:
        The ratio; None for fewer than 2 returns or a zero mean with no downside;
        +inf for a positive mean with no return below `required_return`.
    """
    r = as_array(returns)
    if r.size < 2:
        return None
    risk = downside_risk(r, required_return=required_return, periods_per_year=periods_per_year)
    if risk is None:
        return None
    return _ratio(float(np.mean(r - required_return)) * periods_per_year, risk)


def drawdown_curve(returns: Returns) -> FloatArray:
    """Drawdown (<= 0) after each return, from the cumulative return curve anchored at 1 before the first."""
    r = as_array(returns)
    wealth = np.concatenate(([1.0], np.cumprod(1.0 + r)))
    peak = np.fmax.accumulate(wealth)
    curve: FloatArray = ((wealth - peak) / peak)[1:]
    return curve


def max_drawdown(returns: Returns) -> float | None:
    """Largest peak-to-trough fall of the cumulative return curve, as a positive fraction; None when empty."""
    r = as_array(returns)
    if r.size == 0:
        return None
    return -float(np.min(drawdown_curve(r))) + 0.0


def alpha_beta(
    returns: Returns,
    benchmark: Returns,
    *,
    risk_free: float = 0.0,
    periods_per_year: int = TRADING_DAYS,
) -> tuple[float | None, float | None]:
    """Annualised alpha and beta against a benchmark (empyrical's alpha_beta).

    beta = cov(r, b) / var(b) (population moments); alpha = (1 + mean((r - rf) - beta (b - rf)))^ppy - 1.

    Args:
        returns: strategy returns.
        benchmark: benchmark returns of the same periods.
        risk_free: risk-free return per period.
        periods_per_year: 252 for daily returns.

    Returns:
        (alpha, beta); both None for fewer than 2 returns or a benchmark with no variance.

    Raises:
        ValueError: the two series differ in length.
    """
    r, b = as_array(returns), as_array(benchmark)
    if r.size != b.size:
        raise ValueError(f"returns and benchmark differ in length: {r.size} != {b.size}")
    if r.size < 2:
        return None, None
    b_res = b - np.mean(b)
    variance = float(np.mean(np.square(b_res)))
    if variance < BETA_MIN_VARIANCE:
        return None, None
    beta = float(np.mean(b_res * r)) / variance
    excess = (r - risk_free) - beta * (b - risk_free)
    alpha = float((1.0 + np.mean(excess)) ** periods_per_year) - 1.0
    return alpha, beta


def win_rate(trade_returns: Returns) -> float | None:
    """Share of trades with a positive return (a zero return is not a win); None without trades."""
    t = as_array(trade_returns)
    if t.size == 0:
        return None
    return float(np.count_nonzero(t > 0)) / t.size


def profit_factor(trade_returns: Returns) -> float | None:
    """Sum of winning trade returns over the absolute sum of losing ones.

    Returns:
        The factor; None without trades or when every trade returned exactly 0;
        +inf with wins and no losses; 0.0 with losses and no wins.
    """
    t = as_array(trade_returns)
    if t.size == 0:
        return None
    return _ratio(float(t[t > 0].sum()), float(-t[t < 0].sum()))


def trailing_win_streak(trade_returns: Returns) -> int:
    """Number of consecutive positive returns at the end of the series."""
    streak = 0
    for value in reversed(as_array(trade_returns).tolist()):
        if value <= 0:
            break
        streak += 1
    return streak
