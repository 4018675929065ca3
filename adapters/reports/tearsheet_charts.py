"""The tearsheet's charts, drawn with matplotlib (Agg): equity against the benchmarks with the circuit breaker's
trips and shadow periods marked, the underwater (drawdown) chart and the rolling Sharpe. Each chart is returned as
inline SVG (text drawn as paths, so it looks the same offline on any machine); the equity chart is also written as
equity.png."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.reports.tearsheet_data import LABELS, QUORUM, Curve, daily_returns, drawdowns, rolling_sharpe

COLORS = {QUORUM: "#1f5fbf", "spy_buy_and_hold": "#5f6b7a", "equal_weight_universe": "#e0821e"}
SHADOW_COLOR, TRIP_COLOR, RESUME_COLOR = "#d9534f", "#b02a25", "#2e8b57"
_SVG_SIZE = re.compile(r'<svg([^>]*?) width="[^"]*" height="[^"]*"')


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _day(value: str) -> date:
    return datetime.fromisoformat(value).date() if "T" in value else date.fromisoformat(value)


def _style(ax: Any, title: str, ylabel: str, curves: Mapping[str, Curve]) -> None:
    """Title, label, grid, and the x axis over the run (the same on every chart)."""
    quorum = curves.get(QUORUM) or []
    if len(quorum) > 1:
        ax.set_xlim(quorum[0][0], quorum[-1][0])
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold", pad=24)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _legend(ax: Any) -> None:
    """The legend in one row between the title and the plot (never over a line), or a "no data" note on a chart
    with nothing drawn."""
    handles = ax.get_legend_handles_labels()[0]
    if handles:
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(handles), fontsize=9, frameon=False,
                  borderaxespad=0.2, handlelength=1.8, columnspacing=1.2)
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="#5b6472")


def _mark_breaker(ax: Any, breaker: Mapping[str, Any] | None) -> None:
    """Shade the shadow (halted) periods and draw a line at each trip and resume, each labelled once."""
    if not breaker:
        return
    for i, p in enumerate(breaker.get("shadow_periods", [])):
        ax.axvspan(_day(p["from"]), _day(p["to"]) + timedelta(days=1), color=SHADOW_COLOR, alpha=0.10, lw=0,
                   label="breaker: shadow mode" if i == 0 else None)
    for i, t in enumerate(breaker.get("trips", [])):
        ax.axvline(_day(t["at"]), color=TRIP_COLOR, ls="--", lw=1.2,
                   label="breaker trip" if i == 0 else None)
    for i, r in enumerate(breaker.get("resumes", [])):
        ax.axvline(_day(r["at"]), color=RESUME_COLOR, ls=":", lw=1.4, label="breaker resumed" if i == 0 else None)


def equity_figure(curves: Mapping[str, Curve], breaker: Mapping[str, Any] | None, title: str) -> Any:
    """Value in USD of Quorum and each benchmark, all from the same starting cash, breaker periods marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.6), dpi=100)
    for name, curve in curves.items():
        if curve:
            days, values = zip(*curve, strict=True)
            ax.plot(days, values, label=LABELS.get(name, name), color=COLORS.get(name),
                    lw=2.0 if name == QUORUM else 1.3, alpha=1.0 if name == QUORUM else 0.9)
    _mark_breaker(ax, breaker)
    _style(ax, title, "USD", curves)
    _legend(ax)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def drawdown_figure(curves: Mapping[str, Curve], breaker: Mapping[str, Any] | None) -> Any:
    """Underwater chart: Quorum's drawdown filled, the benchmarks' as lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.0), dpi=100)
    for name, curve in curves.items():
        if not curve:
            continue
        days = [d for d, _ in curve]
        dd = [100 * x for x in drawdowns([v for _, v in curve])]
        if name == QUORUM:
            ax.fill_between(days, dd, 0, color=COLORS[QUORUM], alpha=0.35, lw=0, label=LABELS[QUORUM])
            ax.plot(days, dd, color=COLORS[QUORUM], lw=1.0)
        else:
            ax.plot(days, dd, color=COLORS.get(name), lw=1.0, label=LABELS.get(name, name))
    _mark_breaker(ax, breaker)
    _style(ax, "Drawdown (underwater)", "% below the high", curves)
    _legend(ax)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def rolling_sharpe_figure(curves: Mapping[str, Curve], window: int) -> Any:
    """Annualised Sharpe over the last `window` sessions, Quorum and SPY."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.0), dpi=100)
    for name in (QUORUM, "spy_buy_and_hold"):
        curve = curves.get(name) or []
        if len(curve) < 2:
            continue
        sharpe = rolling_sharpe(daily_returns([v for _, v in curve]), window)
        ax.plot([d for d, _ in curve[1:]], [float("nan") if s is None else s for s in sharpe],
                color=COLORS.get(name), lw=1.8 if name == QUORUM else 1.1, label=LABELS.get(name, name))
    ax.axhline(0, color="#333333", lw=0.8)
    _style(ax, f"Rolling Sharpe ({window} sessions, annualised)", "Sharpe", curves)
    _legend(ax)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def to_svg(fig: Any) -> str:
    """The figure as an inline <svg> element that scales to its container (the figure is closed)."""
    plt = _pyplot()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    return _SVG_SIZE.sub(r'<svg\1 width="100%"', svg, count=1)


def save_png(fig: Any, path: Path) -> None:
    """Write the figure as a PNG (the figure stays open)."""
    fig.savefig(path)
