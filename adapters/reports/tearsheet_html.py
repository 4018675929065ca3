"""report.html, a self-contained tearsheet (charts inline as SVG, styles inline, nothing fetched), and equity.png.

Sections, in order: headline figures; equity against SPY and the equal-weighted universe with the circuit
breaker's trips and shadow periods shaded; figures against the benchmarks; drawdown; monthly returns; rolling
Sharpe; results per symbol and per exit reason; costs (fees, LLM); circuit breaker; dividends and survivorship;
invariants (rehearsals); settings used; summary.json's fields as written."""

from __future__ import annotations

import html
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.reports.tearsheet_charts import (
    drawdown_figure,
    equity_figure,
    rolling_sharpe_figure,
    save_png,
    to_svg,
)
from adapters.reports.tearsheet_data import (
    QUORUM,
    Curve,
    daily_returns,
    monthly_returns,
    per_exit,
    per_symbol,
    rolling_window,
    value_curves,
    yearly_returns,
)
from adapters.reports.tearsheet_format import text
from adapters.reports.tearsheet_notes import (
    appendix_html,
    breaker_html,
    currency_html,
    honesty_html,
    invariants_html,
    settings_html,
)
from adapters.reports.tearsheet_sections import (
    BENCHMARKS,
    costs_table,
    exits_table,
    headline,
    metrics_table,
    monthly_table,
    quorum_table,
    symbols_table,
)
from application.backtest import BacktestResult
from domain.analytics import performance

