"""The event monitor on 18 real sessions of one-minute bars (16 stocks, Oct-Nov 2022), replayed with a
simulated clock stepping 60 s, checked against ../shared/data/derived/intraday_days_with_5pct_moves.csv.

That file lists each (symbol, day) whose price crossed +-5% from the previous session's last close, with the
first crossing bar. The monitor's documented window logic (application/event_monitor.py): 15-minute window
of completed bar closes, the previous session's last close sitting at the open (so opening gaps count),
|move| >= 5% from the window's extreme fires, 15-minute cooldown per symbol. Hence:

- a day that opened 5% or more away from the previous close fires within the first 15 minutes;
- every trigger falls on a listed day, at or after the completion of its first crossing bar;
- the 200-odd symbol-days not listed (moves under 5%) never fire;
- two triggers of one symbol are at least 15 minutes apart.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.calendar.nyse import NEW_YORK as NY
from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.clock import SimClock
from adapters.inmemory.market_data import ReplayMarketData
from application.event_monitor import EventMonitor, Trigger
from domain.errors import DataError
from domain.models.bar import Bar

MINUTE = timedelta(minutes=1)
WINDOW = timedelta(minutes=15)
FIRST, LAST = date(2022, 10, 19), date(2022, 11, 11)
CAL = NyseCalendar()


@dataclass(frozen=True)
class Listed:
    symbol: str
    day: date
    gap_pct: float
    first_crossing: datetime  # start of the first bar beyond +-5% of the previous close (UTC)


def _ny(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NY)


@pytest.fixture(scope="module")
def listed(shared_data: Path) -> dict[tuple[str, date], Listed]:
    path = shared_data / "derived" / "intraday_days_with_5pct_moves.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    out = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            if not row["dataset"].startswith("intraday_1min"):
                continue
            crossings = [_ny(c) for c in (row["first_bar_high_ge_prev_close_plus5pct"],
                                          row["first_bar_low_le_prev_close_minus5pct"]) if c]
            if crossings:
                d = date.fromisoformat(row["date"])
                out[(row["symbol"], d)] = Listed(row["symbol"], d, float(row["gap_pct"]), min(crossings))
    return out


@pytest.fixture(scope="module")
def market(shared_data: Path) -> ReplayMarketData:
    folder = shared_data / "intraday" / "1min_2022-10_2022-11"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return ReplayMarketData([folder], CAL)


class RecordingTrigger:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[str, datetime]] = []

    async def trigger(self, symbol: str, move: float, at: datetime) -> str | None:
        self.calls.append((symbol, at))
        if self.failures:
            self.failures -= 1
            raise ConnectionError("API down")
        return f"event:{symbol}:{at:%Y%m%d%H%M}"


def monitor(market: Any, clock: SimClock, trigger: RecordingTrigger, symbols: Sequence[str], sleeps: list[float],
            **options: Any) -> EventMonitor:
    async def provide(_now: datetime) -> list[str]:
        return list(symbols)

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return EventMonitor(market, provide, trigger, clock, CAL, sleep=sleep, **options)


async def replay(mon: EventMonitor, clock: SimClock, days: Sequence[date]) -> list[Trigger]:
    """Poll every 60 s through the regular session of each day."""
    fired: list[Trigger] = []
    for day in days:
        clock.reset(CAL.session_open(day))
        while CAL.is_open(clock.now()):
            fired += await mon.poll_once(clock.now())
            clock.advance(MINUTE)
    return fired


@pytest.fixture(scope="module")
def full_replay(market: ReplayMarketData) -> tuple[list[Trigger], list[str], list[date]]:
    symbols, days = market.symbols, CAL.sessions(FIRST, LAST)
    clock = SimClock(CAL.session_open(days[0]))
    mon = monitor(market, clock, RecordingTrigger(), symbols, [])
    return asyncio.run(replay(mon, clock, days)), symbols, days


def session_day(at: datetime) -> date:
    return at.astimezone(NY).date()


def test_the_replay_covers_every_symbol_and_session(full_replay: Any) -> None:
    _, symbols, days = full_replay
    assert len(symbols) == 16 and len(days) == 18


def test_every_opening_gap_of_five_percent_triggers_in_the_first_fifteen_minutes(
        full_replay: Any, listed: dict[tuple[str, date], Listed]) -> None:
    fired, _, _ = full_replay
    gaps = [x for x in listed.values() if abs(x.gap_pct) >= 5.0]
    assert len(gaps) >= 15
    for gap in gaps:
        opened = CAL.session_open(gap.day)
        hits = [t for t in fired if t.symbol == gap.symbol and opened < t.at <= opened + WINDOW]
        assert hits, f"{gap.symbol} gapped {gap.gap_pct:+.2f}% on {gap.day} and did not trigger"
        assert math.copysign(1, hits[0].move.move) == math.copysign(1, gap.gap_pct)


def test_every_trigger_is_on_a_listed_day_at_or_after_its_first_crossing_bar(
        full_replay: Any, listed: dict[tuple[str, date], Listed]) -> None:
    fired, _, _ = full_replay
    assert fired
    for t in fired:
        known = listed.get((t.symbol, session_day(t.at)))
        assert known is not None, f"{t.symbol} triggered on {session_day(t.at)}, a day without a 5% move"
        assert t.at >= known.first_crossing + MINUTE, (t.symbol, t.at, known.first_crossing)


def test_every_trigger_follows_the_window_logic(full_replay: Any) -> None:
    fired, _, _ = full_replay
    for t in fired:
        m = t.move
        assert abs(m.move) >= 0.05 - 1e-12
        assert math.isclose(m.move, (m.last.price - m.extreme.price) / m.extreme.price)
        assert m.last.at == t.at and t.at - WINDOW <= m.start.at <= m.extreme.at <= m.last.at


def test_days_with_small_moves_never_trigger(full_replay: Any, listed: dict[tuple[str, date], Listed]) -> None:
    fired, symbols, days = full_replay
    quiet = {(s, d) for s in symbols for d in days} - set(listed)
    assert len(quiet) > 150
    assert {(t.symbol, session_day(t.at)) for t in fired} & quiet == set()


def test_the_cooldown_holds_and_is_what_keeps_triggers_apart(market: ReplayMarketData, full_replay: Any) -> None:
    fired, _, _ = full_replay
    by_symbol: dict[str, list[datetime]] = {}
    for t in fired:
        by_symbol.setdefault(t.symbol, []).append(t.at)
    for times in by_symbol.values():
        assert all(b - a >= WINDOW for a, b in itertools.pairwise(times))
    day = date(2022, 10, 27)  # META -24.5% on earnings: the move lasts all morning
    clock = SimClock(CAL.session_open(day))
    without = asyncio.run(replay(monitor(market, clock, RecordingTrigger(), ["META"], [],
                                         cooldown=timedelta(0)), clock, [day]))
    first = without[0].at
    assert len([t for t in without if t.at < first + WINDOW]) > 1
    with_cooldown = [t.at for t in fired if t.symbol == "META" and session_day(t.at) == day]
    assert with_cooldown[0] == first and [t for t in with_cooldown if t < first + WINDOW] == [first]


def test_a_trigger_that_fails_twice_is_retried_and_fires_at_the_same_minute(market: ReplayMarketData,
                                                                             full_replay: Any) -> None:
    fired, _, _ = full_replay
    day = date(2022, 10, 27)
    expected = next(t for t in fired if t.symbol == "META" and session_day(t.at) == day)
    clock, trigger, sleeps = SimClock(CAL.session_open(day)), RecordingTrigger(failures=2), []
    got = asyncio.run(replay(monitor(market, clock, trigger, ["META"], sleeps), clock, [day]))
    assert got[0].at == expected.at and got[0].attempts == 3 and sleeps == [2.0, 4.0]
    assert [at for _, at in trigger.calls[:3]] == [expected.at] * 3


class FlakyMarket:
    """ReplayMarketData whose minute bars fail on some calls."""

    def __init__(self, inner: ReplayMarketData, failing_calls: set[int]) -> None:
        self.inner, self.failing, self.calls = inner, failing_calls, 0

    async def assets(self) -> list[Any]:
        return await self.inner.assets()

    async def latest_quotes(self, symbols: Sequence[str], *, as_of: datetime) -> dict[str, Any]:
        return await self.inner.latest_quotes(symbols, as_of=as_of)

    async def minute_bars(self, symbols: Sequence[str], *, start: datetime, end: datetime) -> dict[str, list[Bar]]:
        self.calls += 1
        if self.calls in self.failing:
            raise DataError("market data unavailable (HTTP 502)")
        return await self.inner.minute_bars(symbols, start=start, end=end)


def run_day(market: Any, day: date, symbols: list[str]) -> list[tuple[str, datetime]]:
    """`EventMonitor.run` from 30 minutes before the open to the close, sleeping on the simulated clock."""
    clock = SimClock(CAL.session_open(day) - timedelta(minutes=30))
    stop = asyncio.Event()

    async def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))
        if clock.now() >= CAL.session_close(day):
            stop.set()

    async def provide(_now: datetime) -> list[str]:
        return symbols

    trigger = RecordingTrigger()
    mon = EventMonitor(market, provide, trigger, clock, CAL, sleep=sleep)
    asyncio.run(asyncio.wait_for(mon.run(stop), timeout=60))
    return trigger.calls


def test_the_loop_survives_market_data_errors_and_loses_only_the_failed_minutes(market: ReplayMarketData) -> None:
    day = date(2022, 11, 3)  # FIS -15% and RCL -7% at the open, then more moves later in the morning
    baseline_market = FlakyMarket(market, failing_calls=set())
    baseline = run_day(baseline_market, day, market.symbols)
    flaky = FlakyMarket(market, failing_calls=set(range(12, 18)))  # the polls of 09:40..09:45 fail
    survived = run_day(flaky, day, market.symbols)
    opened = CAL.session_open(day)
    assert [at for _, at in baseline if opened + 10 * MINUTE <= at <= opened + 15 * MINUTE] == []
    assert any(at > opened + 15 * MINUTE for _, at in baseline)  # triggers after the outage exist ...
    assert survived == baseline  # ... and none is lost: each poll reads the last 16 minutes of bars again
    assert flaky.calls == baseline_market.calls == 1 + 390  # one seed read, then a poll every minute to the close
