"""`quorum discover` (one discovery run on the live composition) and `quorum watchlist list|add|remove`.

Also the picker-performance table of `quorum backtest --discovery on` (console and report.html).
Run directly: `python -m entrypoints.commands.discover discover|watchlist ...`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import typer
from dependency_injector import providers
from rich.console import Console
from rich.table import Table

from application.discovery.watchlist import WatchlistManager
from domain.errors import ConfigurationError
from domain.memory import DEFAULT_SCOPE
from domain.ports.clock import MarketCalendar
from domain.ports.discovery_api import DiscoveryDisabled, DiscoveryRunResult
from entrypoints.api.shapes import change_json, discovery_run_json, entry_json
from entrypoints.bootstrap import fail, run, start
from entrypoints.container import Container, close_container
from entrypoints.settings import Settings
from entrypoints.wiring.embeddings import check_embeddings

HORIZON_KEYS = ("1d", "5d", "20d")


def _as_of(value: str | None, calendar: MarketCalendar) -> datetime | None:
    """None, an ISO datetime (UTC when naive), or a date: after that day's session (the last one before it)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day_end = datetime.combine(date.fromisoformat(value), time(23, 59), calendar.tz)
            return calendar.session_close(calendar.previous_session(day_end))
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--as-of must be a date (2024-06-03) or an ISO datetime, got {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def discover(
    as_json: bool = typer.Option(False, "--json", help="print the run as JSON"),
    as_of: str | None = typer.Option(None, "--as-of", help="run as of this date (after its close) or ISO datetime; "
                                     "default now"),
    fundamentals: Path | None = typer.Option(None, "--fundamentals", help="sector/market-cap CSV "
                                             "(symbol, sector, market_cap, as_of) for this run, merged over the "
                                             "shipped S&P 500 sector map; default QUORUM_DISCOVERY__FUNDAMENTALS_FILE"),
) -> None:
    """Run discovery once: score the market, store the suggestions and update the watchlist."""
    _, container = start(params={"fundamentals": fundamentals})
    try:
        service = container.discovery()
    except ConfigurationError as exc:
        fail(str(exc))
    when = _as_of(as_of, container.calendar())

    async def go() -> DiscoveryRunResult:
        try:
            await check_embeddings(container.embedder(), container.embedding_store())
            return await service.run(when)
        finally:
            await close_container(container)

    result = run(go())
    if isinstance(result, DiscoveryDisabled):
        fail(result.reason, 1)
    out = discovery_run_json(result)
    if as_json:
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    _print_run(out)


def _print_run(out: dict[str, Any]) -> None:
    """Print a run's JSON (`entrypoints.api.shapes.discovery_run_json`) as `quorum discover` shows it."""
    console = Console(width=160)
    console.print(f"discovery run {out['run_id']} as of {out['as_of']}: {out['universe_size']} symbols scored"
                  + (f", {out['passed_metric']} passed the metric filters" if "passed_metric" in out else "")
                  + (" (already run: stored result)" if out["status"] == "existing" else ""))
    if out.get("skipped"):
        console.print(f"[yellow]nothing scored:[/] {out['skipped']}")
    if out.get("llm_error"):
        console.print(f"[yellow]LLM picker gave nothing:[/] {out['llm_error']}")
    skipped = out.get("skipped_filters") or {}
    for reason in skipped.values():
        console.print(f"[yellow]filter skipped:[/] {reason}")
    if "market_cap" in skipped:
        console.print("  give market caps with QUORUM_DISCOVERY__FUNDAMENTALS_FILE or --fundamentals "
                      "(CSV: symbol, sector, market_cap, as_of)")
    table = Table(title="Suggestions (ensemble, best first)")
    for col in ("#", "symbol", "score", "agreeing pickers", "divergence"):
        table.add_column(col, justify="right" if col in ("#", "score") else "left")
    for s in out["suggestions"]:
        table.add_row(str(s["rank"]), s["symbol"], f"{s['score']:.2f}", ", ".join(s.get("agreed", [])) or "-",
                      s.get("divergence_reason") or "")
    console.print(table)
    changes = out["changes"]
    console.print("Watchlist changes:" if changes else "Watchlist changes: none")
    for c in changes:
        console.print(f"  {'+' if c['change'] == 'add' else '-'} {c['symbol']}: {c['reason']}")
    symbols = ", ".join(e["symbol"] + ("*" if e["source"] == "manual" else "") for e in out["watchlist"])
    console.print(f"Watchlist ({len(out['watchlist'])} symbols, * manual): {symbols or 'empty'}")


watchlist_app = typer.Typer(help="The watchlist the trading cycle trades from: list it, add or remove symbols by hand.",
                            no_args_is_help=True)


class _NoEmbedder:
    """Stands in for the embedding model where no text is embedded, so the watchlist commands load no model."""

    def __init__(self, dimension: int) -> None:
        self._dimension = dimension

    @property
    def model_name(self) -> str:
        return "none (watchlist commands embed nothing)"

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Any) -> npt.NDArray[np.float32]:
        raise ConfigurationError("the watchlist commands do not embed text")


