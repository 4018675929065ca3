"""`quorum data fetch`: past daily bars from a source (Alpaca) into a store (CSV files `--data` reads).

Resumable, one symbol after another:
- a symbol whose stored span already covers the sessions asked for is skipped without a request;
- a symbol with stored bars but no complete span (an interrupted run) continues from its last stored session,
  and a span asked for before or after a complete one fetches only the missing head or tail;
- every page is written as soon as it arrives (the store replaces a series whole, atomically), so an
  interruption loses at most the page in flight;
- adjusted prices change whenever a split or dividend happens, so a continuation first compares the session it
  shares with the stored series (the first or last stored one); if the source's prices for it differ the stored
  series is stale and the symbol is fetched again from scratch (never a series adjusted as of two dates).

Only sessions that have closed by `as_of` are asked for. A symbol the source refuses, knows nothing of, or has no
bars for is reported and the others go on; a failure that would hit every symbol (keys refused, rate limit or
outage outlasting the retries, data plan) stops the run, and what was written so far is kept for the next run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from domain.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerUnavailableError,
    DataError,
    ForbiddenError,
    RateLimitedError,
)
from domain.ports.clock import MarketCalendar
from domain.ports.daily_history import DailyHistorySource, DailyHistoryStore, DailyRecord

SYMBOL_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,14}$")
"""What a US equity symbol may look like (e.g. AAPL, BRK.B)."""
PRICE_TOLERANCE = 1e-6
"""Relative difference above which the source's price of a stored session counts as changed."""
FATAL = (BrokerAuthError, ForbiddenError, RateLimitedError, BrokerUnavailableError)
"""Source failures that would hit every symbol: they stop the run."""

Status = Literal["fetched", "complete", "unknown", "empty", "invalid", "failed"]


@dataclass(frozen=True)
class SymbolOutcome:
    """What a run did for one symbol.

    Attributes:
        symbol: the symbol.
        status: fetched (bars written), complete (already stored, skipped), unknown (the source does not know the
            symbol), empty (no bars in the span), invalid (not a symbol), failed (the source refused; `detail`).
        fetched: sessions received from the source in this run.
        stored: sessions stored after the run.
        first: first stored session.
        last: last stored session.
        detail: how it went, in a few words (resumed from, fetched again, the error).
    """

    symbol: str
    status: Status
    fetched: int = 0
    stored: int = 0
    first: date | None = None
    last: date | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether the symbol's bars for the span are stored."""
        return self.status in ("fetched", "complete")


@dataclass(frozen=True)
class FetchStep:
    """Progress of a run: after each page written (`outcome` None) and after each symbol (`outcome` set)."""

    symbol: str
    index: int
    total: int
    stored: int
    outcome: SymbolOutcome | None = None


FetchProgress = Callable[[FetchStep], None]


@dataclass
class FetchReport:
    """A run: the sessions asked for and one outcome per symbol, in the order given."""

    first: date
    last: date
    outcomes: list[SymbolOutcome] = field(default_factory=list)

    @property
    def problems(self) -> list[SymbolOutcome]:
        """The symbols whose bars are not stored."""
        return [o for o in self.outcomes if not o.ok]


def normalise_symbols(raw: Sequence[str]) -> list[str]:
    """Upper-cased, stripped, duplicates and blanks dropped, order kept."""
    return list(dict.fromkeys(s.strip().upper() for s in raw if s and s.strip()))


def closed_sessions(calendar: MarketCalendar, start: date, end: date, as_of: datetime) -> tuple[date, date]:
    """The first and last sessions from `start` to `end` that have closed at `as_of`.

    Raises:
        DataError: no session in that span has closed yet.
    """
    last_closed = calendar.previous_session(as_of)
    days = calendar.sessions(start, min(end, last_closed))
    if not days:
        raise DataError(f"no trading session from {start} to {end} has closed yet (last closed: {last_closed})")
    return days[0], days[-1]


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=PRICE_TOLERANCE)


def _agrees(page: Sequence[DailyRecord], stored: DailyRecord) -> bool:
    """Whether `page` has the stored session at the same prices (same adjustments)."""
    match = next((r for r in page if r.day == stored.day), None)
    return match is not None and _same(match.close, stored.close) and _same(match.adj_close, stored.adj_close)


class _Stale(Exception):
    """The source's adjusted prices differ from the stored series: it must be fetched again over `span`."""

    def __init__(self, span: tuple[date, date]) -> None:
        super().__init__(span)
        self.span = span


