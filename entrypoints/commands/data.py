"""`quorum data fetch`: daily bars from Alpaca into CSV files that `quorum backtest --data DIR` reads.

Needs the Alpaca keys of the settings (QUORUM_BROKER__ALPACA_API_KEY and QUORUM_BROKER__ALPACA_SECRET_KEY; a
free paper account's keys will do) and nothing else: no database, no broker provider. See docs/data.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adapters.alpaca import AlpacaConfig
from adapters.alpaca.daily_history import AlpacaDailyHistory
from adapters.alpaca.market_data import SIP_DELAY
from adapters.alpaca.rest import Sleep
from adapters.calendar import NyseCalendar, SystemClock
from adapters.inmemory.daily_csv_store import DailyCsvStore
from application.data_fetch import DailyHistoryFetch, FetchProgress, FetchReport, FetchStep, SymbolOutcome
from application.liquidity import MIN_HISTORY_SESSIONS
from domain.errors import ConfigurationError, DataError, QuorumError
from entrypoints.bootstrap import fail, register_secrets
from entrypoints.logging_setup import configure_logging
from entrypoints.settings import Settings, load_settings

app = typer.Typer(help="Market data for backtests.", no_args_is_help=True)
err = Console(stderr=True)

FETCH_RETRIES = 8
"""Retries of one request on 429, 5xx and timeouts: a bulk fetch waits out rate limits rather than stopping."""
FETCH_MAX_WAIT_S = 90.0
"""Longest wait before one retry, `Retry-After` included (Alpaca's limits are per minute)."""
KEYS_MISSING = ("quorum data fetch needs Alpaca keys: set QUORUM_BROKER__ALPACA_API_KEY and "
                "QUORUM_BROKER__ALPACA_SECRET_KEY (a free paper account's keys will do)")


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{name} must be a date like 2024-01-31, got {value!r}")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        fail(str(exc))
    register_secrets(settings)
    configure_logging(settings.log_level)
    return settings


def alpaca_data_config(settings: Settings) -> AlpacaConfig:
    """Alpaca's connection for reading market data only: keys, data URL and daily-bars feed of the settings.

    The trading API is used only to tell an unknown symbol from one without bars, so the paper/live choice
    does not matter here (no order is ever sent); a live trading URL is not used.
    """
    b = settings.broker
    key = b.alpaca_api_key.get_secret_value().strip() if b.alpaca_api_key else ""
    secret = b.alpaca_secret_key.get_secret_value().strip() if b.alpaca_secret_key else ""
    if not key or not secret:
        fail(KEYS_MISSING)
    try:
        return AlpacaConfig(api_key=key, secret_key=secret, paper=True, trading_url=b.trading_url if b.paper else None,
                            data_url=b.data_url, feed=b.data_feed, bars_feed=b.bars_feed, timeout=b.timeout_seconds,
                            max_retries=FETCH_RETRIES, max_backoff_seconds=FETCH_MAX_WAIT_S)
    except ConfigurationError as exc:
        fail(str(exc))


def _line(o: SymbolOutcome) -> str:
    """One finished symbol, as rich markup."""
    symbol, span = escape(o.symbol), f" {o.first} → {o.last}" if o.first else ""
    detail = escape(f" ({o.detail})") if o.detail else ""
    if o.status == "complete":
        return f"{symbol}: complete, {o.stored} sessions{span}, skipped"
    if o.status == "fetched":
        return f"{symbol}: {o.stored} sessions{span}, {o.fetched} fetched{detail}"
    return f"[red]{symbol}: {o.status}[/]{detail}"


@contextmanager
def symbol_progress(console: Console, *, shown: bool = True) -> Iterator[tuple[FetchProgress, Sleep]]:
    """A progress bar of symbols done, the current symbol and its sessions stored; each finished symbol gets a
    line. Yields the progress callback and a sleep that shows the back-off before it waits."""
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[symbol]} {task.fields[note]}"), TimeElapsedColumn(),
                  console=console, transient=False, disable=not shown) as bar:
        task = bar.add_task("symbols", total=None, symbol="", note="")

        def progress(step: FetchStep) -> None:
            if step.outcome is not None and shown:
                bar.console.print(_line(step.outcome), highlight=False, soft_wrap=True)
            note = "" if step.outcome is not None else f"{step.stored} sessions"
            bar.update(task, completed=step.index, total=step.total, symbol=step.symbol, note=note)

        async def sleep(seconds: float) -> None:
            bar.update(task, note=f"waiting {seconds:g}s before retrying (Alpaca rate limit or outage)")
            await asyncio.sleep(seconds)

        yield progress, sleep


