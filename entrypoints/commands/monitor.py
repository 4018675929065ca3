"""`quorum monitor`: watch prices every minute and ask the API for an event cycle on 5% moves.

Watched: the watchlist of the configured database (scope "live" unless `--scope`), the broker's open positions
and any `--symbol`; with an empty watchlist, the positions only (the log says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import structlog
import typer

from adapters.calendar.nyse import NyseCalendar, SystemClock
from adapters.http import HttpCycleTrigger
from application.discovery.watchlist import normalize_symbol
from application.event_monitor import EventMonitor, SymbolsProvider
from application.monitor_symbols import watchlist_and_positions
from domain.memory import DEFAULT_SCOPE
from domain.ports.broker import Broker
from domain.ports.market_data import MarketData
from entrypoints.bootstrap import fail, run, start
from entrypoints.container import Container
from entrypoints.live import SIM_SYMBOLS, build_alpaca
from entrypoints.settings import Settings

log = structlog.get_logger(__name__)


def monitor_symbols(container: Container, broker: Broker, scope: str = DEFAULT_SCOPE,
                    symbols: Sequence[str] = ()) -> SymbolsProvider:
    """The monitor's symbols: the watchlist of `scope` in the configured database, the broker's open positions
    and `symbols` (see `application.monitor_symbols`). Reading the watchlist loads no embedding model."""
    return watchlist_and_positions(container.uow_factory(), broker, scope, extra=symbols)


def _market_and_broker(settings: Settings, calendar: NyseCalendar, clock: SystemClock) -> tuple[MarketData, Broker]:
    if settings.broker.provider == "alpaca":
        broker, market = build_alpaca(settings, calendar)
        return market, broker
    from adapters.inmemory.broker import InMemoryBroker
    from adapters.inmemory.market_data import SyntheticMarket
    from entrypoints.wiring import WARMUP_DAYS

    today = clock.now().date()
    sim = SyntheticMarket(seed=7, n_symbols=SIM_SYMBOLS, start=today - timedelta(days=WARMUP_DAYS), end=today,
                          calendar=calendar)
    return sim, InMemoryBroker(Decimal(settings.risk.starting_capital), settings.risk.fees, clock, calendar, {})


async def _monitor(settings: Settings, container: Container, *, api_url: str, interval: float,
                   threshold: float, once: bool, symbols: Sequence[str], scope: str) -> None:
    calendar, clock = NyseCalendar(), SystemClock()
    market, broker = _market_and_broker(settings, calendar, clock)
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    trigger = HttpCycleTrigger(api_url, api_key)
    monitor = EventMonitor(market, monitor_symbols(container, broker, scope, symbols), trigger, clock,
                           calendar, threshold=threshold, poll_interval=interval)
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
        await trigger.aclose()
        for thing in (broker, market):
            aclose = getattr(thing, "aclose", None)
            if aclose is not None:
                await aclose()


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
    settings, container = start()
    try:
        extra = [normalize_symbol(s) for s in symbols]
    except ValueError as exc:
        fail(f"--symbol: {exc}")
    run(_monitor(settings, container, api_url=api_url, interval=interval, threshold=threshold,
                 once=once, symbols=extra, scope=scope))
