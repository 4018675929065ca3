"""The console summary of a backtest (or rehearsal): Quorum beside SPY buy-and-hold and the equal-weighted universe,
with what the figures mean underneath."""

from __future__ import annotations

from typing import Any

from rich.table import Table

BENCHMARKS = ("spy_buy_and_hold", "equal_weight_universe")


def percent(v: Any, signed: bool = True) -> str:
    """A fraction as a percentage (`+9.43%`), `n/a` when unknown."""
    if v is None:
        return "n/a"
    return f"{float(v):+.2%}" if signed else f"{float(v):.2%}"


def _ratio(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):.2f}"


def _usd(v: Any) -> str:
    return "" if v is None else f"${float(v):,.2f}"


def _points(quorum: Any, benchmark: Any) -> str:
    """Quorum's total return minus a benchmark's, in percentage points."""
    if quorum is None or benchmark is None:
        return "n/a"
    return f"{(float(quorum) - float(benchmark)) * 100:+.2f} pts"


def _title(summary: dict[str, Any]) -> str:
    traded = len(summary.get("symbols") or [])
    stocks = f", {traded} stocks" if traded else ""
    return f"Backtest {summary['start']} → {summary['end']} ({summary['sessions']} sessions{stocks})"


def summary_table(summary: dict[str, Any]) -> Table:
    """The summary of `summary.json` as a table of three columns (Quorum, SPY, the equal-weight universe), its
    footnotes in the caption; at most 80 characters wide."""
    t = Table(title=_title(summary), caption_justify="left")
    for col in ("", "Quorum", "SPY buy & hold", "equal-weight\nuniverse"):
        t.add_column(col, justify="right" if col else "left")
    spy, ew = (summary["benchmarks"][b] for b in BENCHMARKS)
    t.add_row("total return", *(percent(s.get("total_return")) for s in (summary, spy, ew)))
    t.add_row("Quorum ahead by", "", _points(summary["total_return"], spy.get("total_return")),
              _points(summary["total_return"], ew.get("total_return")))
    t.add_row("annualised", *(percent(s.get("annualized_return")) for s in (summary, spy, ew)))
    t.add_row("sharpe", *(_ratio(s.get("sharpe")) for s in (summary, spy, ew)))
    t.add_row("max drawdown", *(percent(s.get("max_drawdown"), signed=False) for s in (summary, spy, ew)))
    t.add_row("win rate", percent(summary["win_rate"], signed=False), "", "")
    if summary.get("exposure") is not None:
        t.add_row("avg. invested", percent(summary["exposure"], signed=False), "~100%", "~100%")
    t.add_row("final equity", *(_usd(s.get("final_equity")) for s in (summary, spy, ew)))
    t.add_row("round trips / fills", f"{summary['round_trips']} / {summary['fills']}", "1 buy", "1 buy each")
    t.add_row("fees", f"${summary['fees']}", _usd(spy.get("fees")), _usd(ew.get("fees")))
    dividends = summary["dividends"]
    if dividends["counted"]:
        t.add_row("dividends", f"${dividends['credited']}", _usd(spy.get("dividends")), _usd(ew.get("dividends")))
    t.add_row("LLM cost", f"${summary['llm_cost_usd']:.4f}", "", "")
    b = summary.get("breaker")
    if b:
        t.add_row("breaker trips/resumes", f"{len(b['trips'])} / {len(b['resumes'])}", "", "")
        t.add_row("halted (shadow mode)", f"{b['shadow_sessions']} sessions, {b['halted_share']:.0%}", "", "")
    t.caption = "\n".join(footer(summary))
    return t


def footer(summary: dict[str, Any]) -> list[str]:
    """What the figures mean: the market, costs, dividends, survivorship, the breaker's resume policy."""
    dividends, surv = summary["dividends"], summary["survivorship"]
    lines = [f"market: {summary['data']}"] if summary.get("data") else []
    lines += ["win rate: of Quorum's round trips; benchmarks buy at the first open plus slippage and pay the same "
              "fees as Quorum",
              ("dividends counted: " if dividends["counted"] else "dividends not counted: ") + dividends["reason"],
              surv["statement"]]
    b = summary.get("breaker")
    if b:
        lines.append(f"breaker resume policy of this simulation: {b['resume_policy']}")
    return lines
