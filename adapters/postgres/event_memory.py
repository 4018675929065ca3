"""PgEventMemory: the chat's event search on table `event_embeddings` (pgvector, HNSW cosine index)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.postgres.tables import EMBEDDING_DIM, event_embeddings, events
from domain.chat import EventDocument, EventHit
from domain.event_search import check_search, new_documents
from domain.memory import check_dimension
from domain.ports.chat import EventMemory
from domain.ports.embedder import Embedder
from domain.storage import utc, utc_or_none

TIE_MARGIN = 8
"""Rows fetched beyond k so that ties at the k-th distance are broken by event id, like the in-memory fake."""


class PgEventMemory(EventMemory):
    """Implements `EventMemory` on `event_embeddings`, each call in a transaction of its own.

    Args:
        sessionmaker: sessions on the database that holds the event log.
        embedder: embeds documents and questions (384 dimensions, like the table).
        ef_search: HNSW candidate list size of a search (at least k).
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], embedder: Embedder, *,
                 ef_search: int = 100) -> None:
        if embedder.dimension != EMBEDDING_DIM:
            check_dimension([0.0] * embedder.dimension, EMBEDDING_DIM, what="embedder")
        self._sessionmaker = sessionmaker
        self._embedder = embedder
        self._ef_search = ef_search

    async def add(self, documents: Sequence[EventDocument]) -> int:
        """Embed and store documents; an event already stored is skipped (and never embedded again).

        Raises:
            EmptyTextError: a document's text is empty.
            ValueError: a document names no event of its scope in the event log, or its time has no zone.
            DimensionMismatchError: the embedder returned vectors of the wrong length.
        """
        if not documents:
            return 0
        async with self._sessionmaker() as session:
            ids = list({d.event_id for d in documents})
            t = event_embeddings.c
            stored = set((await session.execute(select(t.event_id).where(t.event_id.in_(ids)))).scalars())
            todo = new_documents(documents, stored)
            if not todo:
                return 0
            await self._check_events(session, todo)
            vectors = self._embedder.embed([d.text for d in todo])
            rows = [self._row(d, vec) for d, vec in zip(todo, vectors, strict=True)]
            stmt = insert(event_embeddings).on_conflict_do_nothing(index_elements=["event_id"])
            result = await session.execute(stmt.returning(t.event_id), rows)
            inserted = len(result.all())
            await session.commit()
            return inserted

    @staticmethod
    async def _check_events(session: AsyncSession, documents: Sequence[EventDocument]) -> None:
        c = events.c
        found = dict((await session.execute(
            select(c.id, c.scope).where(c.id.in_([d.event_id for d in documents])))).tuples().all())
        wrong = [d.event_id for d in documents if found.get(d.event_id) != d.scope]
        if wrong:
            raise ValueError(f"no event of the document's scope in the event log for ids {sorted(wrong)[:10]}")

    def _row(self, d: EventDocument, vector: Any) -> dict[str, Any]:
        vec = [float(x) for x in vector]
        check_dimension(vec, EMBEDDING_DIM)
        return {"event_id": d.event_id, "scope": d.scope, "at": utc(d.at, what="event time"), "type": d.type,
                "cycle_id": d.cycle_id, "symbol": d.symbol, "text": d.text,
                "embedding": np.asarray(vec, dtype=np.float32), "model": self._embedder.model_name}

    async def last_event_id(self, scope: str) -> int:
        """The highest event id stored for `scope` (0 when none)."""
        t = event_embeddings.c
        async with self._sessionmaker() as session:
            found = (await session.execute(select(func.max(t.event_id)).where(t.scope == scope))).scalar_one()
        return int(found or 0)

    async def search(self, query: str, *, scope: str, k: int, as_of: datetime, since: datetime | None = None,
                     symbol: str | None = None) -> list[EventHit]:
        """The `k` stored events of `scope` nearest to `query` by cosine distance, closest first (ties by event
        id), none after `as_of` nor before `since`, only `symbol`'s when given, only those the embedder's model
        embedded.

        Raises:
            EmptyTextError: the query is empty.
            ValueError: k is not positive, or as_of or since has no time zone.
        """
        check_search(query, k, as_of, since)
        until, start = utc(as_of, what="as_of"), utc_or_none(since, what="since")
        [vec] = self._embedder.embed([query])
        t = event_embeddings
        distance = t.c.embedding.cosine_distance(np.asarray(vec, dtype=np.float32)).label("distance")
        columns = [c for c in t.c if c.name not in ("embedding", "model", "created_at")]
        stmt = select(*columns, distance).where(t.c.scope == scope, t.c.at <= until,
                                                t.c.model == self._embedder.model_name)  # one model's vectors only
        if start is not None:
            stmt = stmt.where(t.c.at >= start)
        if symbol is not None:
            stmt = stmt.where(t.c.symbol == symbol)
        nearest = stmt.order_by(distance).limit(k + TIE_MARGIN).subquery()
        ordered = select(nearest).order_by(nearest.c.distance, nearest.c.event_id).limit(k)
        async with self._sessionmaker() as session:
            await session.execute(
                text("SELECT set_config('hnsw.ef_search', :ef, true), "
                     "set_config('hnsw.iterative_scan', 'strict_order', true)"),
                {"ef": str(int(max(self._ef_search, k)))})
            rows = (await session.execute(ordered)).mappings().all()
        return [EventHit(EventDocument(event_id=r["event_id"], scope=r["scope"], at=r["at"], type=r["type"],
                                       cycle_id=r["cycle_id"], symbol=r["symbol"], text=r["text"]),
                         float(r["distance"])) for r in rows]
