"""`quorum backtest`: the trading cycle over past sessions on a simulated broker."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from adapters.inmemory.universe_file import read_universes
from adapters.reports.backtest_report import write_report
from application.breaker_history import RESUME_POLICIES
from application.liquidity import most_liquid_before
from application.membership import SYNTHETIC, Membership, non_members, survivorship
from domain.errors import DataError
from entrypoints.bootstrap import fail, run, start
from entrypoints.commands.discover import add_picker_performance_html, picker_performance_table
from entrypoints.commands.progress import session_progress
from entrypoints.container import Container, build_container, close_container
from entrypoints.settings import Settings
from entrypoints.wiring.venue import NOT_STOCKS

err = Console(stderr=True)


def parse_day(value: str | None, name: str) -> date | None:
    """A --start/--end value as a date, or a one-line error (exit 2)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{name} must be a date like 2024-01-31, got {value!r}")


def _period(months: int | None, start: date | None, end: date | None, today: date) -> tuple[date, date]:
    if (start is None) != (end is None):
        fail("give both --start and --end, or --months")
    if start and end:
        if months is not None:
            fail("give either --months or --start/--end, not both")
        if start > end:
            fail(f"--start {start} is after --end {end}")
        return start, end
    m = 6 if months is None else months
    if m <= 0 or m > 120:
        fail(f"--months must be between 1 and 120, got {m}")
    last = today - timedelta(days=1)
    return last - timedelta(days=round(m * 30.44)), last


def _fmt(v: Any, pct: bool = True, signed: bool = True) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        if not pct:
            return f"{v:.2f}"
        return f"{v:+.2%}" if signed else f"{v:.2%}"
    return str(v)


def _table(summary: dict[str, Any]) -> Table:
    t = Table(title=f"Backtest {summary['start']} → {summary['end']} ({summary['sessions']} sessions)")
    for col in ("", "Quorum", "SPY buy & hold", "equal-weight universe"):
        t.add_column(col, justify="right" if col else "left")
    spy, ew = summary["benchmarks"]["spy_buy_and_hold"], summary["benchmarks"]["equal_weight_universe"]
    t.add_row("total return", _fmt(summary["total_return"]), _fmt(spy.get("total_return")),
              _fmt(ew.get("total_return")))
    t.add_row("annualised", _fmt(summary["annualized_return"]), _fmt(spy.get("annualized_return")),
              _fmt(ew.get("annualized_return")))
    t.add_row("sharpe", _fmt(summary["sharpe"], False), _fmt(spy.get("sharpe"), False), _fmt(ew.get("sharpe"), False))
    t.add_row("max drawdown", _fmt(summary["max_drawdown"], signed=False), _fmt(spy.get("max_drawdown"), signed=False),
              _fmt(ew.get("max_drawdown"), signed=False))
    t.add_row("final equity", summary["final_equity"], _fmt(spy.get("final_equity"), False),
              _fmt(ew.get("final_equity"), False))
    t.add_row("round trips / fills", f"{summary['round_trips']} / {summary['fills']}", "1 buy", "1 buy each")
    t.add_row("fees", f"${summary['fees']}", _usd(spy.get("fees")), _usd(ew.get("fees")))
    t.add_row("win rate (round trips)", _fmt(summary["win_rate"], signed=False), "", "")
    dividends = summary["dividends"]
    if dividends["counted"]:
        t.add_row("dividends", f"${dividends['credited']}", _usd(spy.get("dividends")), _usd(ew.get("dividends")))
    t.add_row("LLM cost", f"${summary['llm_cost_usd']:.4f}", "", "")
    b = summary.get("breaker")
    if b:
        t.add_row("breaker trips / resumes", f"{len(b['trips'])} / {len(b['resumes'])}", "", "")
        t.add_row("halted (shadow mode)", f"{b['shadow_sessions']} sessions ({b['halted_share']:.0%})", "", "")
    t.caption = "\n".join(_footer(summary))
    return t


def _usd(v: Any) -> str:
    return "" if v is None else f"${v:.2f}"


def _footer(summary: dict[str, Any]) -> list[str]:
    """What the figures mean: costs, dividends, survivorship, the breaker's resume policy."""
    dividends, surv = summary["dividends"], summary["survivorship"]
    lines = ["benchmarks buy at the first open plus slippage and pay the same fees as Quorum",
             ("dividends counted: " if dividends["counted"] else "dividends not counted: ") + dividends["reason"],
             surv["statement"]]
    b = summary.get("breaker")
    if b:
        lines.append(f"breaker resume policy of this simulation: {b['resume_policy']}")
    return lines


def _check_options(data: list[Path], llm: str, discovery: str, resume: str) -> None:
    for d in data:
        if not d.is_dir():
            fail(f"--data {d} is not a directory")
    if llm not in ("offline", "settings"):
        fail(f"--llm must be 'offline' or 'settings', got {llm!r}")
    if discovery not in ("on", "off"):
        fail(f"--discovery must be 'on' or 'off', got {discovery!r}")
    if resume not in RESUME_POLICIES:
        fail(f"--resume must be one of {', '.join(RESUME_POLICIES)}, got {resume!r}")


def _cash(cash: str | None, default: Decimal) -> Decimal:
    try:
        start_cash = Decimal(cash) if cash is not None else default
    except InvalidOperation:
        fail(f"--cash must be a number, got {cash!r}")
    if not start_cash.is_finite() or start_cash <= 0:
        fail(f"--cash must be positive, got {cash}")
    return start_cash


