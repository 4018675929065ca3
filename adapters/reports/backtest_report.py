"""Writes a backtest's report directory: summary.json, trades.csv (every fill), round_trips.csv (the trades:
flat to flat), dividends.csv (cash dividends credited), equity.csv, decisions.jsonl, equity.png and report.html.

Every report says whether dividends were counted (for Quorum and the benchmarks alike, or for nobody) and what
the universe's membership implies for survivorship; the benchmarks pay the run's slippage and fees."""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from adapters.reports.shapes import (
    breaker_history_json,
    paper_trades_json,
    picker_performance_json,
    survivorship_json,
)
from application.backtest import BacktestResult
from application.membership import survivorship
from domain.currency import ACCOUNT_CURRENCY, DisplayCurrency

TRADE_COLUMNS = ["time", "symbol", "side", "qty", "price", "fee", "client_order_id", "reason"]
ROUND_TRIP_COLUMNS = ["symbol", "opened_at", "closed_at", "fills", "qty", "cost", "proceeds", "pnl", "return"]
DIVIDEND_COLUMNS = ["time", "symbol", "qty", "per_share", "amount"]
EQUITY_COLUMNS = ["date", "equity", "cash", "exposure"]
EXTRA_SHAPES: dict[str, Callable[[Any], Any]] = {
    "breaker": breaker_history_json,                 # application.breaker_history.BreakerHistory
    "picker_performance": picker_performance_json,   # picker -> horizon -> HorizonPerformance
    "discovery_paper_trades": paper_trades_json,     # domain.discovery.evaluation.ABReport
    "survivorship": survivorship_json,               # application.membership.Survivorship
}
"""Typed values a result's `extra` carries under these keys, and their JSON shapes (other extras are JSON)."""


def summary_dict(result: BacktestResult, settings: dict[str, Any],
                 display: DisplayCurrency | None = None) -> dict[str, Any]:
    """The fields of summary.json. `round_trips` are the trades (win rate and profit factor are over them),
    `fills` the executions; `survivorship` is "unknown" unless the caller put the data's in `extra`. With a
    display currency other than USD, "display_currency" holds the rate (or why there is none) and the money
    figures converted; every other figure stays in USD."""
    p = result.performance
    final = result.equity[-1].equity if result.equity else result.starting_cash
    net_after_llm = float(final) - result.llm_cost_usd
    shown = {} if display is None or display.currency == ACCOUNT_CURRENCY else {
        "display_currency": display.to_json(starting_cash=result.starting_cash, final_equity=final,
                                            fees=result.fees)}
    return {
        "run_id": result.run_id,
        "scope": result.scope,
        "start": result.start.isoformat(),
        "end": result.end.isoformat(),
        "sessions": len(result.equity),
        "starting_cash": str(result.starting_cash),
        "final_equity": str(final),
        "total_return": p.total_return,
        "annualized_return": p.annualized_return,
        "sharpe": p.sharpe,
        "sortino": p.sortino,
        "max_drawdown": p.max_drawdown,
        "win_rate": p.win_rate,
        "profit_factor": p.profit_factor,
        "exposure": p.exposure,
        "alpha": p.alpha,
        "beta": p.beta,
        "round_trips": len(result.round_trips),
        "fills": len(result.fills),
        "fees": str(result.fees),
        "dividends": result.dividends.to_json(),
        "survivorship": survivorship_json(survivorship([])),
        "llm_cost_usd": round(result.llm_cost_usd, 6),
        "total_return_net_of_llm": (net_after_llm / float(result.starting_cash) - 1) if result.starting_cash else None,
        "failed_cycles": result.failed_cycles,
        "symbols": result.symbols,
        "benchmarks": result.benchmarks,
        "settings": settings,
        **{key: EXTRA_SHAPES[key](value) if key in EXTRA_SHAPES else value for key, value in result.extra.items()},
        **shown,
    }


