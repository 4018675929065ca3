"""Writes a backtest's report directory: summary.json, trades.csv (every fill), round_trips.csv (the trades:
flat to flat), dividends.csv (cash dividends credited), equity.csv, decisions.jsonl, equity.png and report.html.

Every report says whether dividends were counted (for Quorum and the benchmarks alike, or for nobody) and what
the universe's membership implies for survivorship; the benchmarks pay the run's slippage and fees.

report.html is a self-contained tearsheet (`adapters.reports.tearsheet_html`): equity against SPY and the
equal-weighted universe with the breaker's periods shaded, drawdown, monthly returns, rolling Sharpe, results per
symbol and per exit reason, costs and the settings used; round_trips.csv says what closed each round trip
("exit": stop, take profit, trend exit, ...)."""

from __future__ import annotations

import csv
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
from adapters.reports.tearsheet_data import exit_kind
from adapters.reports.tearsheet_html import write_tearsheet
from application.backtest import BacktestResult
from application.membership import survivorship
from domain.currency import ACCOUNT_CURRENCY, DisplayCurrency

TRADE_COLUMNS = ["time", "symbol", "side", "qty", "price", "fee", "client_order_id", "reason"]
ROUND_TRIP_COLUMNS = ["symbol", "opened_at", "closed_at", "fills", "qty", "cost", "proceeds", "pnl", "return",
                      "exit"]
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
         str(t.proceeds), str(t.pnl), f"{t.return_pct:.6f}", exit_kind(t.exit_reason)] for t in result.round_trips))
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
    write_tearsheet(result, summary, directory)
    return summary


def _rows(path: Path, header: list[str], rows: Iterable[list[Any]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
