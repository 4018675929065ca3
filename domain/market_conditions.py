"""Market-wide conditions: VIX (or a labelled proxy), SPY trend, sector ETF performance."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from domain.agents.schemas import MarketConditions
from domain.models.market import BarSeries

BENCHMARK = "SPY"
VIX = "VIX"
SECTOR_ETFS = ("XLB", "XLC", "XLE", "XLF", "XLI", "XLK", "XLP", "XLRE", "XLU", "XLV", "XLY")
FORWARD_DAYS = 5
TREND_WORDS = {"up": "uptrend", "down": "downtrend", "sideways": "no clear trend (sideways)"}


def _ret(close: np.ndarray, days: int) -> float:
    if len(close) <= days or close[-days - 1] <= 0:
        return 0.0
    return float(close[-1] / close[-days - 1] - 1.0)


def realised_vol_proxy(spy: BarSeries, days: int = 20) -> float | None:
    """Annualised realised volatility of SPY over `days`, in VIX points (percent)."""
    if len(spy) < days + 1:
        return None
    r = spy.close[-days - 1 :][1:] / spy.close[-days - 1 :][:-1] - 1.0
    return float(np.std(r, ddof=1) * math.sqrt(252) * 100)


def vix_regime(vix: float | None) -> str:
    """Plain-words label of a VIX level."""
    if vix is None:
        return "unknown volatility"
    if vix < 15:
        return "calm"
    if vix < 20:
        return "normal"
    if vix < 30:
        return "elevated"
    return "stressed"


def compute_conditions(
    spy: BarSeries, vix: BarSeries | None, sectors: Mapping[str, BarSeries]
) -> MarketConditions | None:
    """Conditions as of the newest SPY bar, or None with fewer than 50 SPY bars.

    When VIX is missing or stale (its last bar older than SPY's), a realised-volatility
    proxy of SPY is used and labelled as such.
    """
    if len(spy) < 50:
        return None
    close = spy.close
    sma20, sma50 = float(np.mean(close[-20:])), float(np.mean(close[-50:]))
    last = float(close[-1])
    if last > sma50 and sma20 > sma50:
        trend = "up"
    elif last < sma50 and sma20 < sma50:
        trend = "down"
    else:
        trend = "sideways"
    vix_level: float | None = None
    is_proxy = True
    if vix is not None and len(vix) and vix.days[-1] == spy.days[-1] and math.isfinite(float(vix.close[-1])):
        vix_level, is_proxy = float(vix.close[-1]), False
    else:
        vix_level = realised_vol_proxy(spy)
    sector_returns = {
        s: round(_ret(b.close, 20), 6) for s, b in sorted(sectors.items()) if len(b) > 20 and b.days[-1] == spy.days[-1]
    }
    spy20 = _ret(close, 20)
    conditions = MarketConditions(
        vix=None if vix_level is None else round(vix_level, 4),
        vix_is_proxy=is_proxy,
        spy_return_20d=round(spy20, 6),
        spy_above_sma_50=last > sma50,
        spy_trend=trend,
        sector_returns_20d=sector_returns,
    )
    return conditions.model_copy(update={"text": conditions_text(conditions, spy.days[-1].isoformat())})


def conditions_text(c: MarketConditions, day: str) -> str:
    """The text embedded for condition-memory recall."""
    vix_label = "VIX proxy (SPY realised vol)" if c.vix_is_proxy else "VIX"
    vix = f"{vix_label} {c.vix:.1f} ({vix_regime(c.vix)})" if c.vix is not None else "VIX unknown"
    parts = [
        f"Market on {day}: {vix}",
        f"SPY {TREND_WORDS[c.spy_trend]}, {c.spy_return_20d:+.1%} over 20 days, "
        f"{'above' if c.spy_above_sma_50 else 'below'} its 50-day average",
    ]
    if c.sector_returns_20d:
        ranked = sorted(c.sector_returns_20d.items(), key=lambda kv: (-kv[1], kv[0]))
        best = ", ".join(f"{s} {r:+.1%}" for s, r in ranked[:2])
        worst = ", ".join(f"{s} {r:+.1%}" for s, r in ranked[-2:])
        parts.append(f"strongest sectors {best}; weakest {worst}")
    return "; ".join(parts) + "."


def forward_outcome(spy_return: float) -> str:
    """Label of what SPY did after a condition."""
    if spy_return > 0.01:
        return "RALLY"
    if spy_return < -0.01:
        return "SELLOFF"
    return "FLAT"
