"""The tearsheet's tables, as HTML: key figures against the benchmarks, monthly returns, results per symbol and
per exit reason. Percentages are percentages, money is dollars (`adapters.reports.tearsheet_format`)."""

from __future__ import annotations

import calendar
import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from adapters.reports.tearsheet_data import LABELS, TradeGroup
from adapters.reports.tearsheet_format import NA, number, pct, ratio, tone, usd

BENCHMARKS = ("spy_buy_and_hold", "equal_weight_universe")
Row = tuple[str, Callable[[Mapping[str, Any]], str], str]
"""Label, how to show the figure of one series, and the key it is read from (for its colour)."""


def td(shown: str, value: Any = None, *, cls: str = "") -> str:
    """A cell; `value` (when given) colours it green or red."""
    classes = " ".join(c for c in (cls, tone(value) if value is not None else "") if c)
    return f"<td class='{classes}'>{shown}</td>" if classes else f"<td>{shown}</td>"


def table(head: Sequence[str], rows: Sequence[str], cls: str = "") -> str:
    """A table with a header row; `rows` are <tr> elements."""
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f"<table class='{cls}'><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def headline(summary: Mapping[str, Any]) -> str:
    """The cards at the top: total return, annualised return, Sharpe, max drawdown, return over SPY, equity."""
    spy = summary.get("benchmarks", {}).get("spy_buy_and_hold", {})
    total, spy_total = summary.get("total_return"), spy.get("total_return")
    excess = None if total is None or spy_total is None else total - spy_total
    cards = [("Total return", pct(total, signed=True), total), ("Annualised", pct(summary.get("annualized_return"),
             signed=True), summary.get("annualized_return")), ("Sharpe", ratio(summary.get("sharpe")), None),
             ("Max drawdown", pct(summary.get("max_drawdown")), None),
             ("vs SPY", pct(excess, signed=True), excess), ("Final equity", usd(summary.get("final_equity")), None)]
    return "<div class='cards'>" + "".join(
        f"<div class='card'><div class='label'>{label}</div><div class='value {tone(v) if v is not None else ''}'>"
        f"{shown}</div></div>" for label, shown, v in cards) + "</div>"


def _metric_rows() -> list[Row]:
    return [
        ("Total return", lambda s: pct(s.get("total_return"), signed=True), "total_return"),
        ("Annualised return", lambda s: pct(s.get("annualized_return"), signed=True), "annualized_return"),
        ("Sharpe", lambda s: ratio(s.get("sharpe")), ""),
        ("Sortino", lambda s: ratio(s.get("sortino")), ""),
        ("Volatility (annualised)", lambda s: pct(s.get("volatility")), ""),
        ("Max drawdown", lambda s: pct(s.get("max_drawdown")), ""),
        ("Final equity", lambda s: usd(s.get("final_equity")), ""),
        ("Fees", lambda s: usd(s.get("fees")), ""),
        ("Dividends received", lambda s: usd(s.get("dividends")), ""),
    ]


def metrics_table(series: Mapping[str, Mapping[str, Any]]) -> str:
    """Quorum against each benchmark: returns, risk-adjusted ratios, drawdown, equity, costs."""
    names = [n for n in ("quorum", *BENCHMARKS) if n in series]
    rows = [f"<tr><th>{label}</th>" + "".join(td(show(series[n]), series[n].get(key) if key else None)
                                              for n in names) + "</tr>"
            for label, show, key in _metric_rows()]
    return table(["", *(LABELS[n] for n in names)], rows, "metrics")


def quorum_table(summary: Mapping[str, Any]) -> str:
    """Figures only Quorum has: alpha and beta against SPY, exposure, trades, LLM cost and the rest."""
    b = summary.get("breaker") or {}
    rows = [
        ("Alpha vs SPY (annualised)", pct(summary.get("alpha"), signed=True), summary.get("alpha")),
        ("Beta vs SPY", ratio(summary.get("beta")), None),
        ("Average exposure", pct(summary.get("exposure")), None),
        ("Round trips / fills", f"{summary.get('round_trips', 0)} / {summary.get('fills', 0)}", None),
        ("Win rate (round trips)", pct(summary.get("win_rate")), None),
        ("Profit factor", ratio(summary.get("profit_factor")), None),
        ("Failed cycles", str(summary.get("failed_cycles", 0)), None),
    ]
    if b:
        rows.append(("Breaker trips / resumes", f"{len(b.get('trips', []))} / {len(b.get('resumes', []))}", None))
        rows.append(("Halted (shadow mode)", f"{b.get('shadow_sessions', 0)} sessions "
                     f"({pct(b.get('halted_share'), digits=0)})", None))
    return table(["Quorum", ""], [f"<tr><th>{label}</th>{td(shown, v)}</tr>" for label, shown, v in rows],
                 "metrics")