def _summary(report: FetchReport, out: Path) -> dict[str, Any]:
    return {"directory": str(out.resolve()), "first": report.first.isoformat(), "last": report.last.isoformat(),
            "symbols": [{**asdict(o), "first": o.first and o.first.isoformat(), "last": o.last and o.last.isoformat()}
                        for o in report.outcomes],
            "problems": [o.symbol for o in report.problems]}


async def _fetch(config: AlpacaConfig, symbols: list[str], start: date, end: date, out: Path,
                 as_json: bool) -> FetchReport:
    calendar = NyseCalendar()
    now = SystemClock().now()
    as_of = now - SIP_DELAY if config.bars_feed == "sip" else now
    with symbol_progress(err, shown=not as_json) as (progress, sleep):
        source = AlpacaDailyHistory(config, sleep=sleep)
        try:
            return await DailyHistoryFetch(source, DailyCsvStore(out), calendar).run(
                symbols, start, end, as_of=as_of, progress=progress)
        finally:
            await source.aclose()


@app.command("fetch")
def fetch(
    symbols: str = typer.Option(..., "--symbols", help="comma-separated symbols, e.g. AAPL,MSFT,SPY"),
    start_day: str = typer.Option(..., "--start", help="first day, e.g. 2019-01-02"),
    end_day: str = typer.Option(..., "--end", help="last day (sessions not closed yet are left out)"),
    out: Path | None = typer.Option(None, "--out", help="directory of the CSV files (default <data_dir>/bars)"),
    as_json: bool = typer.Option(False, "--json", help="print what was done as JSON (no progress bar)"),
) -> None:
    """Fetch split-adjusted daily bars (with a dividend-adjusted close) from Alpaca into the CSV files
    `quorum backtest --data DIR` reads. Run it again to resume: complete symbols are skipped, partial ones
    continue. Exit 1 when a symbol could not be fetched (the others are)."""
    start, end = _day(start_day, "--start"), _day(end_day, "--end")
    if start > end:
        fail(f"--start {start} is after --end {end}")
    wanted = [s for s in symbols.replace(" ", ",").split(",") if s.strip()]
    if not wanted:
        fail("--symbols names no symbol")
    settings = _settings()
    config = alpaca_data_config(settings)
    directory = out or settings.data_dir / "bars"
    try:
        report = asyncio.run(_fetch(config, wanted, start, end, directory, as_json))
    except KeyboardInterrupt:
        fail("interrupted; what was stored is kept: run the same command again to resume", 130)
    except (ConfigurationError, DataError) as exc:
        fail(str(exc))
    except QuorumError as exc:
        fail(f"{type(exc).__name__}: {exc}. What was stored so far is kept: run the same command again to resume",
             1)
    if as_json:
        typer.echo(json.dumps(_summary(report, directory), indent=2))
    else:
        stored = len(report.outcomes) - len(report.problems)
        typer.echo(f"{stored} of {len(report.outcomes)} symbols stored, sessions {report.first} → {report.last}, "
                   f"in {directory.resolve()}")
        for o in report.problems:
            typer.echo(f"not stored: {o.symbol} ({o.status}{': ' + o.detail if o.detail else ''})")
        typer.echo(f"backtest on them: quorum backtest --data {directory.resolve()} --start D --end D "
                   f"(D within the span, with {MIN_HISTORY_SESSIONS} sessions of history before --start)")
    if report.problems:
        raise typer.Exit(1)
