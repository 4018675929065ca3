"""Forward returns of suggestions, filled in as the data becomes known.

A suggestion made at time t starts from the close of d0, the last session closed at or before t (its
`entry_price`). Its forward return at horizon h is close(d_h) / close(d0) - 1, where d_h is the h-th
session after d0; it is filled only once d_h has closed at the update's `as_of`, from bars known then.
The universe return over the same window is the equal-weighted mean of the same close-to-close
return over the run's universe (every symbol it scored that had a close on d0 and has one on d_h).
Suggestions still without data `max_age` after they were made are left unfilled.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import structlog

from domain.models.market import BarSeries
from domain.ports.clock import MarketCalendar
from domain.ports.discovery import HORIZONS, DiscoveryRun, ForwardReturn, Suggestion
from domain.ports.market_data import MarketData
from domain.ports.uow import UnitOfWorkFactory

log = structlog.get_logger(__name__)

_Pending = dict[int, list[Suggestion]]
_Runs = dict[str, DiscoveryRun]
_Due = dict[int, list[tuple[Suggestion, date, date]]]


@dataclass(frozen=True)
class ForwardReturnReport:
    """What an update did: horizon -> suggestions filled, and how many were due but had no bars yet."""

    filled: dict[int, int]
    missing: int


def close_to_close(bars: BarSeries | None, start: date, end: date) -> float | None:
    """close(end) / close(start) - 1, or None when either bar is missing or not a positive price."""
    if bars is None:
        return None
    i, j = bars.index_of(start), bars.index_of(end)
    if i is None or j is None:
        return None
    a, b = float(bars.close[i]), float(bars.close[j])
    return b / a - 1.0 if a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b) else None


def equal_weight_return(bars: dict[str, BarSeries], symbols: Sequence[str], start: date, end: date) -> float | None:
    """Mean close-to-close return of `symbols` from `start` to `end` (symbols without both closes skipped)."""
    values = [r for s in symbols if (r := close_to_close(bars.get(s), start, end)) is not None]
    return float(np.mean(values)) if values else None


class ForwardReturnUpdater:
    """Fills forward returns of one scope's suggestions."""

    def __init__(self, uow_factory: UnitOfWorkFactory, market: MarketData, calendar: MarketCalendar, *,
                 scope: str, horizons: Sequence[int] = HORIZONS, max_age: timedelta = timedelta(days=90)) -> None:
        """Create the updater.

        Args:
            uow_factory: units of work.
            market: daily bars (read as of the update).
            calendar: the exchange calendar.
            scope: whose suggestions.
            horizons: trading days after the suggestion.
            max_age: suggestions older than this are no longer tried.
        """
        self._uow_factory, self._market, self._calendar = uow_factory, market, calendar
        self._scope, self._horizons, self._max_age = scope, tuple(horizons), max_age
        self._targets: dict[tuple[date, int], date] = {}

    def _target(self, start: date, horizon: int) -> date:
        key = (start, horizon)
        if key not in self._targets:
            day = start
            for _ in range(horizon):
                day = self._calendar.next_session(day)
            self._targets[key] = day
        return self._targets[key]

    async def update(self, as_of: datetime) -> ForwardReturnReport:
        """Fill every forward return whose horizon has closed by `as_of`, in one transaction."""
        last_closed = self._calendar.previous_session(as_of)
        pending, runs = await self._pending(as_of, last_closed)
        due = self._due(pending, runs, last_closed, as_of)
        if not due:
            return ForwardReturnReport({h: 0 for h in self._horizons}, 0)
        bars = await self._bars_for(due, runs, last_closed, as_of)
        updates, filled = self._forward_returns(due, runs, bars)
        if updates:
            async with self._uow_factory() as uow:
                await uow.suggestions.set_forward_returns(updates)
                await uow.commit()
        missing = sum(len(items) for items in due.values()) - len(updates)
        log.info("forward_returns_updated", as_of=as_of.isoformat(), filled=filled, missing_bars=missing)
        return ForwardReturnReport(filled, missing)

    async def _pending(self, as_of: datetime, last_closed: date) -> tuple[_Pending, _Runs]:
        """Suggestions still without a forward return, by horizon, and the runs that made them."""
        async with self._uow_factory() as uow:
            pending = {h: await uow.suggestions.pending_forward_returns(
                self._scope, h, since=as_of - self._max_age, until=self._due_before(last_closed, h, as_of))
                for h in self._horizons}
            run_ids = {s.run_id for rows in pending.values() for s in rows}
            runs = {r: run for r in sorted(run_ids) if (run := await uow.suggestions.get_run(r)) is not None}
        return pending, runs

    def _due(self, pending: _Pending, runs: _Runs, last_closed: date, as_of: datetime) -> _Due:
        """Pending suggestions whose horizon has closed by `as_of`, with their start and end sessions."""
        due: _Due = defaultdict(list)
        for h, rows in pending.items():
            for s in rows:
                start = self._start(s, runs.get(s.run_id))
                end = self._target(start, h)
                if end <= last_closed and self._calendar.session_close(end) <= as_of:
                    due[h].append((s, start, end))
        return due

    async def _bars_for(self, due: _Due, runs: _Runs, last_closed: date, as_of: datetime) -> dict[str, BarSeries]:
        """Daily bars known at `as_of` of the due suggestions' symbols and their runs' universes."""
        first = min(start for items in due.values() for _, start, _ in items)
        lookback = len(self._calendar.sessions(first, last_closed)) + 1
        symbols = {s.symbol for items in due.values() for s, _, _ in items}
        for s, _, _ in (item for items in due.values() for item in items):
            symbols.update(self._universe(runs.get(s.run_id)))
        return await self._market.daily_bars(sorted(symbols), as_of=as_of, lookback=lookback)

    def _forward_returns(
        self, due: _Due, runs: _Runs, bars: dict[str, BarSeries]
    ) -> tuple[list[ForwardReturn], dict[int, int]]:
        """The forward returns the bars allow, and how many were filled per horizon."""
        updates: list[ForwardReturn] = []
        universe_cache: dict[tuple[str, date, date], float | None] = {}
        filled = {h: 0 for h in self._horizons}
        for h, items in due.items():
            for s, start, end in items:
                value = close_to_close(bars.get(s.symbol), start, end)
                if value is None or s.id is None:
                    continue
                key = (s.run_id, start, end)
                if key not in universe_cache:
                    universe_cache[key] = equal_weight_return(bars, self._universe(runs.get(s.run_id)), start, end)
                updates.append(ForwardReturn(s.id, h, value, universe_cache[key]))
                filled[h] += 1
        return updates, filled

    def _due_before(self, last_closed: date, horizon: int, as_of: datetime) -> datetime:
        """Suggestions made before this time may have their `horizon` closed by `last_closed` (later ones cannot)."""
        recent = self._calendar.sessions(last_closed - timedelta(days=2 * horizon + 10), last_closed)
        if len(recent) <= horizon:
            return as_of
        start = recent[-1 - horizon]  # the latest start session whose horizon has closed
        return min(as_of, self._calendar.session_close(self._calendar.next_session(start)))

    def _start(self, s: Suggestion, run: DiscoveryRun | None) -> date:
        day = None if run is None else run.stats.get("snapshot_day")
        return date.fromisoformat(day) if isinstance(day, str) else self._calendar.previous_session(s.as_of)

    @staticmethod
    def _universe(run: DiscoveryRun | None) -> list[str]:
        symbols = [] if run is None else run.stats.get("universe", [])
        return [s for s in symbols if isinstance(s, str)]
