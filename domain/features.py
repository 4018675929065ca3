"""Deterministic per-symbol features computed from daily bars (no look-ahead: callers pass bars up to as_of)."""

from __future__ import annotations

import math

import numpy as np

from domain.agents.schemas import SymbolFeatures
from domain.models.market import BarSeries

MIN_BARS = 61


def _ret(close: np.ndarray, days: int) -> float:
    if len(close) <= days or close[-days - 1] <= 0:
        return 0.0
    return float(close[-1] / close[-days - 1] - 1.0)


def _finite(x: float, default: float = 0.0) -> float:
    return x if math.isfinite(x) else default


def compute_features(
    bars: BarSeries, *, held_qty: float = 0.0, avg_entry: float | None = None
) -> SymbolFeatures | None:
    """Features of the newest bar of `bars`, or None with fewer than `MIN_BARS` bars.

    Args:
        bars: daily bars up to and including the last session known at the cycle time.
        held_qty: quantity currently held.
        avg_entry: average entry price of the position, when held.
    """
    if len(bars) < MIN_BARS:
        return None
    close, high, low, volume = bars.close, bars.high, bars.low, bars.volume
    price = float(close[-1])
    if not math.isfinite(price) or price <= 0:
        return None
    rets = close[-21:] / close[-22:-1] - 1.0
    vol20 = float(np.std(rets, ddof=1) * math.sqrt(252)) if len(rets) > 2 else 0.0
    prev_close = close[-15:-1]
    tr = np.maximum(high[-14:] - low[-14:], np.maximum(abs(high[-14:] - prev_close), abs(low[-14:] - prev_close)))
    atr_pct = float(np.mean(tr) / price)
    dollar = close[-20:] * volume[-20:]
    avg_vol = float(np.mean(volume[-20:]))
    unrealized = (price / avg_entry - 1.0) if (held_qty and avg_entry) else None
    return SymbolFeatures(
        symbol=bars.symbol,
        price=price,
        return_1d=_finite(_ret(close, 1)),
        return_5d=_finite(_ret(close, 5)),
        return_20d=_finite(_ret(close, 20)),
        return_60d=_finite(_ret(close, 60)),
        sma_20=_finite(float(np.mean(close[-20:])), price),
        sma_50=_finite(float(np.mean(close[-50:])), price),
        volatility_20d=_finite(vol20),
        atr_pct=_finite(atr_pct),
        avg_dollar_volume_20d=_finite(float(np.mean(dollar))),
        volume_ratio=_finite(float(volume[-1] / avg_vol) if avg_vol > 0 else 0.0),
        held_qty=held_qty,
        unrealized_return=unrealized,
    )


def setup_text(f: SymbolFeatures, action: str = "BUY") -> str:
    """The text embedded for trade-memory recall of a setup like this one."""
    trend = "uptrend" if f.price > f.sma_50 else "downtrend"
    return (
        f"{action} {f.symbol}: {trend}, price {f.price:.2f} vs 50-day average {f.sma_50:.2f}; "
        f"20-day return {f.return_20d:+.1%}, 5-day {f.return_5d:+.1%}; volatility {f.volatility_20d:.0%} annualised, "
        f"ATR {f.atr_pct:.1%}; volume {f.volume_ratio:.1f}x average"
    )
