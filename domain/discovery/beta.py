"""Daily returns and OLS beta against a benchmark, vectorised over symbols and NaN-aware."""

from __future__ import annotations

import math

import numpy as np

from domain.models.market import FloatArray

MIN_OBSERVATION_SHARE = 0.75
"""Share of a window that must hold data for a statistic over it to be reported (else NaN)."""

_FLAT_TOLERANCE = 1e-12
"""Benchmark variance below this share of its mean square counts as no movement (beta undefined)."""


def default_min_observations(window: int) -> int:
    """Observations required for a statistic over `window` days: 75% of the window, at least 2."""
    return max(2, math.ceil(MIN_OBSERVATION_SHARE * window))


def daily_returns(close: FloatArray) -> FloatArray:
    """Simple close-to-close returns along the last axis.

    Args:
        close: (n_days,) or (n_symbols, n_days) prices, NaN where missing.

    Returns:
        One column fewer than `close`; NaN where either close is missing or not positive.
    """
    close = np.asarray(close, dtype=np.float64)
    if close.shape[-1] < 2:
        return np.empty((*close.shape[:-1], 0))
    prev = close[..., :-1]
    cur = close[..., 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = cur / prev - 1.0
    out[~((prev > 0) & (cur > 0))] = np.nan
    return out


def rolling_beta(
    returns: FloatArray,
    benchmark_returns: FloatArray,
    window: int,
    min_observations: int | None = None,
) -> FloatArray:
    """OLS beta (cov / var) of each symbol's returns on the benchmark's over the last `window` days.

    Pairwise-complete: a day counts for a symbol only when both its return and the benchmark's
    are finite, and means, covariance and variance use only those days. This is the slope of a
    least-squares fit of the symbol's returns on the benchmark's over the shared days.

    Args:
        returns: (n_symbols, n_days) daily returns, NaN where missing.
        benchmark_returns: (n_days,) benchmark daily returns on the same days.
        window: number of most recent days to use (all days if fewer are available).
        min_observations: shared days required, default 75% of `window`; fewer gives NaN.

    Returns:
        (n_symbols,) betas, NaN where there is too little data or the benchmark did not move.
    """
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window}")
    returns = np.atleast_2d(np.asarray(returns, dtype=np.float64))
    benchmark_returns = np.asarray(benchmark_returns, dtype=np.float64)
    if benchmark_returns.shape != (returns.shape[1],):
        raise ValueError(f"benchmark_returns has shape {benchmark_returns.shape}, expected ({returns.shape[1]},)")
    need = default_min_observations(window) if min_observations is None else max(2, min_observations)
    r = returns[:, -window:]
    m = benchmark_returns[-window:]
    ok = np.isfinite(r) & np.isfinite(m)
    count = ok.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        m_mean = np.where(ok, m, 0.0).sum(axis=1) / count
        r_mean = np.where(ok, r, 0.0).sum(axis=1) / count
        dm = np.where(ok, m - m_mean[:, None], 0.0)
        dr = np.where(ok, r - r_mean[:, None], 0.0)
        var = (dm * dm).sum(axis=1)
        beta: FloatArray = (dr * dm).sum(axis=1) / var
    flat = ~(var > _FLAT_TOLERANCE * (var + count * m_mean * m_mean))
    beta[(count < need) | flat] = np.nan
    return beta