def write_report(result: BacktestResult, directory: Path, settings: dict[str, Any],
                 display: DisplayCurrency | None = None) -> dict[str, Any]:
    """Write every report file into `directory` (created) and return the summary; money also in the `display`
    currency when one is configured (summary.json's "display_currency" and a line of report.html)."""
    directory.mkdir(parents=True, exist_ok=True)
    summary = summary_dict(result, settings, display)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    with (directory / "trades.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TRADE_COLUMNS)
        for f in result.fills:
            w.writerow([f.at.isoformat(), f.symbol, f.side.value, str(f.qty), str(f.price), str(f.fee),
                        f.client_order_id, f.reason])
    _rows(directory / "round_trips.csv", ROUND_TRIP_COLUMNS, (
        [t.symbol, t.opened_at.isoformat(), t.closed_at.isoformat(), t.fills, str(t.qty), str(t.cost),
         str(t.proceeds), str(t.pnl), f"{t.return_pct:.6f}"] for t in result.round_trips))
    _rows(directory / "dividends.csv", DIVIDEND_COLUMNS, (
        [d.at.isoformat(), d.symbol, str(d.qty), str(d.per_share), str(d.amount)] for d in result.dividend_payments))
    with (directory / "equity.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(EQUITY_COLUMNS)
        for r in result.equity:
            w.writerow([r.day.isoformat(), str(r.equity), str(r.cash), str(r.exposure)])
    with (directory / "decisions.jsonl").open("w") as fh:
        for d in result.decisions:
            fh.write(json.dumps(d, default=str) + "\n")
    _plot(result, directory / "equity.png")
    _html(summary, directory / "report.html")
    return summary


def _rows(path: Path, header: list[str], rows: Iterable[list[Any]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _plot(result: BacktestResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    days: list[Any] = [r.day for r in result.equity]
    ax.plot(days, [float(r.equity) for r in result.equity], label="Quorum equity", linewidth=1.6)
    ax.plot(days, [float(r.cash) for r in result.equity], label="cash", linewidth=0.8, alpha=0.6)
    ax.set_title(f"Backtest {result.start} to {result.end}")
    ax.set_ylabel("USD")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(str(v))


def _html(summary: dict[str, Any], path: Path) -> None:
    keys = ["start", "end", "starting_cash", "final_equity", "total_return", "annualized_return", "sharpe",
            "sortino", "max_drawdown", "win_rate", "profit_factor", "round_trips", "fills", "fees", "llm_cost_usd"]
    rows = "".join(f"<tr><th>{k}</th><td>{_fmt(summary.get(k))}</td></tr>" for k in keys)
    bench = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{_fmt(v.get('total_return'))}</td><td>{_fmt(v.get('sharpe'))}</td>"
        f"<td>{_fmt(v.get('max_drawdown'))}</td><td>{_fmt(v.get('fees'))}</td><td>{_fmt(v.get('dividends'))}</td>"
        "</tr>" for name, v in summary["benchmarks"].items())
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Quorum backtest</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:left}</style></head><body>"
        f"<h1>Quorum backtest {html.escape(summary['run_id'])}</h1><table>{rows}</table>"
        f"{_currency_html(summary.get('display_currency'))}"
        "<p>round_trips: trades from flat to flat (win rate over them); fills: executions.</p>"
        "<h2>Benchmarks</h2><table><tr><th></th><th>total return</th><th>sharpe</th><th>max drawdown</th>"
        f"<th>fees</th><th>dividends</th></tr>{bench}</table><p>{html.escape(BENCHMARK_TERMS)}</p>"
        f"{_honesty_html(summary)}{_breaker_html(summary.get('breaker'))}{_invariants_html(summary.get('invariants'))}"
        "<h2>Equity</h2><img src='equity.png' alt='equity curve'>"
        "<p>Files: summary.json, trades.csv (fills), round_trips.csv, dividends.csv, equity.csv, decisions.jsonl</p>"
        "</body></html>")


BENCHMARK_TERMS = ("The benchmarks buy at the first session's open plus the run's slippage, pay the run's fees, "
                   "are held to the end and receive dividends only when Quorum does.")


def _currency_html(shown: dict[str, Any] | None) -> str:
    if not shown:
        return ""
    if "rate" not in shown:
        return f"<p>{_fmt(shown['currency'])} not shown: {_fmt(shown.get('problem'))}</p>"
    r, cur = shown["rate"], shown["currency"]
    return (f"<p>In {_fmt(cur)} at {_fmt(r['rate'])} per USD ({_fmt(r['source'])}, {_fmt(r['date'])}): starting "
            f"cash {_fmt(shown['starting_cash'])} {_fmt(cur)}, final equity {_fmt(shown['final_equity'])} "
            f"{_fmt(cur)}, fees {_fmt(shown['fees'])} {_fmt(cur)}. The account trades in USD.</p>")


def _honesty_html(summary: dict[str, Any]) -> str:
    div, surv = summary.get("dividends") or {}, summary.get("survivorship") or {}
    counted = "counted" if div.get("counted") else "not counted"
    return (f"<h2>Dividends and survivorship</h2><p>Dividends {counted}: {_fmt(div.get('reason', 'unknown'))} "
            f"(credited to Quorum: {_fmt(div.get('credited', '0'))} USD).</p>"
            f"<p>{_fmt(surv.get('statement', ''))}</p>")


def _breaker_html(b: dict[str, Any] | None) -> str:
    if not b:
        return ""
    rows = "".join(f"<tr><td>tripped</td><td>{_fmt(t['at'])}</td><td>{_fmt(t['trigger'])}: "
                   f"{_fmt(t['reason'])}</td></tr>" for t in b["trips"])
    rows += "".join(f"<tr><td>resumed</td><td>{_fmt(r['at'])}</td><td>approved by {_fmt(r['by'])}</td></tr>"
                    for r in b["resumes"])
    periods = ", ".join(f"{p['from']} → {p['to']} ({p['sessions']} sessions)" for p in b["shadow_periods"]) or "none"
    return (f"<h2>Circuit breaker</h2><p>Resume policy of this simulation: <b>{_fmt(b['resume_policy'])}</b>. "
            f"Shadow (halted) periods: {html.escape(periods)}; {b['shadow_sessions']} sessions, "
            f"{float(b['halted_share']):.0%} of the run.</p><table>{rows}</table>")


def _invariants_html(inv: dict[str, Any] | None) -> str:
    if not inv:
        return ""
    rows = "".join(f"<tr><td>{_fmt(v['at'])}</td><td>{_fmt(v['rule'])}</td><td>{_fmt(v['evidence'])}</td></tr>"
                   for v in inv["violations"])
    verdict = "all held" if not inv["violations"] else f"{len(inv['violations'])} violations"
    return f"<h2>Invariants</h2><p>{inv['checked']} checks: {verdict}.</p><table>{rows}</table>"
