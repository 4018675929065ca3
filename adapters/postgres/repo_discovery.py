"""Watchlist (tables `watchlist`, `watchlist_changes`), discovery runs and suggestions (`discovery_runs`,
`picker_suggestions`) and discovered assets (`discovered_symbols`) on PostgreSQL (migration 0003).

A suggestion's `reasons` column holds {"reasons": [...], "details": {...}}. Time ranges are half-open.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.tables import (
    discovered_symbols,
    discovery_runs,
    picker_suggestions,
    watchlist,
    watchlist_changes,
)
from domain.ports.discovery import (
    HORIZONS,
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
from domain.storage import PRICE_SCALE, check_limit, decimal_or_none, json_document, utc, utc_or_none

_ASSET_FLAGS = ("name", "exchange", "asset_class", "tradable", "shortable", "fractionable", "status")



def _range(column: Any, since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if (s := utc_or_none(since, what="since")) is not None:
        where.append(column >= s)
    if (u := utc_or_none(until, what="until")) is not None:
        where.append(column < u)
    return where


class PgWatchlistRepository(WatchlistRepository):
    """Implements `WatchlistRepository` on tables `watchlist` and `watchlist_changes`."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, scope: str, symbol: str) -> WatchlistEntry | None:
        """The entry for `symbol`, or None."""
        t = watchlist
        row = (await self._session.execute(select(t).where(t.c.scope == scope, t.c.symbol == symbol))).mappings()
        found = row.first()
        return None if found is None else self._entry(found)

    async def upsert(self, scope: str, entry: WatchlistEntry) -> None:
        """Insert or replace the entry of `entry.symbol`."""
        check_entry(entry)
        row = {"scope": scope, "symbol": entry.symbol, "source": entry.source,
               "score": None if entry.score is None else float(entry.score), "reason": entry.reason,
               "added_at": utc(entry.added_at, what="added_at")}
        ins = pg_insert(watchlist).values(row)
        stmt = ins.on_conflict_do_update(index_elements=[watchlist.c.scope, watchlist.c.symbol],
                                         set_={k: ins.excluded[k] for k in ("source", "score", "reason", "added_at")})
        await self._session.execute(stmt)

    async def remove(self, scope: str, symbol: str) -> bool:
        """Delete the entry; returns whether there was one."""
        t = watchlist
        stmt = delete(t).where(t.c.scope == scope, t.c.symbol == symbol).returning(t.c.symbol)
        return (await self._session.execute(stmt)).first() is not None

    async def add_change(self, change: WatchlistChange) -> WatchlistChange:
        """Append to the change log; returns the change with its id."""
        check_change(change)
        at = utc(change.at, what="change time")
        row = {"scope": change.scope, "symbol": change.symbol, "change": change.change, "source": change.source,
               "reason": change.reason, "at": at}
        new_id = (await self._session.execute(
            insert(watchlist_changes).values(row).returning(watchlist_changes.c.id))).scalar_one()
        return WatchlistChange(change.scope, change.symbol, change.change, change.source, change.reason, at,
                               int(new_id))

    async def changes(self, scope: str, *, since: datetime | None = None, limit: int = 100) -> list[WatchlistChange]:
        """Changes of `scope` at or after `since`, newest first."""
        check_limit(limit)
        t = watchlist_changes
        stmt = (select(t).where(t.c.scope == scope, *_range(t.c.at, since, None))
                .order_by(t.c.at.desc(), t.c.id.desc()).limit(limit))
        return [WatchlistChange(r["scope"], r["symbol"], r["change"], r["source"], r["reason"], r["at"], r["id"])
                for r in (await self._session.execute(stmt)).mappings().all()]

    async def list(self, scope: str) -> list[WatchlistEntry]:
        """Entries of `scope`, by symbol."""
        t = watchlist
        stmt = select(t).where(t.c.scope == scope).order_by(t.c.symbol.collate("C"))
        return [self._entry(r) for r in (await self._session.execute(stmt)).mappings().all()]

    @staticmethod
    def _entry(row: Any) -> WatchlistEntry:
        return WatchlistEntry(row["symbol"], row["source"], row["reason"], row["added_at"], row["score"])


