"""Watchlist, discovery runs and suggestions, and discovered assets in memory, with the semantics of
the PostgreSQL repositories (adapters/postgres/repo_discovery.py). Every mutation records its undo."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from adapters.inmemory.journal import MISSING, Journal, restore
from domain.ports.discovery import (
    DiscoveredAsset,
    DiscoveredSymbolRepository,
    DiscoveryRun,
    ForwardReturn,
    Suggestion,
    SuggestionRepository,
    WatchlistChange,
    WatchlistEntry,
    WatchlistRepository,
    check_asset,
    check_change,
    check_entry,
    check_forward_return,
    check_horizon,
    check_suggestion,
)
from domain.storage import PRICE_SCALE, check_limit, decimal_or_none, in_range, json_document, utc, utc_or_none


class InMemoryWatchlistRepository(WatchlistRepository):
    """Implements `WatchlistRepository` in memory."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._entries: dict[tuple[str, str], WatchlistEntry] = {}
        self._changes: list[WatchlistChange] = []
        self._ids = itertools.count(1)

    async def get(self, scope: str, symbol: str) -> WatchlistEntry | None:
        """The entry for `symbol`, or None."""
        return self._entries.get((scope, symbol))

    async def upsert(self, scope: str, entry: WatchlistEntry) -> None:
        """Insert or replace the entry of `entry.symbol`."""
        check_entry(entry)
        stored = replace(entry, added_at=utc(entry.added_at, what="added_at"),
                         score=None if entry.score is None else float(entry.score))
        key = (scope, entry.symbol)
        old = self._entries.get(key, MISSING)
        self._entries[key] = stored
        self._journal.record(lambda: restore(self._entries, key, old))

    async def remove(self, scope: str, symbol: str) -> bool:
        """Delete the entry; returns whether there was one."""
        key = (scope, symbol)
        old = self._entries.pop(key, MISSING)
        if old is MISSING:
            return False
        self._journal.record(lambda: restore(self._entries, key, old))
        return True

    async def add_change(self, change: WatchlistChange) -> WatchlistChange:
        """Append to the change log; returns the change with its id."""
        check_change(change)
        stored = replace(change, at=utc(change.at, what="change time"), id=next(self._ids))
        self._changes.append(stored)
        n = len(self._changes) - 1
        self._journal.record(lambda: self._changes.__delitem__(slice(n, None)))
        return stored

    async def changes(self, scope: str, *, since: datetime | None = None, limit: int = 100) -> list[WatchlistChange]:
        """Changes of `scope` at or after `since`, newest first."""
        check_limit(limit)
        since = utc_or_none(since, what="since")
        mine = [c for c in self._changes if c.scope == scope and in_range(c.at, since, None)]
        mine.sort(key=lambda c: (c.at, c.id or 0), reverse=True)
        return mine[:limit]

    async def list(self, scope: str) -> list[WatchlistEntry]:
        """Entries of `scope`, by symbol."""
        return sorted((e for (s, _), e in self._entries.items() if s == scope), key=lambda e: e.symbol)