def backtest(
    months: int | None = typer.Option(None, help="length of the period ending yesterday (default 6)"),
    start_day: str | None = typer.Option(None, "--start", help="first day, e.g. 2024-01-02"),
    end_day: str | None = typer.Option(None, "--end", help="last day"),
    symbols: int = typer.Option(20, "--symbols", min=1, max=2000, help="how many symbols to trade"),
    data: list[Path] = typer.Option([], "--data", help="directory of daily OHLCV CSVs (repeatable)"),
    seed: int = typer.Option(7, help="seed of the synthetic market"),
    cash: str | None = typer.Option(None, help="starting cash in USD (default: risk.starting_capital)"),
    llm: str = typer.Option("offline", help="'offline' or 'settings' (use the configured models)"),
    report: Path | None = typer.Option(None, help="report directory (default .quorum/reports/<run id>)"),
    as_json: bool = typer.Option(False, "--json", help="print summary.json instead of the table"),
    discovery: str = typer.Option("off", "--discovery", help="on: discover the watchlist inside the simulation "
                                  "(at each session's open) and report picker performance"),
    fundamentals: Path | None = typer.Option(None, "--fundamentals", help="sector/market-cap CSV for discovery "
                                             "(default: the synthetic market's; none for --data)"),
    resume: str = typer.Option("approve-when-eligible", "--resume", help="what the simulation does when the "
                               "circuit breaker may resume: approve-when-eligible (at that session's close) or never "
                               "(stay in shadow mode); written in the report"),
) -> None:
    """Run the full trading cycle daily over past sessions and write a report."""
    _check_options(data, llm, discovery, resume)
    settings, boot = start("backtest", env="backtest")
    now = boot.system_clock().now()
    first, last = _period(months, parse_day(start_day, "--start"), parse_day(end_day, "--end"), now.date())
    if discovery == "on" and fundamentals is None and data:
        err.print("[yellow]warning:[/] --discovery on with --data but no --fundamentals: market caps are unknown, "
                  "so the metric picker skips its market-cap filter (the run says so)")
    if llm == "offline":
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={
            "signal_model": "offline", "risk_model": "offline", "validator_model": "offline",
            "picker_model": "offline"})})
    start_cash = _cash(cash, settings.risk.starting_capital)
    run_id = now.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    scope = f"backtest:{run_id}"
    out_dir = report or settings.data_dir / "reports" / run_id
    container = build_container(settings, "backtest", scope=scope, start=first, end=last, cash=start_cash, seed=seed,
                                n_symbols=symbols, data_dirs=list(data), discovery=discovery == "on",
                                resume_policy=resume, fundamentals=fundamentals)
    if fundamentals is not None:
        try:
            container.fundamentals()
        except DataError as exc:
            fail(f"--fundamentals: {exc}")
    summary = run(_run(settings, container, run_id, scope, first, last, symbols, out_dir))
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        Console().print(_table(summary))
        if "picker_performance" in summary:
            Console().print(picker_performance_table(summary["picker_performance"]))
        typer.echo(f"report: {out_dir.resolve()}")


async def choose_symbols(container: Container, universes: list[Membership], first: date, n: int) -> list[str]:
    """The `n` most liquid stocks before `first`; with point-in-time membership, only among the members of the
    first session (no survivorship in the choice)."""
    market, calendar = container.market(), container.calendar()
    start = calendar.sessions(first, first + timedelta(days=10))[0]
    listed = [a.symbol for a in await market.assets()]
    exclude = NOT_STOCKS | non_members(universes, start, listed)
    return await most_liquid_before(market, calendar, first, n, exclude=exclude)


async def _run(settings: Settings, container: Container, run_id: str, scope: str, first: date, last: date, n: int,
               out_dir: Path) -> dict[str, Any]:
    data = container.run.data_dirs()
    err.print(f"[bold]Quorum backtest[/] {run_id}: {first} → {last}, cash ${container.run.cash()}")
    embedder = container.embedder()
    err.print(f"embedding model: {embedder.model_name}")
    uow_factory = container.uow_factory()
    description = ("replay of " + ", ".join(str(d) for d in data) if data
                   else f"synthetic market (seed {container.run.seed()}, {n} symbols)")
    try:
        universes = read_universes(data)
        chosen = await choose_symbols(container, universes, first, n)
        if not chosen:
            raise DataError("no symbols with at least 60 days of history before the start date"
                            + (" that were index members at the start" if any(u.point_in_time for u in universes)
                               else ""))
        container.run.symbols.from_value(chosen)
        err.print(f"market: {description}; trading {len(chosen)} symbols")
        with session_progress(err) as progress:
            result = await container.backtest_runner().run(run_id=run_id, start=first, end=last, symbols=chosen,
                                                           progress=progress)
        result.extra["data"] = description
        result.extra["survivorship"] = survivorship(universes) if data else SYNTHETIC
        result.extra["embedding_model"] = embedder.model_name
        display = await container.currency_display().at(container.system_clock().now())
        summary = write_report(result, out_dir, settings.model_dump(mode="json"), display)
        if "picker_performance" in summary:
            add_picker_performance_html(out_dir / "report.html", summary["picker_performance"])
        async with uow_factory() as uow:
            await uow.state.save(scope, "backtest_run", summary, at=container.system_clock().now())
            await uow.commit()
    finally:
        await close_container(container)
    return summary
