"""PriceWindow on hand-made prices, and EventMonitor on hand-made minute bars with a simulated clock."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.clock import SimClock
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.market_data import DailyBarMarketData
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.event_monitor import EventMonitor
from application.monitor_symbols import watchlist_and_positions
from domain.errors import BrokerUnavailableError, CycleTriggerError, DataError
from domain.models.bar import Bar
from domain.models.trading import Position
from domain.ports.discovery import WatchlistEntry
from domain.price_window import PriceWindow

T = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)
M = timedelta(minutes=1)
CAL = NyseCalendar()
DAY, PREV = date(2024, 3, 5), date(2024, 3, 4)
OPEN, PREV_CLOSE = CAL.session_open(DAY), CAL.session_close(PREV)


def window(*prices: float, step: timedelta = M) -> PriceWindow:
    w = PriceWindow()
    for i, p in enumerate(prices):
        w.add(T + i * step, p)
    return w


@pytest.mark.parametrize(("prices", "fires"), [
    ((100.0, 105.0), True),
    ((100.0, 104.99), False),
    ((100.0, 95.0), True),
    ((100.0, 95.01), False),
    ((100.0, 96.0, 100.8), True),  # +5% from the low, not from the first price
    ((100.0, 103.0, 101.0, 104.0), False),
])
def test_price_window_fires_at_exactly_five_percent(prices: tuple[float, ...], fires: bool) -> None:
    assert (window(*prices).detect(0.05) is not None) is fires


def test_the_move_is_measured_from_the_extreme_to_the_last_price() -> None:
    m = window(100.0, 110.0, 104.0).move()
    assert m is not None
    assert math.isclose(m.move, 104 / 110 - 1) and m.extreme.price == 110.0 and m.extreme.at == T + M
    assert (m.start.price, m.last.price, m.last.at) == (100.0, 104.0, T + 2 * M)
    up = window(100.0, 90.0, 95.0).move()
    assert up is not None and math.isclose(up.move, 95 / 90 - 1)  # +5.6% beats -5%


def test_the_window_keeps_fifteen_minutes_both_ends_included() -> None:
    w = window(100.0, *[101.0] * 14, 105.0)  # points at T .. T+15min
    assert len(w) == 16 and w.detect(0.05) is not None
    w.add(T + 16 * M, 105.0)  # T drops out
    assert w.points[0].at == T + M and w.detect(0.05) is None
    w.prune(T + 40 * M)
    assert len(w) == 0 and w.move() is None


def test_bad_or_out_of_order_prices_are_ignored_and_naive_times_refused() -> None:
    w = window(100.0)
    assert not w.add(T, 200.0) and not w.add(T - M, 200.0)
    assert not w.add(T + M, float("nan")) and not w.add(T + M, 0.0) and not w.add(T + M, -5.0)
    assert len(w) == 1
    with pytest.raises(ValueError, match="price time must be timezone-aware"):
        w.add(datetime(2024, 3, 5, 15, 1), 100.0)  # noqa: DTZ001 - naive on purpose: the window must refuse it
    with pytest.raises(ValueError, match="threshold must be positive"):
        w.detect(0)


def bars(symbol: str, start: datetime, prices: Sequence[float]) -> list[Bar]:
    return [Bar(symbol, start + i * M, p, p, p, p, 1_000.0) for i, p in enumerate(prices)]


def day_bars(symbol: str, prices: Sequence[float], prev_close: float = 100.0) -> list[Bar]:
    """The last 15 minutes of the previous session at `prev_close`, then `prices` from today's open."""
    return bars(symbol, PREV_CLOSE - 15 * M, [prev_close] * 15) + bars(symbol, OPEN, prices)


class Trigger:
    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[tuple[str, float, datetime]] = []

    async def trigger(self, symbol: str, move: float, at: datetime) -> str | None:
        self.calls.append((symbol, move, at))
        if self.errors:
            raise self.errors.pop(0)
        return f"event:{symbol}:{at:%H%M}"


