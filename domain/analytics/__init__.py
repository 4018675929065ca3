"""Performance analytics on daily series: time-weighted returns, empyrical-compatible ratios, windows.

Pure functions; numpy only. See `returns` for how deposits and withdrawals are
treated and `windows` for what "today", "week" and "month" mean.
"""

from domain.analytics.performance import Performance, json_float, performance
from domain.analytics.ratios import (
    TRADING_DAYS,
    alpha_beta,
    annual_volatility,
    annualized_return,
    downside_risk,
    drawdown_curve,
    max_drawdown,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
    total_return,
    trailing_win_streak,
    win_rate,
)
from domain.analytics.returns import daily_flows, time_weighted_returns
from domain.analytics.windows import Window, performance_for_window, window_start

__all__ = [
    "TRADING_DAYS",
    "Performance",
    "Window",
    "alpha_beta",
    "annual_volatility",
    "annualized_return",
    "daily_flows",
    "downside_risk",
    "drawdown_curve",
    "json_float",
    "max_drawdown",
    "performance",
    "performance_for_window",
    "profit_factor",
    "sharpe_ratio",
    "sortino_ratio",
    "time_weighted_returns",
    "total_return",
    "trailing_win_streak",
    "win_rate",
    "window_start",
]