def costs_table(summary: Mapping[str, Any]) -> str:
    """What the run paid: broker fees (slippage is in the fill prices) and LLM calls, in dollars and against the
    starting cash, and the return once the LLM cost is paid."""
    cash = number(summary.get("starting_cash"))
    fees, llm = number(summary.get("fees")) or 0.0, number(summary.get("llm_cost_usd")) or 0.0
    sessions = summary.get("sessions") or 0

    def share(v: float) -> str:
        return pct(v / cash, digits=3) if cash else NA

    rows = [("Fees (commission, SEC and TAF)", usd(fees), share(fees)),
            ("LLM calls", usd(llm, digits=4), share(llm)),
            ("LLM cost per session", usd(llm / sessions if sessions else None, digits=4), ""),
            ("Total", usd(fees + llm, digits=4), share(fees + llm)),
            ("Total return net of LLM cost", pct(summary.get("total_return_net_of_llm"), signed=True), "")]
    return table(["Cost", "USD", "Of starting cash"],
                 [f"<tr><th>{label}</th><td>{v}</td><td>{s}</td></tr>" for label, v, s in rows], "metrics")


def monthly_table(monthly: Mapping[int, Mapping[int, float]], yearly: Mapping[str, Mapping[int, float]]) -> str:
    """Quorum's return in every month, with the year's, and each benchmark's year alongside."""
    bench = [n for n in yearly if n != "quorum"]
    head = ["Year", *(calendar.month_abbr[m] for m in range(1, 13)), "Year", *(LABELS.get(n, n) for n in bench)]
    rows = []
    for year in sorted(monthly):
        cells = "".join(td(pct(monthly[year][m], signed=True), monthly[year][m]) if m in monthly[year]
                        else td("", cls="empty") for m in range(1, 13))
        q = yearly.get("quorum", {}).get(year)
        others = "".join(td(pct(yearly[n].get(year), signed=True), yearly[n].get(year), cls="bench") for n in bench)
        rows.append(f"<tr><th>{year}</th>{cells}{td(pct(q, signed=True), q, cls='year')}{others}</tr>")
    return table(head, rows, "monthly")


def symbols_table(groups: Sequence[TradeGroup]) -> str:
    """Per symbol: round trips, win rate, P&L, mean/best/worst return, holding days, fees, shares held at the
    end."""
    rows = [f"<tr><th>{html.escape(g.name)}</th><td>{g.trips}</td><td>{pct(g.win_rate, digits=0)}</td>"
            f"{td(usd(g.pnl, signed=True), g.pnl)}{td(pct(g.avg_return, signed=True), g.avg_return)}"
            f"{td(pct(g.best, signed=True), g.best)}{td(pct(g.worst, signed=True), g.worst)}"
            f"<td>{_days(g.avg_days)}</td><td>{usd(g.fees)}</td>"
            f"<td>{'yes' if g.open_at_end > 0 else ''}</td></tr>" for g in groups]
    rows.append(_total_row(groups))
    return table(["Symbol", "Round trips", "Win rate", "P&L", "Avg return", "Best", "Worst", "Avg days held",
                  "Fees", "Held at end"], rows, "trades")


def exits_table(groups: Sequence[TradeGroup]) -> str:
    """Per exit reason: round trips and their share, win rate, P&L, mean return, holding days."""
    total = sum(g.trips for g in groups)
    rows = [f"<tr><th>{html.escape(g.name)}</th><td>{g.trips}</td>"
            f"<td>{pct(g.trips / total if total else None, digits=0)}</td><td>{pct(g.win_rate, digits=0)}</td>"
            f"{td(usd(g.pnl, signed=True), g.pnl)}"
            f"{td(pct(g.avg_return, signed=True), g.avg_return)}<td>{_days(g.avg_days)}</td></tr>" for g in groups]
    return table(["Exit", "Round trips", "Share", "Win rate", "P&L", "Avg return", "Avg days held"], rows, "trades")


def _total_row(groups: Sequence[TradeGroup]) -> str:
    trips, wins = sum(g.trips for g in groups), sum(g.wins for g in groups)
    pnl = sum((g.pnl for g in groups), 0)
    return (f"<tr class='total'><th>All</th><td>{trips}</td><td>{pct(wins / trips if trips else None, digits=0)}"
            f"</td>{td(usd(pnl, signed=True), pnl)}<td></td><td></td><td></td><td></td>"
            f"<td>{usd(sum((g.fees for g in groups), 0))}</td><td></td></tr>")


def _days(value: float | None) -> str:
    return NA if value is None else f"{value:.1f}"