class Harness:
    def __init__(self, intraday: dict[str, list[Bar]], symbols: Sequence[str] | None = None,
                 trigger: Trigger | None = None, **options: Any) -> None:
        self.market = DailyBarMarketData({}, CAL, intraday=intraday)
        self.clock = SimClock(OPEN)
        self.trigger = trigger or Trigger()
        self.sleeps: list[float] = []
        self.symbols = list(symbols if symbols is not None else intraday)
        self.monitor = EventMonitor(self.market, self.provide, self.trigger, self.clock, CAL, sleep=self.sleep,
                                    **options)

    async def provide(self, _now: datetime) -> list[str]:
        return self.symbols

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def minutes(self, n: int) -> list[Any]:
        """Poll once a minute for the next `n` minutes (the clock starts at the open); returns every trigger."""
        fired = []
        for _ in range(n):
            fired += await self.monitor.poll_once(self.clock.advance(M))
        return fired


async def test_a_quick_rise_triggers_once_with_the_move_and_is_logged() -> None:
    h = Harness({"AAPL": day_bars("AAPL", [100, 101, 102, 103, 104, 105.5, 106, 106] + [106] * 30)})
    with capture_logs() as logs:
        fired = await h.minutes(20)
    [t] = fired
    assert t.symbol == "AAPL" and t.at == OPEN + 6 * M  # the 09:35 bar (105.5) completes at 09:36
    assert math.isclose(t.move.move, 0.055) and t.cycle_id == "event:AAPL:1436" and t.attempts == 1
    [line] = [e for e in logs if e["event"] == "event_trigger"]
    assert line["symbol"] == "AAPL" and line["move"] == 0.055 and line["window_start_price"] == 100.0
    assert line["window_end_price"] == 105.5 and line["extreme_price"] == 100.0


async def test_a_four_percent_wobble_does_not_trigger() -> None:
    h = Harness({"MSFT": day_bars("MSFT", [100, 102, 103.4, 101, 99.5, 101.5, 104.4, 100] * 5)})
    assert await h.minutes(39) == []
    assert h.trigger.calls == []


async def test_an_opening_gap_of_five_percent_triggers_at_the_first_poll() -> None:
    h = Harness({"TSLA": day_bars("TSLA", [94.0] * 30, prev_close=100.0)})
    [t] = await h.minutes(20)
    assert t.at == OPEN + M and math.isclose(t.move.move, -0.06)
    assert t.move.extreme.at == OPEN and t.move.extreme.price == 100.0


async def test_the_cooldown_holds_for_fifteen_minutes_then_a_lasting_move_fires_again() -> None:
    prices = [100 + i for i in range(60)]  # +1 a minute: always more than 5% over 15 minutes
    h = Harness({"NVDA": day_bars("NVDA", prices)})
    fired = await h.minutes(50)
    times = [t.at for t in fired]
    assert times[0] == OPEN + 6 * M
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(times)) and len(times) == 3


async def test_a_failing_trigger_is_retried_with_back_off_and_then_succeeds() -> None:
    trigger = Trigger(ConnectionError("refused"), CycleTriggerError("HTTP 503", retryable=True))
    h = Harness({"AMD": day_bars("AMD", [107.0] * 30)}, trigger=trigger)
    [t] = await h.minutes(3)
    assert (t.attempts, h.sleeps, len(trigger.calls)) == (3, [2.0, 4.0], 3)


async def test_a_trigger_that_keeps_failing_sets_no_cooldown_and_the_next_poll_tries_again() -> None:
    trigger = Trigger(CycleTriggerError("HTTP 401", retryable=False), *[ConnectionError("down")] * 4)
    h = Harness({"AMD": day_bars("AMD", [107.0] * 30)}, trigger=trigger, trigger_attempts=4)
    with capture_logs() as logs:
        assert await h.minutes(1) == []  # 401: not retried, no cooldown
        assert len(trigger.calls) == 1
        assert await h.minutes(1) == []  # four connection failures: gives up, no cooldown
    assert len(trigger.calls) == 5 and h.sleeps == [2.0, 4.0, 8.0]
    assert any(e["event"] == "event_trigger_gave_up" for e in logs)
    [t] = await h.minutes(1)
    assert (t.symbol, t.at, t.attempts) == ("AMD", OPEN + 3 * M, 1)


