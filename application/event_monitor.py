"""The event monitor: watches prices every minute and asks for an event cycle when a stock moves 5% or more.

How it decides (all times from the injected clock; nothing runs while the regular session is closed):

- Symbols: those of `symbols_provider` (watchlist and open positions), stocks only: a symbol must be a
  `us_equity` asset of the market data source and not one of `exclude` (by default the market-context
  symbols SPY, VIX and the sector SPDRs). Indices such as VIX are never `us_equity`, so never monitored.
- Prices: the closes of completed regular-session one-minute bars, each stamped when its bar completed;
  a symbol without any recent bar falls back to its latest quote (stamped at the poll time).
- Window: per symbol, the prices of the last `window` (15 minutes, both ends included). The overnight
  break does not count: at the first poll of a session the window starts with the previous session's
  last price, stamped at the open, so a gap of 5% or more fires in the first minutes of trading.
- Move: (last - extreme) / extreme, extreme being the window's lowest (up) or highest (down) price;
  |move| >= `threshold` fires (see `domain.price_window`).
- Cooldown: after a successful trigger the symbol stays quiet for `cooldown` (15 minutes); the window
  is kept, so a move that goes on fires again once the cooldown is over.
- Failures: a trigger that fails is retried with exponential back-off within the poll (a non-retryable
  `CycleTriggerError` is not); a trigger that still fails sets no cooldown, so the next poll tries again.
  Market data errors are logged and the poll is skipped. `run` never dies on an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import structlog

from domain.errors import CycleTriggerError
from domain.market_conditions import SECTOR_ETFS
from domain.models.bar import Bar
from domain.ports.clock import Clock, MarketCalendar
from domain.ports.market_data import MarketData
from domain.ports.trigger import CycleTrigger
from domain.price_window import Move, PricePoint, PriceWindow

__all__ = ["CycleTrigger", "EventMonitor", "Move", "PricePoint", "PriceWindow", "SymbolsProvider", "Trigger"]

log = structlog.get_logger(__name__)
MINUTE = timedelta(minutes=1)
DEFAULT_EXCLUDE: frozenset[str] = frozenset({"SPY", "VIX", *SECTOR_ETFS})
SymbolsProvider = Callable[[datetime], Awaitable[Sequence[str]]]
"""async (as_of) -> symbols to watch (watchlist and open positions)."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """An event cycle the monitor asked for."""

    symbol: str
    at: datetime
    move: Move
    cycle_id: str | None
    attempts: int


class EventMonitor:
    """Polls prices, detects large moves, triggers event cycles (see the module docstring).

    Args:
        market: prices (`minute_bars`, `latest_quotes`) and `assets` (to keep stocks only).
        symbols_provider: async (as_of) -> the symbols to watch.
        trigger: asks for an event cycle.
        clock: the current time.
        calendar: when the regular session is open.
        threshold: the smallest move that fires, as a fraction.
        window: how far back a move is measured.
        cooldown: quiet time per symbol after a trigger.
        poll_interval: seconds between polls.
        sleep: the coroutine used to wait (injected in tests).
        trigger_attempts: tries per trigger within one poll.
        retry_base: first retry delay in seconds, doubled at each retry.
        exclude: symbols never monitored.
    """

    def __init__(self, market: MarketData, symbols_provider: SymbolsProvider, trigger: CycleTrigger, clock: Clock,
                 calendar: MarketCalendar, *, threshold: float = 0.05, window: timedelta = timedelta(minutes=15),
                 cooldown: timedelta = timedelta(minutes=15), poll_interval: float = 60.0,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, trigger_attempts: int = 4,
                 retry_base: float = 2.0, exclude: Collection[str] = DEFAULT_EXCLUDE) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        if poll_interval <= 0 or trigger_attempts < 1:
            raise ValueError("poll_interval must be positive and trigger_attempts at least 1")
        self._market, self._symbols_provider, self._trigger = market, symbols_provider, trigger
        self._clock, self._calendar = clock, calendar
        self.threshold, self.window, self.cooldown, self.poll_interval = threshold, window, cooldown, poll_interval
        self._sleep, self._attempts, self._retry_base = sleep, trigger_attempts, retry_base
        self._exclude = frozenset(exclude)
        self._windows: dict[str, PriceWindow] = {}
        self._quiet_until: dict[str, datetime] = {}
        self._day: date | None = None
        self._seeded: set[str] = set()
        self._stocks: tuple[date, frozenset[str]] | None = None
        self._symbols: list[str] = []

    async def poll_once(self, now: datetime) -> list[Trigger]:
        """One poll at `now` (during a session): update the windows, trigger on large moves."""
        day = now.astimezone(self._calendar.tz).date()
        if day != self._day:
            self._day, self._seeded = day, set()
            self._windows.clear()
        symbols = await self._watched(now, day)
        try:
            await self._seed(symbols, now, day)
            await self._update(symbols, now, day)
        except Exception as exc:  # noqa: BLE001 - a market data failure skips one poll, never the loop
            log.warning("monitor_market_data_failed", error=f"{type(exc).__name__}: {exc}", at=now.isoformat())
            return []
        fired = []
        for symbol in symbols:
            window = self._windows.get(symbol)
            if window is None:
                continue
            window.prune(now)
            move = window.detect(self.threshold)
            if move is None:
                continue
            quiet = self._quiet_until.get(symbol)
            if quiet is not None and now < quiet:
                log.debug("monitor_move_in_cooldown", symbol=symbol, move=round(move.move, 6),
                          until=quiet.isoformat())
                continue
            done = await self._fire(symbol, move, now)
            if done is not None:
                fired.append(done)
        return fired

    async def _watched(self, now: datetime, day: date) -> list[str]:
        try:
            wanted = sorted({s.upper() for s in await self._symbols_provider(now)})
            self._symbols = wanted
        except Exception as exc:  # noqa: BLE001 - keep watching the last known symbols
            log.warning("monitor_symbols_failed", error=f"{type(exc).__name__}: {exc}")
            wanted = self._symbols
        if self._stocks is None or self._stocks[0] != day:
            try:
                assets = await self._market.assets()
                self._stocks = (day, frozenset(a.symbol for a in assets if a.asset_class == "us_equity"))
            except Exception as exc:  # noqa: BLE001 - without the asset list only `exclude` filters
                log.warning("monitor_assets_failed", error=f"{type(exc).__name__}: {exc}")
        stocks = self._stocks[1] if self._stocks is not None else None
        return [s for s in wanted if s not in self._exclude and (stocks is None or s in stocks)]

    async def _seed(self, symbols: Sequence[str], now: datetime, day: date) -> None:
        todo = [s for s in symbols if s not in self._seeded]
        if not todo:
            return
        prev_close = self._calendar.session_close(self._calendar.previous_session(now))
        bars = await self._market.minute_bars(todo, start=prev_close - self.window, end=prev_close)
        opened = self._calendar.session_open(day)
        for symbol in todo:
            window = self._windows.setdefault(symbol, PriceWindow(self.window))
            last = bars.get(symbol)
            if last and not window.points:
                window.add(opened, last[-1].close)
            self._seeded.add(symbol)

    async def _update(self, symbols: Sequence[str], now: datetime, day: date) -> None:
        opened = self._calendar.session_open(day)
        start = max(opened, now - self.window - MINUTE)
        bars: dict[str, list[Bar]] = await self._market.minute_bars(symbols, start=start, end=now) if symbols else {}
        missing = [s for s in symbols if not bars.get(s)]
        for symbol in symbols:
            window = self._windows.setdefault(symbol, PriceWindow(self.window))
            for bar in bars.get(symbol, ()):
                window.add(bar.at + MINUTE, bar.close)
        if missing:
            for symbol, quote in (await self._market.latest_quotes(missing, as_of=now)).items():
                if symbol in self._windows:
                    self._windows[symbol].add(now, quote.last if quote.last > 0 else quote.mid)

    async def _fire(self, symbol: str, move: Move, now: datetime) -> Trigger | None:
        for attempt in range(1, self._attempts + 1):
            try:
                cycle_id = await self._trigger.trigger(symbol, move.move, now)
            except CycleTriggerError as exc:
                error, retryable = str(exc), exc.retryable
            except Exception as exc:  # noqa: BLE001 - an API failure is retried, never fatal
                error, retryable = f"{type(exc).__name__}: {exc}", True
            else:
                self._quiet_until[symbol] = now + self.cooldown
                log.info("event_trigger", symbol=symbol, move=round(move.move, 6), at=now.isoformat(),
                         price=move.last.price, extreme_price=move.extreme.price,
                         extreme_at=move.extreme.at.isoformat(), window_start_price=move.start.price,
                         window_start_at=move.start.at.isoformat(), window_end_price=move.last.price,
                         window_end_at=move.last.at.isoformat(), cycle_id=cycle_id, attempts=attempt)
                return Trigger(symbol, now, move, cycle_id, attempt)
            log.warning("event_trigger_failed", symbol=symbol, move=round(move.move, 6), attempt=attempt,
                        retryable=retryable, error=error)
            if not retryable:
                return None
            if attempt < self._attempts:
                await self._sleep(self._retry_base * 2 ** (attempt - 1))
        log.error("event_trigger_gave_up", symbol=symbol, move=round(move.move, 6), attempts=self._attempts)
        return None

    def _until_open(self, now: datetime) -> float:
        day = now.astimezone(self._calendar.tz).date()
        for session in self._calendar.sessions(day, day + timedelta(days=10)):
            opened = self._calendar.session_open(session)
            if opened > now:
                return (opened - now).total_seconds()
        return self.poll_interval

    async def run(self, stop_event: asyncio.Event) -> None:
        """Poll every `poll_interval` while the session is open, until `stop_event` is set; never raises."""
        log.info("monitor_started", threshold=self.threshold, window_s=self.window.total_seconds(),
                 cooldown_s=self.cooldown.total_seconds(), poll_interval_s=self.poll_interval)
        while not stop_event.is_set():
            now = self._clock.now()
            try:
                if self._calendar.is_open(now):
                    await self.poll_once(now)
                    delay = self.poll_interval - (self._clock.now() - now).total_seconds()
                else:
                    delay = min(self._until_open(now), self.poll_interval)
            except Exception as exc:  # the monitor must keep running
                log.exception("monitor_poll_failed", error=f"{type(exc).__name__}: {exc}")
                delay = self.poll_interval
            if not stop_event.is_set():
                await self._sleep(max(delay, 0.0))
        log.info("monitor_stopped")
