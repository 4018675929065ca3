"""A small simulated world for cycle and backtest tests: synthetic market, paper broker,
in-memory repositories, hashing embedder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from dependency_injector import providers

from adapters.calendar.nyse import NyseCalendar
from application.liquidity import most_liquid_before
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings, load_settings
from entrypoints.wiring.venue import NOT_STOCKS

CALENDAR = NyseCalendar()


@dataclass
class App:
    """What the tests drive: the container's backtest pieces."""

    runner: Any
    cycle: Any
    market: Any
    broker: Any
    clock: Any
    venue: Any
    symbols: list[str]


@dataclass
class World:
    """A wired backtest (the "backtest" container, in memory) plus its container."""

    settings: Settings
    container: Container
    app: App
    uow_factory: Any


async def make_world(*, start: date = date(2024, 3, 1), end: date = date(2024, 6, 28), n: int = 12, seed: int = 3,
                     settings: Settings | None = None, uow_factory: Any = None, llms: Any = None,
                     market: Any = None, scope: str = "backtest:test") -> World:
    """Build a world from the container, overriding providers: `uow_factory` may wrap the in-memory factory,
    `llms` replaces the agents' models, `market` the replayed history."""
    s = settings or load_settings(env="test")
    c = build_container(s, "backtest", storage="memory", scope=scope, start=start, end=end, cash=Decimal(650),
                        n_symbols=n, seed=seed)
    c.calendar.override(providers.Object(CALENDAR))
    if market is not None:
        c.history.override(providers.Object(market))
    if llms is not None:
        c.llms.override(providers.Object(llms))
    factory = uow_factory(c.uow_factory()) if uow_factory else c.uow_factory()
    c.uow_factory.override(providers.Object(factory))
    symbols = await most_liquid_before(c.market(), CALENDAR, start, n, exclude=NOT_STOCKS)
    if not symbols:
        raise ValueError("no symbols with at least 60 days of history before the start date")
    c.run.symbols.from_value(symbols)
    app = App(c.backtest_runner(), c.cycle(), c.market(), c.broker(), c.venue_clock(), c.in_memory_venue(), symbols)
    return World(s, c, app, factory)


def feed_open(world: World, day: date) -> None:
    """Move the clock to the open of `day` and give the broker the opening prices."""
    app = world.app
    app.clock.set(CALENDAR.session_open(day))
    app.broker.on_session_open(day, app.market.opens_on(day))


def feed_fills(world: World, day: date) -> None:
    """A price update one minute after the open: what the cycle sent fills now (the broker never fills inside
    `submit`, like Alpaca)."""
    app = world.app
    at = CALENDAR.session_open(day) + timedelta(minutes=1)
    app.clock.set(at)
    app.broker.on_prices(at, app.market.opens_on(day))


def feed_close(world: World, day: date) -> None:
    """Move the clock to the close of `day` and give the broker the day's range."""
    app = world.app
    app.clock.set(CALENDAR.session_close(day))
    app.broker.on_session_close(day, app.market.ohlc_on(day))


async def run_day(world: World, day: date, checker: Any = None, *, cycle_kw: dict[str, Any] | None = None) -> Any:
    """One simulated session as the backtest runs it: open, the cycle, the fills after it, the close, the
    reconciliation at the close; invariants checked after the cycle and after the close when `checker` is given.
    Returns the cycle's result."""
    app = world.app
    feed_open(world, day)
    result = await app.cycle.run(as_of=CALENDAR.session_open(day), **(cycle_kw or {}))
    if checker is not None:
        await checker.check(CALENDAR.session_open(day), result.outcomes)
    feed_fills(world, day)
    feed_close(world, day)
    await app.cycle.reconcile(as_of=CALENDAR.session_close(day))
    if checker is not None:
        await checker.check(CALENDAR.session_close(day))
    return result