async def test_a_market_data_failure_skips_one_poll_only() -> None:
    h = Harness({"AAPL": day_bars("AAPL", [100, 100, 106] + [106] * 30)})
    real = h.market.minute_bars
    calls = 0

    async def flaky(symbols: Sequence[str], *, start: datetime, end: datetime) -> dict[str, list[Bar]]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise DataError("Alpaca returned 502")
        return await real(symbols, start=start, end=end)

    h.market.minute_bars = flaky  # type: ignore[method-assign]
    fired = await h.minutes(5)
    assert [t.at for t in fired] == [OPEN + 3 * M]


async def test_only_stocks_are_monitored() -> None:
    rising = [100, 106] + [106] * 20
    h = Harness({s: day_bars(s, rising) for s in ("AAPL", "SPY", "VIX", "XLK")}, symbols=["AAPL", "SPY", "VIX", "XLK",
                                                                                          "NOPE"])
    fired = await h.minutes(3)
    assert [t.symbol for t in fired] == ["AAPL"]


async def test_run_polls_only_while_the_market_is_open_and_survives_errors() -> None:
    h = Harness({"AAPL": day_bars("AAPL", [100] * 10 + [106] * 400)})
    h.clock.reset(OPEN - timedelta(hours=2))
    stop = asyncio.Event()
    polled: list[datetime] = []
    real_poll = h.monitor.poll_once

    async def poll(now: datetime) -> list[Any]:
        polled.append(now)
        if len(polled) == 3:
            raise RuntimeError("unexpected")
        return await real_poll(now)

    async def sleep(seconds: float) -> None:
        h.clock.advance(timedelta(seconds=seconds))
        if h.clock.now() >= CAL.session_close(DAY) + timedelta(minutes=30):
            stop.set()

    h.monitor.poll_once = poll  # type: ignore[method-assign]
    h.monitor._sleep = sleep  # type: ignore[attr-defined]
    await asyncio.wait_for(h.monitor.run(stop), timeout=30)
    assert polled[0] == OPEN and polled[-1] == CAL.session_close(DAY) - M
    assert len(polled) == 390 and all(b - a == M for a, b in itertools.pairwise(polled))
    assert next(c[2] for c in h.trigger.calls) == OPEN + 11 * M


async def test_the_watchlist_and_positions_provider_drives_the_monitor_and_an_outage_keeps_the_last_symbols() -> None:
    db = InMemoryDatabase(HashingEmbedder())
    async with InMemoryUnitOfWork(db) as uow:
        await uow.watchlist.upsert("live", WatchlistEntry("MSFT", "discovered", "test", OPEN, 0.7))
        await uow.commit()

    class Broker:
        down = False

        async def positions(self) -> list[Position]:
            if self.down:
                raise BrokerUnavailableError("GET /v2/positions: 503")
            return [Position("TSLA", Decimal("1"), Decimal("100"))]

    broker = Broker()
    flat = [100.0] * 40
    intraday = {"MSFT": day_bars("MSFT", flat[:5] + [106.0] * 35), "TSLA": day_bars("TSLA", flat[:3] + [94.0] * 37),
                "AAPL": day_bars("AAPL", [107.0] * 40)}  # AAPL moves but is neither watched nor held
    trigger, clock = Trigger(), SimClock(OPEN)
    monitor = EventMonitor(DailyBarMarketData({}, CAL, intraday=intraday),
                           watchlist_and_positions(lambda: InMemoryUnitOfWork(db), broker),  # type: ignore[arg-type]
                           trigger, clock, CAL)
    assert await monitor.poll_once(clock.advance(M)) == []
    broker.down = True  # from now on the broker cannot be read: the symbols of the last poll stay watched
    with capture_logs() as logs:
        fired = [t for _ in range(8) for t in await monitor.poll_once(clock.advance(M))]
    assert sorted(t.symbol for t in fired) == ["MSFT", "TSLA"]
    assert any(e["event"] == "monitor_symbols_failed" for e in logs)
