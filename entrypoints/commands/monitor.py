"""`quorum monitor`: watch prices every minute and ask the API for an event cycle on 5% moves.

Watched: the watchlist of the configured database (scope "live" unless `--scope`), the broker's open positions
and any `--symbol`; with an empty watchlist, the positions only (the log says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal

import structlog
import typer

from application.discovery.watchlist import normalize_symbol
from domain.memory import DEFAULT_SCOPE
from entrypoints.bootstrap import fail, run, start
from entrypoints.container import Container, close_container

log = structlog.get_logger(__name__)


async def _monitor(container: Container, *, once: bool) -> None:
    monitor, clock, calendar = container.event_monitor(), container.clock(), container.calendar()
    try:
        if once:
            now = clock.now()
            if not calendar.is_open(now):
                typer.echo(json.dumps({"polled": False, "reason": "the regular session is closed"}))
                return
            fired = await monitor.poll_once(now)
            typer.echo(json.dumps({"polled": True, "at": now.isoformat(), "triggers": [
                {"symbol": t.symbol, "move": round(t.move.move, 6), "cycle_id": t.cycle_id} for t in fired]}))
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await monitor.run(stop)
    finally:
        await close_container(container)


def monitor(
    api_url: str = typer.Option("http://127.0.0.1:8000", "--api-url", help="base URL of the Quorum API"),
    interval: float = typer.Option(60.0, "--interval", min=1.0, help="seconds between polls"),
    threshold: float = typer.Option(0.05, "--threshold", min=0.001, max=0.5,
                                    help="smallest move that triggers, as a fraction (0.05 = 5%)"),
    once: bool = typer.Option(False, "--once", help="poll once now and print the triggers as JSON"),
    symbols: list[str] = typer.Option([], "--symbol", help="also watch this symbol (repeatable); the watchlist "
                                      "and the open positions are always watched"),
    scope: str = typer.Option(DEFAULT_SCOPE, "--scope", help="whose watchlist to watch"),
) -> None:
    """Event monitor: poll prices every minute while the market is open, trigger event cycles on 5% moves.

    It watches the watchlist (from the database) and the broker's open positions, read afresh at every poll.
    """
    _, container = start()
    try:
        extra = [normalize_symbol(s) for s in symbols]
    except ValueError as exc:
        fail(f"--symbol: {exc}")
    container.run.from_dict({"api_url": api_url, "interval": interval, "threshold": threshold, "watch": extra,
                             "scope": scope})
    run(_monitor(container, once=once))
