"""`quorum monitor`: watch prices every minute and ask the API for an event cycle on 5% moves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import structlog
import typer

from adapters.calendar.nyse import NyseCalendar, SystemClock
from adapters.http import HttpCycleTrigger
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.event_monitor import EventMonitor, SymbolsProvider
from domain.ports.broker import Broker
from domain.ports.market_data import MarketData
from entrypoints.bootstrap import run, start
from entrypoints.live import SIM_SYMBOLS, build_alpaca, market_universe
from entrypoints.settings import Settings

log = structlog.get_logger(__name__)


def positions_and_universe(broker: Broker, market: MarketData, symbols: Sequence[str] = (),
                           universe_size: int = 20) -> SymbolsProvider:
    """TEMPORARY symbols provider, to be replaced by the watchlist repository once it exists.

    Open positions at the broker plus `symbols` when given, else the cycle's default universe (the most
    liquid tradable symbols of the market, `entrypoints.live.market_universe`, as `build_live_app` uses).
    That universe reads no database, so it gets an empty in-memory unit of work (and no embedding model
    is loaded by the monitor).
    """
    universe = market_universe(market, universe_size)
    no_database = InMemoryDatabase(HashingEmbedder())

    async def provider(now: datetime) -> list[str]:
        held = {p.symbol for p in await broker.positions()}
        if symbols:
            return sorted(held | {s.upper() for s in symbols})
        async with InMemoryUnitOfWork(no_database) as uow:
            return sorted(held | set(await universe(uow, now)))

    return provider


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


async def _monitor(settings: Settings, *, api_url: str, interval: float,
                   threshold: float, once: bool, symbols: Sequence[str]) -> None:
    calendar, clock = NyseCalendar(), SystemClock()
    market, broker = _market_and_broker(settings, calendar, clock)
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    trigger = HttpCycleTrigger(api_url, api_key)
    monitor = EventMonitor(market, positions_and_universe(broker, market, symbols), trigger, clock,
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
    symbols: list[str] = typer.Option([], "--symbol", help="watch these symbols (repeatable) instead of the "
                                      "default universe; open positions are always watched"),
) -> None:
    """Event monitor: poll prices every minute while the market is open, trigger event cycles on 5% moves."""
    settings, _ = start()
    run(_monitor(settings, api_url=api_url, interval=interval, threshold=threshold,
                 once=once, symbols=symbols))