class DailyHistoryFetch:
    """Fetch daily bars of many symbols into a store, resumably.

    Args:
        source: where bars come from.
        store: where they go.
        calendar: the exchange calendar (which sessions have closed).
    """

    def __init__(self, source: DailyHistorySource, store: DailyHistoryStore, calendar: MarketCalendar) -> None:
        self._source = source
        self._store = store
        self._calendar = calendar

    async def run(self, symbols: Sequence[str], start: date, end: date, *, as_of: datetime,
                  progress: FetchProgress | None = None) -> FetchReport:
        """Fetch every symbol's sessions from `start` to `end` that have closed at `as_of`.

        Raises:
            DataError: no session of the span has closed.
            BrokerError: a failure that would hit every symbol (see `FATAL`); bars written so far stay stored.
            ConfigurationError: the source cannot serve this data to this account.
        """
        first, last = closed_sessions(self._calendar, start, end, as_of)
        report = FetchReport(first, last)
        wanted = normalise_symbols(symbols)
        for i, symbol in enumerate(wanted):
            def step(stored: int, symbol: str = symbol, i: int = i) -> None:
                if progress is not None:
                    progress(FetchStep(symbol, i, len(wanted), stored))

            outcome = await self._one(symbol, first, last, step)
            report.outcomes.append(outcome)
            if progress is not None:
                progress(FetchStep(symbol, i + 1, len(wanted), outcome.stored, outcome))
        return report

    async def _one(self, symbol: str, first: date, last: date, step: Callable[[int], None]) -> SymbolOutcome:
        if not SYMBOL_PATTERN.match(symbol):
            return SymbolOutcome(symbol, "invalid", detail="not a US equity symbol")
        try:
            try:
                return await self._extend(symbol, first, last, step)
            except _Stale as stale:
                return await self._fresh(symbol, *stale.span, step, detail="adjustments changed: fetched again")
        except FATAL:
            raise
        except (BrokerError, DataError) as exc:
            return SymbolOutcome(symbol, "failed", detail=str(exc))

    async def _extend(self, symbol: str, first: date, last: date, step: Callable[[int], None]) -> SymbolOutcome:
        stored = self._store.read(symbol)
        covered = self._store.covered(symbol)
        if stored and covered is not None and covered[0] <= first and covered[1] >= last:
            return self._outcome(symbol, "complete", stored, 0, "already stored")
        if not stored:  # never fetched, or the file was deleted
            return await self._fresh(symbol, first, last, step)
        known_first = min(covered[0], stored[0].day) if covered else stored[0].day
        known_last = max(covered[1], stored[-1].day) if covered else stored[-1].day
        span = (min(first, known_first), max(last, known_last))
        merged = {r.day: r for r in stored}
        fetched, notes = 0, []
        if first < known_first:
            head = [r async for page in self._source.pages(symbol, first, stored[0].day) for r in page]
            if not _agrees(head, stored[0]):
                raise _Stale(span)
            merged.update((r.day, r) for r in head)
            fetched += len(head) - 1
            self._store.write(symbol, sorted(merged.values(), key=lambda r: r.day))
            step(len(merged))
            notes.append(f"added sessions before {stored[0].day}")
        if last > known_last:
            checked = False
            async for page in self._source.pages(symbol, stored[-1].day, last):
                if not checked and not _agrees(page, stored[-1]):
                    raise _Stale(span)
                checked = True
                merged.update((r.day, r) for r in page)
                fetched += len(page)
                self._store.write(symbol, sorted(merged.values(), key=lambda r: r.day))
                step(len(merged))
            fetched -= 1 if checked else 0
            notes.append(f"resumed after {stored[-1].day}")
        self._store.set_covered(symbol, span)
        return self._outcome(symbol, "fetched", sorted(merged.values(), key=lambda r: r.day), fetched,
                             "; ".join(notes))

    async def _fresh(self, symbol: str, first: date, last: date, step: Callable[[int], None],
                     detail: str = "") -> SymbolOutcome:
        self._store.set_covered(symbol, None)
        records: dict[date, DailyRecord] = {}
        async for page in self._source.pages(symbol, first, last):
            records.update((r.day, r) for r in page)
            self._store.write(symbol, sorted(records.values(), key=lambda r: r.day))
            step(len(records))
        if not records:
            listed = await self._source.listed(symbol)
            if listed is False:
                return SymbolOutcome(symbol, "unknown", detail="unknown symbol")
            return SymbolOutcome(symbol, "empty", detail=f"no bars from {first} to {last}"
                                 + (" (unknown symbol, or not trading then)" if listed is None else ""))
        self._store.set_covered(symbol, (first, last))
        rows = sorted(records.values(), key=lambda r: r.day)
        return self._outcome(symbol, "fetched", rows, len(rows), detail)

    @staticmethod
    def _outcome(symbol: str, status: Status, rows: Sequence[DailyRecord], fetched: int,
                 detail: str) -> SymbolOutcome:
        return SymbolOutcome(symbol, status, fetched, len(rows), rows[0].day if rows else None,
                             rows[-1].day if rows else None, detail)
