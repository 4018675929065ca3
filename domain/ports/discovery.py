"""Repositories of discovery: the watchlist and its change log, discovery runs with their
suggestions (and later their forward returns), and every asset discovery has seen.

Every method works inside the caller's unit of work and never commits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

HORIZONS: tuple[int, ...] = (1, 5, 20)
"""Trading days after a suggestion at which its forward return is measured."""

ENSEMBLE = "ensemble"
"""Picker name under which the ensemble's ranking is stored."""

SUGGESTION_PICKERS: tuple[str, ...] = ("metric", "fuzzy", "llm", ENSEMBLE)

WatchlistSource = Literal["manual", "discovered"]
WatchlistChangeKind = Literal["add", "remove"]
WATCHLIST_SOURCES: tuple[str, ...] = ("manual", "discovered")
WATCHLIST_CHANGES: tuple[str, ...] = ("add", "remove")


@dataclass(frozen=True, slots=True)
class WatchlistEntry:
    """A symbol the trading cycle watches.

    Attributes:
        symbol: ticker.
        source: "manual" (added by a person; only a person removes it) or "discovered".
        reason: why it is on the list.
        added_at: when it was added.
        score: the ensemble score that put it there (None for manual symbols).
    """

    symbol: str
    source: WatchlistSource
    reason: str
    added_at: datetime
    score: float | None = None


@dataclass(frozen=True, slots=True)
class WatchlistChange:
    """One addition to or removal from the watchlist.

    Attributes:
        scope: "live" or "backtest:<run id>".
        symbol: ticker.
        change: "add" or "remove".
        source: who made the change: "manual" (a person) or "discovered" (a discovery run).
        reason: why, in words.
        at: when.
        id: database id, once stored.
    """

    scope: str
    symbol: str
    change: WatchlistChangeKind
    source: WatchlistSource
    reason: str
    at: datetime
    id: int | None = None


class WatchlistRepository(Protocol):
    """The watchlist of each scope and the history of its changes."""

    async def get(self, scope: str, symbol: str) -> WatchlistEntry | None:
        """The entry for `symbol`, or None."""
        ...

    async def upsert(self, scope: str, entry: WatchlistEntry) -> None:
        """Insert or replace the entry of `entry.symbol`.

        Raises:
            ValueError: unknown source, empty symbol or reason, or a score outside 0..1.
        """
        ...

    async def remove(self, scope: str, symbol: str) -> bool:
        """Delete the entry; returns whether there was one."""
        ...

    async def add_change(self, change: WatchlistChange) -> WatchlistChange:
        """Append to the change log; returns the change with its id."""
        ...

    async def changes(self, scope: str, *, since: datetime | None = None, limit: int = 100) -> list[WatchlistChange]:
        """Changes of `scope` at or after `since`, newest first."""
        ...

    async def list(self, scope: str) -> list[WatchlistEntry]:
        """Entries of `scope`, by symbol."""
        ...


@dataclass(frozen=True, slots=True)
class DiscoveryRun:
    """One run of the pickers over the universe.

    Attributes:
        id: deterministic id (scope and time), so a retried run is recognised.
        scope: "live" or "backtest:<run id>".
        as_of: the time of the run.
        pickers: the pickers that ran.
        universe_size: symbols scored.
        stats: JSON-safe figures of the run (the scored universe, counts, LLM outcome, ...).
    """

    id: str
    scope: str
    as_of: datetime
    pickers: tuple[str, ...]
    universe_size: int
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A symbol a picker (or the ensemble) ranked near the top in one run.

    Attributes:
        run_id: the discovery run.
        scope: as the run.
        picker: "metric", "fuzzy", "llm" or "ensemble".
        symbol: ticker.
        score: 0..1.
        rank: 1 = best within the picker's suggestions of the run.
        as_of: the time of the run.
        reasons: the picker's explanation.
        details: JSON-safe extras (ensemble: agreeing pickers, divergence, component scores).
        entry_price: close of the last session known at `as_of` (forward returns start from it).
        forward_returns: horizon in trading days -> close-to-close return, once known.
        universe_returns: horizon -> equal-weighted return of the run's universe over the same window.
        id: database id, once stored.
    """

    run_id: str
    scope: str
    picker: str
    symbol: str
    score: float
    rank: int
    as_of: datetime
    reasons: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    entry_price: Decimal | None = None
    forward_returns: dict[int, float] = field(default_factory=dict)
    universe_returns: dict[int, float] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class ForwardReturn:
    """The forward return of one suggestion at one horizon, and the universe's over the same window."""

    suggestion_id: int
    horizon: int
    value: float
    universe: float | None = None


