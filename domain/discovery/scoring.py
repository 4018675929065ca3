"""Vectorised measures and 0..1 scalings shared by the pickers.

Every function works on whole matrices (one row per symbol, one column per day, oldest
first) and treats NaN as missing: a statistic with too few observations is NaN, and scalings
leave NaN inputs NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from domain.discovery.beta import default_min_observations
from domain.models.market import FloatArray

TRADING_DAYS_PER_YEAR = 252

# (suffix, divisor, smallest value shown with it): 999_960 prints "1.0M", not "1000.0K"
_UNITS = (("T", 1e12, 0.99995e12), ("B", 1e9, 0.99995e9), ("M", 1e6, 0.99995e6), ("K", 1e3, 999.5))
_THRESHOLDS = np.array([t for _, _, t in reversed(_UNITS)])
_DIVISORS = np.array([1.0, *(d for _, d, _ in reversed(_UNITS))])
_SUFFIXES = ("", *(u for u, _, _ in reversed(_UNITS)))


def trailing(values: FloatArray, window: int) -> FloatArray:
    """The last `window` columns (all of them when there are fewer)."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    return values[..., -window:]


def nan_mean(values: FloatArray, min_observations: int = 1) -> FloatArray:
    """Mean along the last axis over finite entries; NaN with fewer than `min_observations`."""
    ok = np.isfinite(values)
    count = ok.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean: FloatArray = np.where(ok, values, 0.0).sum(axis=-1) / count
    mean[count < max(1, min_observations)] = np.nan
    return mean


def average_volume(volume: FloatArray, window: int) -> FloatArray:
    """Mean daily share volume over the last `window` days (days without data skipped)."""
    return nan_mean(trailing(volume, window))


def average_dollar_volume(close: FloatArray, volume: FloatArray, window: int) -> FloatArray:
    """Mean daily close x volume over the last `window` days (days without data skipped)."""
    return nan_mean(trailing(close, window) * trailing(volume, window))


def annualised_volatility(
    returns: FloatArray,
    window: int,
    min_observations: int | None = None,
    periods_per_year: int = TRADING_DAYS_PER_YEAR,
) -> FloatArray:
    """Sample standard deviation (ddof 1) of the last `window` daily returns, times sqrt(periods_per_year).

    Args:
        returns: (n_symbols, n_days) daily returns, NaN where missing.
        window: number of most recent days.
        min_observations: finite returns required, default 75% of `window`; fewer gives NaN.
        periods_per_year: annualisation factor.

    Returns:
        (n_symbols,) annualised volatilities.
    """
    need = default_min_observations(window) if min_observations is None else max(2, min_observations)
    r = trailing(returns, window)
    ok = np.isfinite(r)
    count = ok.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(ok, r, 0.0).sum(axis=-1) / count
        dev = np.where(ok, r - mean[..., None], 0.0)
        vol: FloatArray = np.sqrt((dev * dev).sum(axis=-1) / (count - 1) * periods_per_year)
    vol[count < need] = np.nan
    return vol


def trailing_return(close: FloatArray, lookback: int, skip: int = 0) -> FloatArray:
    """Momentum: return from `lookback + skip` days before the last column to `skip` days before it.

    `skip=1` leaves out the newest day (the usual short-term-reversal guard). NaN when either
    close is missing or not positive, or when the history is too short.
    """
    if lookback < 1 or skip < 0:
        raise ValueError(f"lookback must be >= 1 and skip >= 0, got {lookback}, {skip}")
    n_days = close.shape[-1]
    if n_days < lookback + skip + 1:
        return np.full(close.shape[:-1], np.nan)
    end = close[..., n_days - 1 - skip]
    start = close[..., n_days - 1 - skip - lookback]
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = end / start - 1.0
    out[~((start > 0) & (end > 0))] = np.nan
    return out


def percentile_rank(values: FloatArray) -> FloatArray:
    """Rank of each finite value among the finite values, scaled to 0 (lowest) .. 1 (highest).

    Ties share their average rank; a single finite value gets 0.5; NaN stays NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(values))
    m = idx.size
    if m == 1:
        out[idx] = 0.5
    if m < 2:
        return out
    finite = values[idx]
    order = np.argsort(finite, kind="stable")
    ordered = finite[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ends = np.append(starts[1:], m)
    ranks = np.empty(m)
    ranks[order] = np.repeat((starts + ends - 1) / 2.0, ends - starts)
    out[idx] = ranks / (m - 1)
    return out


def minmax_scale(values: FloatArray) -> FloatArray:
    """Linear map of the finite values onto 0..1; all equal gives 0.5; NaN stays NaN."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.full(values.shape, np.nan)
    low, high = finite.min(), finite.max()
    if high == low:
        return np.where(np.isfinite(values), 0.5, np.nan)
    out: FloatArray = (values - low) / (high - low)
    return out