def _watchlist_env() -> tuple[Settings, Container, WatchlistManager]:
    settings, container = start()
    container.embedder.override(providers.Object(_NoEmbedder(settings.embeddings.dimension)))
    return settings, container, WatchlistManager(settings.discovery, scope=DEFAULT_SCOPE)


@watchlist_app.command("list")
def list_watchlist(
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    changes: int = typer.Option(10, "--changes", min=0, max=10_000, help="also show the last N changes"),
) -> None:
    """Print the watchlist (manual and discovered symbols) and its latest changes."""
    _, container, manager = _watchlist_env()

    async def go() -> dict[str, Any]:
        async with container.uow_factory()() as uow:
            entries = await manager.entries(uow)
            log = await uow.watchlist.changes(manager.scope, limit=changes)
        return {"watchlist": [entry_json(e) for e in entries], "changes": [change_json(c) for c in log]}

    out = run(go())
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"watchlist ({len(out['watchlist'])} of at most {manager.settings.max_watchlist_size}):")
    for e in out["watchlist"]:
        score = "" if e["score"] is None else f" {e['score']:.2f}"
        typer.echo(f"  {e['symbol']:<8} {e['source']:<10}{score}  {e['reason']}")
    if out["changes"]:
        typer.echo("latest changes:")
        for c in out["changes"]:
            typer.echo(f"  {c['at'][:16]} {'+' if c['change'] == 'add' else '-'}{c['symbol']} ({c['source']}): "
                       f"{c['reason']}")


def _edit(symbol: str, reason: str, *, add: bool) -> None:
    _, container, manager = _watchlist_env()
    now = container.system_clock().now()

    async def go() -> list[str]:
        async with container.uow_factory()() as uow:
            if add:
                done = await manager.add_manual(uow, symbol, reason=reason, as_of=now)
            else:
                done = [await manager.remove_manual(uow, symbol, reason=reason, as_of=now)]
            await uow.commit()
        return [f"{'added' if c.change == 'add' else 'removed'} {c.symbol}: {c.reason}" for c in done]

    try:
        lines = run(go())
    except ValueError as exc:
        fail(str(exc), 1)
    typer.echo("\n".join(lines) if lines else f"{symbol.upper()} is already on the watchlist as a manual symbol")


@watchlist_app.command("add")
def add_symbol(symbol: str = typer.Argument(..., help="ticker, e.g. MSFT"),
               reason: str = typer.Option(..., "--reason", help="why it belongs on the watchlist")) -> None:
    """Add SYMBOL by hand; it stays until removed by hand (a discovered symbol may make room)."""
    _edit(symbol, reason, add=True)


@watchlist_app.command("remove")
def remove_symbol(symbol: str = typer.Argument(..., help="ticker"),
                  reason: str = typer.Option(..., "--reason", help="why it is removed")) -> None:
    """Remove SYMBOL by hand; discovery will not add it back for a week."""
    _edit(symbol, reason, add=False)


def picker_performance_table(perf: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Table:
    """Hit rate and average (excess) forward return per picker and horizon."""
    table = Table(title="Picker performance vs the equal-weighted universe (hit rate / avg return / avg excess)")
    table.add_column("picker")
    for key in HORIZON_KEYS:
        table.add_column(key, justify="right")
    for picker, by_h in perf.items():
        table.add_row(picker, *[_cell(by_h.get(k, {})) for k in HORIZON_KEYS])
    return table


def _cell(stats: Mapping[str, Any]) -> str:
    if not stats.get("n"):
        return "n/a"
    return f"{stats['hit_rate']:.0%} / {stats['avg_return']:+.2%} / {stats['avg_excess']:+.2%} (n={stats['n']})"


def add_picker_performance_html(path: Path, perf: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
    """Insert the picker-performance table into a backtest's report.html (before </body>)."""
    head = "".join(f"<th>{k} hit rate</th><th>{k} avg return</th><th>{k} avg excess</th><th>{k} n</th>"
                   for k in HORIZON_KEYS)
    rows = ""
    for picker, by_h in perf.items():
        cells = ""
        for k in HORIZON_KEYS:
            s = by_h.get(k, {})
            values = (s.get("hit_rate"), s.get("avg_return"), s.get("avg_excess"))
            cells += "".join(f"<td>{'n/a' if v is None else f'{v:.2%}'}</td>" for v in values)
            cells += f"<td>{s.get('n', 0)}</td>"
        rows += f"<tr><th>{html.escape(picker)}</th>{cells}</tr>"
    section = ("<h2>Picker performance</h2><p>Suggestions' forward returns against the equal-weighted universe "
               "over the same window; a hit beats the universe.</p>"
               f"<table><tr><th>picker</th>{head}</tr>{rows}</table>")
    text = path.read_text()
    path.write_text(text.replace("</body>", section + "</body>", 1) if "</body>" in text else text + section)


main = typer.Typer(no_args_is_help=True)
main.command("discover")(discover)
main.add_typer(watchlist_app, name="watchlist")

if __name__ == "__main__":
    main()