class PgSuggestionRepository(SuggestionRepository):
    """Implements `SuggestionRepository` on tables `discovery_runs` and `picker_suggestions`."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_run(self, run: DiscoveryRun) -> None:
        """Store a run (ValueError when its id exists)."""
        if run.universe_size < 0:
            raise ValueError(f"universe_size must not be negative, got {run.universe_size}")
        row = {"id": run.id, "scope": run.scope, "as_of": utc(run.as_of, what="run as_of"),
               "pickers": list(run.pickers), "universe_size": run.universe_size,
               "stats": json_document(run.stats, what="run stats")}
        stmt = pg_insert(discovery_runs).values(row).on_conflict_do_nothing().returning(discovery_runs.c.id)
        if (await self._session.execute(stmt)).first() is None:
            raise ValueError(f"discovery run {run.id!r} already exists")

    async def get_run(self, run_id: str) -> DiscoveryRun | None:
        """The run with this id."""
        t = discovery_runs
        found = (await self._session.execute(select(t).where(t.c.id == run_id))).mappings().first()
        return None if found is None else self._run(found)

    async def runs(self, scope: str, *, limit: int = 20) -> list[DiscoveryRun]:
        """Runs of `scope`, newest first."""
        check_limit(limit)
        t = discovery_runs
        stmt = select(t).where(t.c.scope == scope).order_by(t.c.as_of.desc(), t.c.id.collate("C").desc()).limit(limit)
        return [self._run(r) for r in (await self._session.execute(stmt)).mappings().all()]

    async def add(self, suggestions: Sequence[Suggestion]) -> list[Suggestion]:
        """Store suggestions; returns them with their ids."""
        rows = [self._row(s) for s in suggestions]
        if not rows:
            return []
        try:
            ids = (await self._session.execute(
                insert(picker_suggestions).returning(picker_suggestions.c.id, sort_by_parameter_order=True), rows,
            )).scalars().all()
        except IntegrityError as exc:
            raise ValueError(f"suggestions refused by the database: {exc.orig}") from exc
        return [self._suggestion({**row, "id": i}) for row, i in zip(rows, ids, strict=True)]

    @staticmethod
    def _row(s: Suggestion) -> dict[str, Any]:
        check_suggestion(s)
        row: dict[str, Any] = {
            "run_id": s.run_id, "scope": s.scope, "picker": s.picker, "symbol": s.symbol, "score": float(s.score),
            "rank": s.rank, "as_of": utc(s.as_of, what="suggestion as_of"),
            "reasons": json_document({"reasons": list(s.reasons), "details": s.details}, what="suggestion reasons"),
            "entry_price": decimal_or_none(s.entry_price, PRICE_SCALE, what="entry price"),
        }
        for h in HORIZONS:
            row[f"fwd_return_{h}d"] = s.forward_returns.get(h)
            row[f"universe_return_{h}d"] = s.universe_returns.get(h)
        return row

    async def pending_forward_returns(
        self, scope: str, horizon: int, *, since: datetime | None = None, until: datetime | None = None,
        limit: int = 100_000,
    ) -> list[Suggestion]:
        """Suggestions whose forward return at `horizon` is still unknown (since <= as_of < until), oldest first."""
        check_horizon(horizon)
        check_limit(limit)
        t = picker_suggestions
        stmt = (select(t).where(t.c.scope == scope, t.c[f"fwd_return_{horizon}d"].is_(None),
                                *_range(t.c.as_of, since, until))
                .order_by(t.c.as_of, t.c.id).limit(limit))
        return [self._suggestion(r) for r in (await self._session.execute(stmt)).mappings().all()]

    async def set_forward_returns(self, updates: Sequence[ForwardReturn]) -> None:
        """Record forward returns (and the universe's) of stored suggestions."""
        for u in updates:
            check_forward_return(u)
        t = picker_suggestions
        wanted = {u.suggestion_id for u in updates}
        if not wanted:
            return
        found = set((await self._session.execute(select(t.c.id).where(t.c.id.in_(wanted)))).scalars().all())
        if missing := sorted(wanted - found):
            raise KeyError(f"no suggestion with id {missing[0]}")
        for h in HORIZONS:
            params = [{"sid": u.suggestion_id, "fwd": float(u.value),
                       "uni": None if u.universe is None else float(u.universe)} for u in updates if u.horizon == h]
            if params:
                stmt = (update(t).where(t.c.id == bindparam("sid"))
                        .values({f"fwd_return_{h}d": bindparam("fwd"), f"universe_return_{h}d": bindparam("uni")}))
                await self._session.execute(stmt, params)

    @staticmethod
    def _run(row: Any) -> DiscoveryRun:
        return DiscoveryRun(row["id"], row["scope"], row["as_of"], tuple(row["pickers"]), row["universe_size"],
                            dict(row["stats"] or {}))

    @staticmethod
    def _suggestion(row: Any) -> Suggestion:
        doc = row["reasons"] or {}
        return Suggestion(
            run_id=row["run_id"], scope=row["scope"], picker=row["picker"], symbol=row["symbol"], score=row["score"],
            rank=row["rank"], as_of=row["as_of"], reasons=tuple(doc.get("reasons", ())),
            details=dict(doc.get("details", {})), entry_price=row["entry_price"],
            forward_returns={h: row[f"fwd_return_{h}d"] for h in HORIZONS if row[f"fwd_return_{h}d"] is not None},
            universe_returns={h: row[f"universe_return_{h}d"] for h in HORIZONS
                              if row[f"universe_return_{h}d"] is not None},
            id=row["id"],
        )

    async def list(
        self, scope: str, *, since: datetime | None = None, until: datetime | None = None,
        picker: str | None = None, run_id: str | None = None, limit: int = 1000,
    ) -> list[Suggestion]:
        """Suggestions of `scope` with since <= as_of < until, newest run first, then by picker and rank."""
        check_limit(limit)
        t = picker_suggestions
        where = [t.c.scope == scope, *_range(t.c.as_of, since, until)]
        if picker is not None:
            where.append(t.c.picker == picker)
        if run_id is not None:
            where.append(t.c.run_id == run_id)
        stmt = (select(t).where(*where).order_by(t.c.as_of.desc(), t.c.run_id.collate("C"), t.c.picker.collate("C"),
                                                 t.c.rank, t.c.id).limit(limit))
        return [self._suggestion(r) for r in (await self._session.execute(stmt)).mappings().all()]


class PgDiscoveredSymbolRepository(DiscoveredSymbolRepository):
    """Implements `DiscoveredSymbolRepository` on table `discovered_symbols` (a symbol listed twice: the last wins)."""

    def __init__(self, session: AsyncSession, batch_size: int = 1000) -> None:
        self._session = session
        self._batch = batch_size

    async def upsert(self, assets: Sequence[DiscoveredAsset], *, at: datetime) -> None:
        """Insert new assets (first and last seen `at`) and refresh known ones."""
        at = utc(at, what="at")
        by_symbol: dict[str, dict[str, Any]] = {}
        for a in assets:
            check_asset(a)
            by_symbol[a.symbol] = {
                "symbol": a.symbol, "name": a.name, "exchange": a.exchange, "asset_class": a.asset_class,
                "tradable": a.tradable, "shortable": a.shortable, "fractionable": a.fractionable, "status": a.status,
                "sector": a.sector, "market_cap": None if a.market_cap is None else float(a.market_cap),
                "first_seen": at, "last_seen": at,
            }
        rows = list(by_symbol.values())
        t = discovered_symbols
        for i in range(0, len(rows), self._batch):
            ins = pg_insert(t).values(rows[i:i + self._batch])
            stmt = ins.on_conflict_do_update(index_elements=[t.c.symbol], set_={
                **{k: ins.excluded[k] for k in _ASSET_FLAGS},
                "sector": func.coalesce(ins.excluded.sector, t.c.sector),
                "market_cap": func.coalesce(ins.excluded.market_cap, t.c.market_cap),
                "first_seen": func.least(t.c.first_seen, ins.excluded.first_seen),
                "last_seen": func.greatest(t.c.last_seen, ins.excluded.last_seen),
            })
            await self._session.execute(stmt)

    async def get(self, symbol: str) -> DiscoveredAsset | None:
        """The asset with this symbol."""
        t = discovered_symbols
        found = (await self._session.execute(select(t).where(t.c.symbol == symbol))).mappings().first()
        return None if found is None else self._asset(found)

    async def list(self, *, tradable_only: bool = False, seen_since: datetime | None = None,
                   limit: int = 100_000) -> list[DiscoveredAsset]:
        """Assets by symbol, optionally only tradable ones or ones seen at or after `seen_since`."""
        check_limit(limit)
        t = discovered_symbols
        where = _range(t.c.last_seen, seen_since, None)
        if tradable_only:
            where.append(t.c.tradable.is_(True))
        stmt = select(t).where(*where).order_by(t.c.symbol.collate("C")).limit(limit)
        return [self._asset(r) for r in (await self._session.execute(stmt)).mappings().all()]

    @staticmethod
    def _asset(row: Any) -> DiscoveredAsset:
        return DiscoveredAsset(
            symbol=row["symbol"], tradable=row["tradable"], name=row["name"], exchange=row["exchange"],
            asset_class=row["asset_class"], shortable=row["shortable"], fractionable=row["fractionable"],
            status=row["status"], sector=row["sector"], market_cap=row["market_cap"], first_seen=row["first_seen"],
            last_seen=row["last_seen"],
        )