def triangular_membership(values: FloatArray, low: float, peak: float, high: float) -> FloatArray:
    """Fuzzy triangle: 0 at or below `low`, rising linearly to 1 at `peak`, back to 0 at `high`; NaN stays NaN."""
    if not low < peak < high:
        raise ValueError(f"need low < peak < high, got {low}, {peak}, {high}")
    rising = (values - low) / (peak - low)
    falling = (high - values) / (high - peak)
    out: FloatArray = np.clip(np.minimum(rising, falling), 0.0, 1.0)
    return out


def sector_exposures(held_sectors: Mapping[str, float], watchlist_sectors: Mapping[str, int]) -> dict[str, float]:
    """How represented each sector already is: the larger of its portfolio share and its watchlist share.

    Args:
        held_sectors: sector -> share of portfolio value, each within 0..1.
        watchlist_sectors: sector -> number of watchlist symbols.

    Returns:
        sector -> exposure within 0..1, for every sector of either input.
    """
    for sector, share in held_sectors.items():
        if not 0.0 <= share <= 1.0 + 1e-9:
            raise ValueError(f"held share of {sector!r} must be within 0..1 (a share, not a value), got {share}")
    if any(count < 0 for count in watchlist_sectors.values()):
        raise ValueError("watchlist sector counts must not be negative")
    total = sum(watchlist_sectors.values())
    exposures = {sector: min(1.0, float(share)) for sector, share in held_sectors.items()}
    for sector, count in watchlist_sectors.items():
        watch_share = count / total if total else 0.0
        exposures[sector] = max(exposures.get(sector, 0.0), watch_share)
    return exposures


def sector_balance_scores(
    sectors: Sequence[str | None],
    held_sectors: Mapping[str, float],
    watchlist_sectors: Mapping[str, int],
    saturation: float = 0.4,
    unknown: float = 0.5,
) -> FloatArray:
    """Diversification value of each symbol's sector: 1 - min(1, exposure / saturation).

    A sector in neither the portfolio nor the watchlist scores 1; the score falls linearly with
    the sector's exposure (see `sector_exposures`) and reaches 0 at `saturation`
    (by default a sector already making up 40% of the portfolio or watchlist). A symbol whose
    sector is unknown scores `unknown`.
    """
    if saturation <= 0:
        raise ValueError(f"saturation must be positive, got {saturation}")
    exposures = sector_exposures(held_sectors, watchlist_sectors)
    table: dict[str | None, float] = {
        s: 1.0 - min(1.0, exposures.get(s, 0.0) / saturation) for s in dict.fromkeys(sectors) if s is not None
    }
    table[None] = unknown
    return np.fromiter(map(table.__getitem__, sectors), dtype=np.float64, count=len(sectors))


def compact_number(value: float) -> str:
    """12_345_678 -> "12.3M"; thousands K, millions M, billions B, trillions T; "n/a" for NaN."""
    value = float(value)
    if not math.isfinite(value):
        return "n/a"
    size = abs(value)
    for unit, divisor, threshold in _UNITS:
        if size >= threshold:
            return f"{value / divisor:.1f}{unit}"
    return f"{value:.0f}"


def compact_dollars(value: float) -> str:
    """12_345_678 -> "$12.3M" (see `compact_number`)."""
    return "$" + compact_number(value) if math.isfinite(value) else "n/a"


def compact_numbers(values: FloatArray, prefix: str = "") -> list[str]:
    """`compact_number` of every value, the unit chosen vectorised; `prefix` (e.g. "$") before each."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    unit = np.where(finite, np.searchsorted(_THRESHOLDS, np.abs(values), side="right"), -1)
    scaled = (values / _DIVISORS[np.maximum(unit, 0)]).tolist()
    return [
        f"{prefix}{v:.1f}{_SUFFIXES[u]}" if u > 0 else (f"{prefix}{v:.0f}" if u == 0 else "n/a")
        for v, u in zip(scaled, unit.tolist(), strict=True)
    ]


def signed_percents(values: FloatArray) -> list[str]:
    """0.042 -> "+4.2%"; NaN -> "n/a"."""
    return [f"{v:+.1%}" if v == v else "n/a" for v in np.asarray(values, dtype=np.float64).tolist()]
