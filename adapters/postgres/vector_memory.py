"""pgvector adapters of the memory ports: PgTradeMemory, PgConditionMemory, PgSymbolContextMemory.

Every row records the model that made its vector (`model`); a search reads only the rows of the embedder's model,
so it never compares vectors of two models (the start-up check and `quorum memory reembed`: docs/embeddings.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from pgvector import Vector
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import BigInteger, Select, Table, column, func, insert, select, text, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.tables import (
    EMBEDDING_DIM,
    condition_embeddings,
    symbol_context_embeddings,
    trade_embeddings,
)
from domain.memory import MemoryFilters, MemoryKind, MemoryRecord, SimilarItem, check_dimension, query_vectors
from domain.ports.embedder import Embedder
from domain.ports.memory import ConditionMemory, Query, SymbolContextMemory, TradeMemory

TIE_MARGIN = 8
"""Rows fetched beyond k so that ties at the k-th distance are broken by id, like the in-memory fake."""


def _check_recall(k: int, as_of: datetime) -> None:
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")


QUERIES_SQL = ("SELECT u.ord, CAST(u.vec AS vector) AS query "
               "FROM unnest(CAST(:vectors AS text[])) WITH ORDINALITY AS u(vec, ord)")
"""The query vectors of `similar_many` as rows (ord from 1), sent as one text[] parameter."""


def _by_distance(item: tuple[float, int, Any]) -> tuple[float, int]:
    return item[0], item[1]


class PgVectorMemory:
    """Shared implementation over one embedding table (cosine distance, HNSW index)."""

    table: Table
    memory_kind: MemoryKind

    def __init__(self, session: AsyncSession, embedder: Embedder, *, ef_search: int = 100) -> None:
        if embedder.dimension != EMBEDDING_DIM:
            check_dimension([0.0] * embedder.dimension, EMBEDDING_DIM, what="embedder")
        self._session = session
        self._embedder = embedder
        self._ef_search = ef_search

    @property
    def kind(self) -> MemoryKind:
        """Which memory this is."""
        return self.memory_kind

    def _row(self, record: MemoryRecord) -> dict[str, Any]:
        if record.embedding is None:
            raise ValueError(f"memory {record.text[:40]!r} has no embedding")
        row: dict[str, Any] = {
            "scope": record.scope,
            "symbol": record.symbol,
            "action": record.action,
            "outcome": record.outcome,
            "return_pct": record.return_pct,
            "as_of": record.as_of,
            "outcome_at": record.outcome_at,
            "text": record.text,
            "embedding": np.asarray(record.embedding, dtype=np.float32),
            "model": self._embedder.model_name,
            "metadata": record.metadata,
        }
        if "cycle_id" in self.table.c:
            row["cycle_id"] = record.metadata.get("cycle_id")
        if "source" in self.table.c:
            row["source"] = record.metadata.get("source")
        return row

    async def store(self, records: Sequence[MemoryRecord]) -> list[MemoryRecord]:
        """Store records, embedding in one batch those without a vector."""
        if not records:
            return []
        for r in records:
            if r.kind is not self.memory_kind:
                raise ValueError(f"{r.kind.value} record given to the {self.memory_kind.value} memory")
        missing = [i for i, r in enumerate(records) if r.embedding is None]
        done = list(records)
        if missing:
            vectors = self._embedder.embed([records[i].text for i in missing])
            for i, vec in zip(missing, vectors, strict=True):
                done[i] = records[i].with_embedding(vec.tolist())
        for r in done:
            if r.embedding is None:
                raise ValueError(f"memory {r.text[:40]!r} has no embedding")
            check_dimension(r.embedding, EMBEDDING_DIM)
        result = await self._session.execute(
            insert(self.table).returning(self.table.c.id), [self._row(r) for r in done]
        )
        ids = [row[0] for row in result.all()]
        return [replace(r, id=i) for r, i in zip(done, ids, strict=True)]

    def _query_vectors(self, queries: Sequence[Query]) -> list[npt.NDArray[np.float32]]:
        return query_vectors(queries, self._embedder, EMBEDDING_DIM)

    def _candidates(self, distance: Any, as_of: datetime, f: MemoryFilters, limit: int) -> Select[Any]:
        """The `limit` nearest rows visible at `as_of` under `f` and made by the embedder's model, by `distance` (the
        part the HNSW index serves)."""
        t = self.table
        columns = [c for c in t.c if c.name != "embedding"]
        stmt = select(*columns, distance).where(t.c.scope == f.scope, t.c.as_of <= as_of,
                                                t.c.model == self._embedder.model_name)  # one model's vectors only
        if f.symbol is not None:
            stmt = stmt.where(t.c.symbol == f.symbol)
        if f.action is not None:
            stmt = stmt.where(t.c.action == f.action)
        if f.outcome is not None:
            stmt = stmt.where(t.c.outcome == f.outcome, func.coalesce(t.c.outcome_at, t.c.as_of) <= as_of)
        return stmt.order_by(distance).limit(limit)

    async def _set_search(self, k: int) -> None:
        await self._session.execute(
            text("SELECT set_config('hnsw.ef_search', :ef, true), set_config('hnsw.iterative_scan', 'strict_order', "
                 "true)"), {"ef": str(int(max(self._ef_search, k)))})

    async def similar(
        self, query: Query, *, k: int, as_of: datetime, filters: MemoryFilters | None = None
    ) -> list[SimilarItem]:
        """Nearest records known at `as_of`, by cosine distance."""
        _check_recall(k, as_of)
        f = filters or MemoryFilters()
        [vec] = self._query_vectors([query])
        distance = self.table.c.embedding.cosine_distance(vec).label("distance")
        nearest = self._candidates(distance, as_of, f, k + TIE_MARGIN).subquery()
        stmt = select(nearest).order_by(nearest.c.distance, nearest.c.id).limit(k)  # ties broken by id, like the fake
        await self._set_search(k)
        rows = (await self._session.execute(stmt)).mappings().all()
        return [SimilarItem(self._record(row).visible_at(as_of), float(row["distance"])) for row in rows]

    async def similar_many(
        self, queries: Sequence[Query], *, k: int, as_of: datetime, filters: MemoryFilters | None = None
    ) -> list[list[SimilarItem]]:
        """`similar` for each query in one statement: the queries unnested, each joined LATERAL to its
        nearest rows (the same index scan, as-of and scope filters as `similar`)."""
        _check_recall(k, as_of)
        f = filters or MemoryFilters()
        vectors = self._query_vectors(queries)
        if not vectors:
            return []
        q = (text(QUERIES_SQL).bindparams(vectors=[Vector(v).to_text() for v in vectors])
             .columns(column("ord", BigInteger), column("query", VECTOR(EMBEDDING_DIM))).subquery("queries"))
        distance = self.table.c.embedding.cosine_distance(q.c.query).label("distance")
        nearest = self._candidates(distance, as_of, f, k + TIE_MARGIN).lateral("nearest")
        stmt = select(q.c.ord, nearest).select_from(q.join(nearest, true()))
        await self._set_search(k)
        rows = (await self._session.execute(stmt)).mappings().all()
        found: list[list[tuple[float, int, Any]]] = [[] for _ in vectors]
        for row in rows:
            found[int(row["ord"]) - 1].append((float(row["distance"]), int(row["id"]), row))
        nearest_k = (sorted(items, key=_by_distance)[:k] for items in found)  # ties broken by id, like `similar`
        return [[SimilarItem(self._record(row).visible_at(as_of), d) for d, _, row in items] for items in nearest_k]

    def _record(self, row: Any) -> MemoryRecord:
        meta = dict(row["metadata"] or {})
        return MemoryRecord(
            kind=self.memory_kind,
            text=row["text"],
            as_of=row["as_of"],
            symbol=row["symbol"],
            action=row["action"],
            outcome=row["outcome"],
            return_pct=row["return_pct"],
            outcome_at=row["outcome_at"],
            scope=row["scope"],
            metadata=meta,
            embedding=None,
            id=row["id"],
        )

    async def record_outcome(
        self, record_id: int, *, outcome: str, return_pct: float, outcome_at: datetime
    ) -> None:
        """Attach the outcome of a stored record."""
        result = await self._session.execute(
            update(self.table)
            .where(self.table.c.id == record_id)
            .values(outcome=outcome, return_pct=return_pct, outcome_at=outcome_at)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise KeyError(f"no {self.memory_kind.value} memory with id {record_id}")

    async def count(self, *, scope: str | None = None) -> int:
        """Number of stored records."""
        stmt = select(func.count()).select_from(self.table)
        if scope is not None:
            stmt = stmt.where(self.table.c.scope == scope)
        return int((await self._session.execute(stmt)).scalar_one())


class PgTradeMemory(PgVectorMemory, TradeMemory):
    """Trades in `trade_embeddings` (implements `TradeMemory`)."""

    table = trade_embeddings
    memory_kind = MemoryKind.TRADE


class PgConditionMemory(PgVectorMemory, ConditionMemory):
    """Market conditions in `condition_embeddings` (implements `ConditionMemory`)."""

    table = condition_embeddings
    memory_kind = MemoryKind.CONDITION


class PgSymbolContextMemory(PgVectorMemory, SymbolContextMemory):
    """Symbol context in `symbol_context_embeddings` (implements `SymbolContextMemory`)."""

    table = symbol_context_embeddings
    memory_kind = MemoryKind.SYMBOL_CONTEXT