class SuggestionRepository(Protocol):
    """Discovery runs and their suggestions."""

    async def add_run(self, run: DiscoveryRun) -> None:
        """Store a run.

        Raises:
            ValueError: a run with this id exists, or the stats are not JSON.
        """
        ...

    async def get_run(self, run_id: str) -> DiscoveryRun | None:
        """The run with this id."""
        ...

    async def runs(self, scope: str, *, limit: int = 20) -> list[DiscoveryRun]:
        """Runs of `scope`, newest first."""
        ...

    async def add(self, suggestions: Sequence[Suggestion]) -> list[Suggestion]:
        """Store suggestions; returns them with their ids.

        Raises:
            ValueError: unknown picker, score outside 0..1, rank below 1, or unknown horizon.
        """
        ...

    async def pending_forward_returns(
        self, scope: str, horizon: int, *, since: datetime | None = None, until: datetime | None = None,
        limit: int = 100_000,
    ) -> list[Suggestion]:
        """Suggestions whose forward return at `horizon` is still unknown (since <= as_of < until), oldest first."""
        ...

    async def set_forward_returns(self, updates: Sequence[ForwardReturn]) -> None:
        """Record forward returns (and the universe's) of stored suggestions.

        Raises:
            KeyError: no suggestion with one of the ids.
            ValueError: unknown horizon or a value that is not finite.
        """
        ...

    async def list(
        self, scope: str, *, since: datetime | None = None, until: datetime | None = None,
        picker: str | None = None, run_id: str | None = None, limit: int = 1000,
    ) -> list[Suggestion]:
        """Suggestions of `scope` with since <= as_of < until, newest run first, then by picker and rank."""
        ...


@dataclass(frozen=True, slots=True)
class DiscoveredAsset:
    """An asset discovery has seen in the broker's asset list.

    Attributes:
        symbol: ticker.
        name: company name.
        exchange: listing exchange.
        asset_class: "us_equity".
        tradable, shortable, fractionable: as the broker reports them.
        status: "active" or "inactive".
        sector: GICS-style sector, when known.
        market_cap: USD, when known.
        first_seen: first run that saw it (set by the repository).
        last_seen: latest run that saw it (set by the repository).
    """

    symbol: str
    tradable: bool
    name: str = ""
    exchange: str | None = None
    asset_class: str = "us_equity"
    shortable: bool = False
    fractionable: bool = False
    status: str = "active"
    sector: str | None = None
    market_cap: float | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None


class DiscoveredSymbolRepository(Protocol):
    """Every asset discovery has seen (shared by all scopes: it describes the market, not a run)."""

    async def upsert(self, assets: Sequence[DiscoveredAsset], *, at: datetime) -> None:
        """Insert new assets (first and last seen `at`) and refresh known ones.

        A known asset keeps its earliest first_seen and latest last_seen; its flags are replaced,
        and its sector and market cap are replaced only by known values.
        """
        ...

    async def get(self, symbol: str) -> DiscoveredAsset | None:
        """The asset with this symbol."""
        ...

    async def list(self, *, tradable_only: bool = False, seen_since: datetime | None = None,
                   limit: int = 100_000) -> list[DiscoveredAsset]:
        """Assets by symbol, optionally only tradable ones or ones seen at or after `seen_since`."""
        ...


def _check_score(score: float | None, what: str) -> None:
    if score is not None and not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise ValueError(f"{what} must be within 0..1, got {score}")


def check_horizon(horizon: int) -> None:
    """Raise ValueError unless `horizon` is one of `HORIZONS`."""
    if horizon not in HORIZONS:
        raise ValueError(f"unknown horizon {horizon}; known: {', '.join(map(str, HORIZONS))}")


def check_entry(entry: WatchlistEntry) -> None:
    """Raise ValueError for an unknown source, an empty symbol or reason, or a score outside 0..1."""
    if entry.source not in WATCHLIST_SOURCES:
        raise ValueError(f"unknown watchlist source {entry.source!r}; known: manual, discovered")
    if not entry.symbol.strip() or not entry.reason.strip():
        raise ValueError("a watchlist entry needs a symbol and a reason")
    _check_score(entry.score, "watchlist score")


def check_change(change: WatchlistChange) -> None:
    """Raise ValueError for an unknown change kind or source."""
    if change.change not in WATCHLIST_CHANGES or change.source not in WATCHLIST_SOURCES:
        raise ValueError(f"unknown change {change.change!r} or source {change.source!r}")


def check_suggestion(s: Suggestion) -> None:
    """Raise ValueError for an unknown picker, a score outside 0..1, a rank below 1 or an unknown horizon."""
    if s.picker not in SUGGESTION_PICKERS:
        raise ValueError(f"unknown picker {s.picker!r}; known: {', '.join(SUGGESTION_PICKERS)}")
    _check_score(s.score, "suggestion score")
    if s.rank < 1:
        raise ValueError(f"rank must be at least 1, got {s.rank}")
    for h in (*s.forward_returns, *s.universe_returns):
        check_horizon(h)


def check_forward_return(u: ForwardReturn) -> None:
    """Raise ValueError for an unknown horizon or a value that is not finite."""
    check_horizon(u.horizon)
    for value in (u.value, u.universe):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"forward return must be finite, got {value}")


def check_asset(a: DiscoveredAsset) -> None:
    """Raise ValueError for an empty symbol or a market cap that is not finite."""
    if not a.symbol.strip():
        raise ValueError("an asset needs a symbol")
    if a.market_cap is not None and not math.isfinite(a.market_cap):
        raise ValueError(f"{a.symbol}: market_cap must be finite, got {a.market_cap}")
