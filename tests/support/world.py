"""A small simulated world for cycle and backtest tests: synthetic market, paper broker,
in-memory repositories, hashing embedder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from adapters.calendar.nyse import NyseCalendar
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings, load_settings
from entrypoints.wiring import BacktestApp, build_backtest

CALENDAR = NyseCalendar()


@dataclass
class World:
    """A wired backtest plus its container."""

    settings: Settings
    container: Container
    app: BacktestApp
    uow_factory: Any


async def make_world(*, start: date = date(2024, 3, 1), end: date = date(2024, 6, 28), n: int = 12, seed: int = 3,
                     settings: Settings | None = None, uow_factory: Any = None, llms: Any = None,
                     market: Any = None, scope: str = "backtest:test") -> World:
    """Build a world; `uow_factory` may wrap the container's in-memory factory."""
    s = settings or load_settings(env="test")
    c = build_container(s, "test")
    factory = uow_factory(c.uow_factory()) if uow_factory else c.uow_factory()
    app = await build_backtest(s, uow_factory=factory, embedder=c.embedder(), scope=scope, start=start, end=end,
                               cash=Decimal(650), n_symbols=n, seed=seed, llms=llms, market=market,
                               calendar=CALENDAR)
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