class InMemorySuggestionRepository(SuggestionRepository):
    """Implements `SuggestionRepository` in memory."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._runs: dict[str, DiscoveryRun] = {}
        self._rows: dict[int, Suggestion] = {}  # stored with empty details: those are kept as JSON text
        self._details: dict[int, str] = {}
        self._ids = itertools.count(1)

    async def add_run(self, run: DiscoveryRun) -> None:
        """Store a run (ValueError when its id exists)."""
        if run.id in self._runs:
            raise ValueError(f"discovery run {run.id!r} already exists")
        if run.universe_size < 0:
            raise ValueError(f"universe_size must not be negative, got {run.universe_size}")
        stored = replace(run, as_of=utc(run.as_of, what="run as_of"), pickers=tuple(run.pickers),
                         stats=json_document(run.stats, what="run stats"))
        self._runs[run.id] = stored
        self._journal.record(lambda: restore(self._runs, run.id, MISSING))

    async def get_run(self, run_id: str) -> DiscoveryRun | None:
        """The run with this id."""
        run = self._runs.get(run_id)
        return None if run is None else replace(run, stats=copy.deepcopy(run.stats))

    async def runs(self, scope: str, *, limit: int = 20) -> list[DiscoveryRun]:
        """Runs of `scope`, newest first."""
        check_limit(limit)
        mine = sorted((r for r in self._runs.values() if r.scope == scope), key=lambda r: (r.as_of, r.id),
                      reverse=True)
        return [replace(r, stats=copy.deepcopy(r.stats)) for r in mine[:limit]]

    async def add(self, suggestions: Sequence[Suggestion]) -> list[Suggestion]:
        """Store suggestions; returns them with their ids."""
        prepared = [self._prepare(s) for s in suggestions]
        out = []
        for s in prepared:
            sid = next(self._ids)
            self._rows[sid] = replace(s, id=sid, details={})
            self._details[sid] = json.dumps(s.details)
            self._journal.record(lambda sid=sid: restore(self._rows, sid, MISSING))  # type: ignore[misc]
            out.append(self._copy(self._rows[sid]))
        return out

    @staticmethod
    def _prepare(s: Suggestion) -> Suggestion:
        check_suggestion(s)
        doc = json_document({"reasons": list(s.reasons), "details": s.details}, what="suggestion reasons")
        return replace(s, as_of=utc(s.as_of, what="suggestion as_of"), score=float(s.score),
                       reasons=tuple(doc["reasons"]), details=doc["details"],
                       entry_price=decimal_or_none(s.entry_price, PRICE_SCALE, what="entry price"),
                       forward_returns=dict(s.forward_returns), universe_returns=dict(s.universe_returns), id=None)

    def _copy(self, s: Suggestion) -> Suggestion:
        return replace(s, details=json.loads(self._details[s.id or 0]), forward_returns=dict(s.forward_returns),
                       universe_returns=dict(s.universe_returns))

    async def pending_forward_returns(
        self, scope: str, horizon: int, *, since: datetime | None = None, until: datetime | None = None,
        limit: int = 100_000,
    ) -> list[Suggestion]:
        """Suggestions whose forward return at `horizon` is still unknown (since <= as_of < until), oldest first."""
        check_horizon(horizon)
        check_limit(limit)
        since, until = utc_or_none(since, what="since"), utc_or_none(until, what="until")
        rows = [s for s in self._rows.values() if s.scope == scope and horizon not in s.forward_returns
                and in_range(s.as_of, since, until)]
        rows.sort(key=lambda s: (s.as_of, s.id or 0))
        return [self._copy(s) for s in rows[:limit]]

    async def set_forward_returns(self, updates: Sequence[ForwardReturn]) -> None:
        """Record forward returns (and the universe's) of stored suggestions."""
        for u in updates:
            check_forward_return(u)
            if u.suggestion_id not in self._rows:
                raise KeyError(f"no suggestion with id {u.suggestion_id}")
        for u in updates:
            old = self._rows[u.suggestion_id]
            universe = dict(old.universe_returns)
            if u.universe is None:
                universe.pop(u.horizon, None)
            else:
                universe[u.horizon] = float(u.universe)
            self._rows[u.suggestion_id] = replace(
                old, forward_returns={**old.forward_returns, u.horizon: float(u.value)}, universe_returns=universe)
            self._journal.record(lambda sid=u.suggestion_id, old=old: self._rows.__setitem__(sid, old))  # type: ignore[misc]

    async def list(
        self, scope: str, *, since: datetime | None = None, until: datetime | None = None,
        picker: str | None = None, run_id: str | None = None, limit: int = 1000,
    ) -> list[Suggestion]:
        """Suggestions of `scope` with since <= as_of < until, newest run first, then by picker and rank."""
        check_limit(limit)
        since, until = utc_or_none(since, what="since"), utc_or_none(until, what="until")
        rows = [s for s in self._rows.values() if s.scope == scope and in_range(s.as_of, since, until)
                and (picker is None or s.picker == picker) and (run_id is None or s.run_id == run_id)]
        rows.sort(key=lambda s: (-s.as_of.timestamp(), s.run_id, s.picker, s.rank, s.id or 0))
        return [self._copy(s) for s in rows[:limit]]


class InMemoryDiscoveredSymbolRepository(DiscoveredSymbolRepository):
    """Implements `DiscoveredSymbolRepository` in memory."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._assets: dict[str, DiscoveredAsset] = {}

    async def upsert(self, assets: Sequence[DiscoveredAsset], *, at: datetime) -> None:
        """Insert new assets (first and last seen `at`) and refresh known ones."""
        at = utc(at, what="at")
        for a in assets:
            check_asset(a)
        for a in {a.symbol: a for a in assets}.values():
            old = self._assets.get(a.symbol, MISSING)
            if old is MISSING:
                new = replace(a, first_seen=at, last_seen=at)
            else:
                new = replace(a, first_seen=min(old.first_seen, at), last_seen=max(old.last_seen, at),
                              sector=a.sector if a.sector is not None else old.sector,
                              market_cap=a.market_cap if a.market_cap is not None else old.market_cap)
            self._assets[a.symbol] = new
            self._journal.record(lambda sym=a.symbol, old=old: restore(self._assets, sym, old))  # type: ignore[misc]

    async def get(self, symbol: str) -> DiscoveredAsset | None:
        """The asset with this symbol."""
        return self._assets.get(symbol)

    async def list(self, *, tradable_only: bool = False, seen_since: datetime | None = None,
                   limit: int = 100_000) -> list[DiscoveredAsset]:
        """Assets by symbol, optionally only tradable ones or ones seen at or after `seen_since`."""
        check_limit(limit)
        since = utc_or_none(seen_since, what="seen_since")
        rows = [a for _, a in sorted(self._assets.items()) if (not tradable_only or a.tradable)
                and (since is None or (a.last_seen is not None and a.last_seen >= since))]
        return rows[:limit]
