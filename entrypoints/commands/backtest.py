"""`quorum backtest`: the trading cycle over past sessions on a simulated broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from adapters.inmemory.universe_file import read_universes
from adapters.reports.backtest_report import write_report
from application.breaker_history import RESUME_POLICIES
from application.liquidity import most_liquid_before
from application.membership import SYNTHETIC, Membership, non_members, survivorship
from domain.errors import DataError
from entrypoints.bootstrap import fail, run, start
from entrypoints.commands.backtest_table import summary_table
from entrypoints.commands.discover import add_picker_performance_html, picker_performance_table
from entrypoints.commands.options import check_data_dirs, check_order, parse_cash, parse_day
from entrypoints.commands.progress import session_progress
from entrypoints.container import Container, build_container, close_container
from entrypoints.settings import Settings
from entrypoints.shipped_data import shipped_data_dirs, shown
from entrypoints.wiring.embeddings import check_embeddings
from entrypoints.wiring.venue import NOT_STOCKS

err = Console(stderr=True)
_table = summary_table
"""The summary table (`quorum rehearse` prints it too)."""


def _period(months: int | None, start: date | None, end: date | None,
            last_day: Callable[[], date]) -> tuple[date, date]:
    """--start/--end, or the last --months months (30.44 days each, 6 by default) ending on `last_day()`."""
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
    last = last_day()
    return last - timedelta(days=round(m * 30.44)), last


def _data_dirs(data: list[Path], synthetic: bool) -> list[Path]:
    """The bar directories replayed: --data, none for --synthetic, else the shipped real data."""
    if synthetic:
        if data:
            fail("give either --data or --synthetic, not both")
        return []
    check_data_dirs(data)
    if data:
        return list(data)
    try:
        return shipped_data_dirs()
    except DataError as exc:
        fail(f"{exc}: pass --data DIR (daily OHLCV CSVs) or --synthetic")


def _last_day(container: Container, dirs: list[Path], today: date) -> date:
    """The last day a backtest can run to: the replayed data's last day with stock bars (and SPY's, when it ends
    earlier), yesterday on the synthetic market."""
    if not dirs:
        return today - timedelta(days=1)
    from entrypoints.commands.evals_backtest import window_of  # here: evals_backtest imports this module

    try:
        return window_of(container.history(), 0)[1]
    except ValueError as exc:
        fail(f"{', '.join(shown(d) for d in dirs)}: {exc}")


def _check_options(llm: str, discovery: str, resume: str) -> None:
    if llm not in ("offline", "settings"):
        fail(f"--llm must be 'offline' or 'settings', got {llm!r}")
    if discovery not in ("on", "off"):
        fail(f"--discovery must be 'on' or 'off', got {discovery!r}")
    if resume not in RESUME_POLICIES:
        fail(f"--resume must be one of {', '.join(RESUME_POLICIES)}, got {resume!r}")


def backtest(
    months: int | None = typer.Option(None, help="length of the period ending on the data's last day (yesterday "
                                      "for --synthetic); default 6"),
    start_day: str | None = typer.Option(None, "--start", help="first day, e.g. 2017-08-01"),
    end_day: str | None = typer.Option(None, "--end", help="last day"),
    symbols: int = typer.Option(20, "--symbols", min=1, max=2000, help="how many symbols to trade"),
    data: list[Path] = typer.Option([], "--data", help="directory of daily OHLCV CSVs (repeatable; default: the "
                                    "shipped S&P 500 bars of 2013-2018 and their market context, data/daily/)"),
    synthetic: bool = typer.Option(False, "--synthetic", help="trade a seeded synthetic market instead of real "
                                   "data (ending yesterday; for tests)"),
    seed: int = typer.Option(7, help="seed of the synthetic market"),
    cash: str | None = typer.Option(None, help="starting cash in USD (default: risk.starting_capital)"),
    llm: str = typer.Option("offline", help="'offline' or 'settings' (use the configured models)"),
    report: Path | None = typer.Option(None, help="report directory (default .quorum/reports/<run id>)"),
    as_json: bool = typer.Option(False, "--json", help="print summary.json instead of the table"),
    discovery: str = typer.Option("off", "--discovery", help="on: discover the watchlist inside the simulation "
                                  "(at each session's open) and report picker performance"),
    fundamentals: Path | None = typer.Option(None, "--fundamentals", help="sector/market-cap CSV for discovery "
                                             "(default: the synthetic market's; none for real data)"),
    resume: str = typer.Option("approve-when-eligible", "--resume", help="what the simulation does when the "
                               "circuit breaker may resume: approve-when-eligible (at that session's close) or never "
                               "(stay in shadow mode); written in the report"),
) -> None:
    """Run the full trading cycle daily over past sessions and write a report."""
    _check_options(llm, discovery, resume)
    first_day, last_day = parse_day(start_day, "--start"), parse_day(end_day, "--end")
    check_order(first_day, last_day)
    cash_usd = parse_cash(cash)
    dirs = _data_dirs(data, synthetic)
    settings, boot = start("backtest", env="backtest")
    now = boot.system_clock().now()
    if discovery == "on" and fundamentals is None and dirs:
        err.print("[yellow]warning:[/] --discovery on with real data but no --fundamentals: market caps are "
                  "unknown, so the metric picker skips its market-cap filter (the run says so)")
    if llm == "offline":
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={
            "signal_model": "offline", "risk_model": "offline", "validator_model": "offline",
            "picker_model": "offline"})})
    start_cash = cash_usd or settings.risk.starting_capital
    run_id = now.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    scope = f"backtest:{run_id}"
    out_dir = report or settings.data_dir / "reports" / run_id
    container = build_container(settings, "backtest", scope=scope, cash=start_cash, seed=seed, n_symbols=symbols,
                                data_dirs=dirs, discovery=discovery == "on", resume_policy=resume,
                                fundamentals=fundamentals)
    first, last = _period(months, first_day, last_day, lambda: _last_day(container, dirs, now.date()))
    if dirs and first_day and first > (data_end := _last_day(container, dirs, now.date())):
        fail(f"--start {first} is after the data's last day {data_end} (--synthetic trades a market ending "
             "yesterday)")
    container.run.start.from_value(first)
    container.run.end.from_value(last)
    if fundamentals is not None:
        try:
            container.fundamentals()
        except DataError as exc:
            fail(f"--fundamentals: {exc}")
    summary = run(_run(settings, container, run_id, scope, first, last, symbols, out_dir))
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        Console().print(summary_table(summary))
        if "picker_performance" in summary:
            Console().print(picker_performance_table(summary["picker_performance"]))
        typer.echo(f"Report: {(out_dir / 'report.html').resolve()}")


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
    description = ("replay of " + ", ".join(shown(d) for d in data) if data
                   else f"synthetic market (seed {container.run.seed()}, {n} symbols)")
    try:
        await check_embeddings(embedder, container.embedding_store())
        universes = read_universes(data)
        chosen = await choose_symbols(container, universes, first, n)
        if not chosen:
            raise DataError("no symbols with at least 60 days of history before the start date"
                            + (" that were index members at the start" if any(u.point_in_time for u in universes)
                               else ""))
        container.run.symbols.from_value(chosen)
        err.print(f"market: {description}; trading {len(chosen)} symbols: {', '.join(chosen)}")
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