STYLE = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f4f6f9;color:#1d2330}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px;background:#fff;box-shadow:0 0 12px rgba(0,0,0,.06)}
h1{margin:0 0 4px;font-size:26px}
h2{margin:32px 0 10px;font-size:19px;border-bottom:1px solid #e3e7ee;padding-bottom:4px}
.sub{color:#5b6472;margin:0 0 14px}nav a{margin-right:12px;font-size:13px;color:#1f5fbf;text-decoration:none}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:18px 0}.card{flex:1 1 150px;border:1px solid #e3e7ee;
border-radius:8px;padding:10px 14px}.card .label{font-size:12px;color:#5b6472;text-transform:uppercase}
.card .value{font-size:22px;font-weight:600;margin-top:4px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 10px}th,td{padding:5px 10px;text-align:right;
border-bottom:1px solid #edf0f4}th:first-child{text-align:left}thead th{background:#f4f6f9;font-weight:600}
.pos{color:#19803d}.neg{color:#c0392b}.monthly td.pos{background:#e5f5ea}.monthly td.neg{background:#fbe9e7}
.monthly td.year{font-weight:600}.monthly td.bench{color:#5b6472;background:none}tr.total{font-weight:600}
.two{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}figure.chart{margin:6px 0}
figure.chart svg{display:block;width:100%;height:auto}.note{color:#5b6472;font-size:13px}
details{margin:10px 0}pre{background:#f4f6f9;padding:10px;font-size:12px;overflow:auto;max-height:420px}
.raw td,.raw th,table.text td,table.text th{text-align:left}
"""
NAV = (("equity", "Equity"), ("performance", "Performance"), ("drawdown", "Drawdown"), ("monthly", "Monthly"),
       ("rolling-sharpe", "Rolling Sharpe"), ("symbols", "Symbols"), ("exits", "Exits"), ("costs", "Costs"),
       ("breaker", "Breaker"), ("honesty", "Dividends"), ("settings", "Settings"))


def write_tearsheet(result: BacktestResult, summary: Mapping[str, Any], directory: Path) -> None:
    """Write equity.png and report.html into `directory` from the result and its summary (summary.json's
    fields)."""
    curves = value_curves(result)
    breaker = summary.get("breaker")
    fig = equity_figure(curves, breaker, f"Equity: Quorum against the benchmarks, {result.start} to {result.end}")
    save_png(fig, directory / "equity.png")
    charts = {"equity": to_svg(fig), "drawdown": to_svg(drawdown_figure(curves, breaker))}
    window = rolling_window(max(len(curves.get(QUORUM, [])) - 1, 0))
    charts["rolling-sharpe"] = to_svg(rolling_sharpe_figure(curves, window))
    (directory / "report.html").write_text(page(result, summary, curves, charts))


def series_figures(result: BacktestResult, summary: Mapping[str, Any],
                   curves: Mapping[str, Curve]) -> dict[str, dict[str, Any]]:
    """The figures of Quorum and of each benchmark with figures, by series: summary.json's, and Sortino and
    volatility computed from the benchmarks' curves (summary.json does not carry them)."""
    dividends = summary.get("dividends") or {}
    out: dict[str, dict[str, Any]] = {QUORUM: {
        **{k: summary.get(k) for k in ("total_return", "annualized_return", "sharpe", "sortino", "max_drawdown",
                                       "final_equity", "fees")},
        "volatility": result.performance.volatility, "dividends": dividends.get("credited")}}
    for name in BENCHMARKS:
        figures = dict((summary.get("benchmarks") or {}).get(name) or {})
        if figures.get("total_return") is None:
            continue
        curve = curves.get(name) or []
        if len(curve) > 1:
            p = performance([(d, Decimal(str(v))) for d, v in curve])
            figures.setdefault("sortino", p.sortino)
            figures.setdefault("volatility", p.volatility)
        out[name] = figures
    return out


def _chart(key: str, title: str, svg: str, note: str = "") -> str:
    caption = f"<p class='note'>{note}</p>" if note else ""
    return f"<h2 id='{key}'>{title}</h2><figure class='chart' data-chart='{key}'>{svg}</figure>{caption}"


def page(result: BacktestResult, summary: Mapping[str, Any], curves: Mapping[str, Curve],
         charts: Mapping[str, str]) -> str:
    """The whole report.html."""
    kind = "rehearsal" if summary.get("kind") == "rehearsal" else "backtest"
    quorum = curves.get(QUORUM, [])
    window = rolling_window(max(len(quorum) - 1, 0))
    trips, symbols = result.round_trips, per_symbol(result.round_trips, result.fills)
    yearly = {name: yearly_returns(c) for name, c in curves.items() if c}
    body = [
        f"<h1>Quorum {kind} {text(summary['run_id'])}</h1>",
        f"<p class='sub'>{text(summary['start'])} → {text(summary['end'])} · {text(summary['sessions'])} sessions · "
        f"{len(summary.get('symbols') or [])} symbols · starting cash ${text(summary['starting_cash'])}"
        + (f" · {text(summary['data'])}" if summary.get("data") else "") + "</p>",
        "<nav>" + "".join(f"<a href='#{k}'>{v}</a>" for k, v in NAV) + "</nav>",
        headline(summary),
        currency_html(summary.get("display_currency")),
        _chart("equity", "Equity against the benchmarks", charts["equity"],
               "All three start from the same cash on the session before the run. Shaded: the circuit breaker's "
               "shadow (halted) periods; dashed: trips."),
        f"<h2 id='performance'>Performance</h2><div class='two'>"
        f"{metrics_table(series_figures(result, summary, curves))}{quorum_table(summary)}</div>",
        _chart("drawdown", "Drawdown", charts["drawdown"]),
        f"<h2 id='monthly'>Monthly returns</h2>{monthly_table(monthly_returns(quorum), yearly)}"
        "<p class='note'>Quorum's return in each month (month-end equity over the previous month-end); the "
        "benchmarks' year on the right.</p>",
        _chart("rolling-sharpe", "Rolling Sharpe", charts["rolling-sharpe"],
               f"Sharpe of the last {window} daily returns, annualised; gaps where returns do not vary (no position)."
               if len(daily_returns([v for _, v in quorum])) >= window else
               f"The run is shorter than the {window}-session window."),
        "<h2 id='symbols'>Results per symbol</h2>"
        + (symbols_table(symbols) + "<p class='note'>Closed round trips (flat to flat), P&amp;L net of fees; "
           "fees are those of every fill of the symbol.</p>" if symbols else "<p>No trades in this run.</p>"),
        "<h2 id='exits'>Exit reasons</h2>"
        + (exits_table(per_exit(trips)) + "<p class='note'>What closed each round trip, from the closing sell's "
           "reason (trades.csv, column reason).</p>" if trips else "<p>No round trip closed in this run.</p>"),
        f"<h2 id='costs'>Costs</h2>{costs_table(summary)}<p class='note'>Slippage is in the fill prices; the "
        "benchmarks pay the same slippage and fees.</p>",
        breaker_html(summary.get("breaker")),
        honesty_html(summary),
        invariants_html(summary.get("invariants")),
        settings_html(summary.get("settings") or {}),
        appendix_html(summary),
        "<p class='note'>Files: summary.json, trades.csv (fills), round_trips.csv, dividends.csv, equity.csv, "
        "decisions.jsonl, equity.png.</p>",
    ]
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Quorum {kind} {html.escape(str(summary['run_id']))}</title><style>{STYLE}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>")
