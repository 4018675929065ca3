"""PgEmbeddingStore: the `EmbeddingStore` port on the four pgvector tables (each call its own transaction)."""

from __future__ import annotations

from collections.abc import Sequence

from pgvector import Vector
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import BigInteger, Column, Table, column, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.postgres.tables import (
    EMBEDDING_DIM,
    condition_embeddings,
    event_embeddings,
    symbol_context_embeddings,
    trade_embeddings,
)
from domain.embedding_models import Census, StoredText
from domain.memory import check_dimension
from domain.ports.embedding_store import EmbeddingStore

TABLES: dict[str, Table] = {
    "trade": trade_embeddings,
    "condition": condition_embeddings,
    "symbol_context": symbol_context_embeddings,
    "event": event_embeddings,
}
"""Collection id (`domain.embedding_models.COLLECTIONS`) -> its table."""
GIVEN_SQL = ("SELECT u.k, CAST(u.vec AS vector) AS vec "
             "FROM unnest(CAST(:keys AS bigint[]), CAST(:vectors AS text[])) AS u(k, vec)")
"""The (key, vector) pairs of `replace` as rows, sent as two array parameters."""


def _table(collection: str) -> tuple[Table, Column]:  # type: ignore[type-arg]
    try:
        table = TABLES[collection]
    except KeyError:
        raise ValueError(f"unknown collection {collection!r}; use one of {', '.join(TABLES)}") from None
    return table, table.c.event_id if collection == "event" else table.c.id


class PgEmbeddingStore(EmbeddingStore):
    """Implements `EmbeddingStore` on trade_embeddings, condition_embeddings, symbol_context_embeddings and
    event_embeddings, whose `model` column names the model that made each vector.

    Args:
        sessionmaker: sessions on the database.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @property
    def collections(self) -> tuple[str, ...]:
        """trade, condition, symbol_context, event."""
        return tuple(TABLES)

    async def census(self) -> Census:
        """How many vectors each model made, per table (one statement per table)."""
        found: dict[str, dict[str, int]] = {}
        async with self._sessionmaker() as session:
            for collection, table in TABLES.items():
                rows = await session.execute(select(table.c.model, func.count()).group_by(table.c.model))
                found[collection] = {str(model): int(n) for model, n in rows.tuples()}
        return found

    async def stale(self, collection: str, model: str, *, after: int, limit: int) -> list[StoredText]:
        """Rows of `collection` another model made, keys above `after`, by key (the primary key's order)."""
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        table, key = _table(collection)
        stmt = (select(key, table.c.text).where(table.c.model != model, key > after).order_by(key).limit(limit))
        async with self._sessionmaker() as session:
            rows = (await session.execute(stmt)).tuples().all()
        return [StoredText(int(k), str(t)) for k, t in rows]

    async def replace(self, collection: str, model: str, vectors: Sequence[tuple[int, Sequence[float]]]) -> int:
        """One UPDATE ... FROM the unnested (key, vector) pairs, in one transaction; rows `model` made already are
        left alone."""
        table, key = _table(collection)
        if not vectors:
            return 0
        keys, texts = [], []
        for k, vector in vectors:
            values = [float(x) for x in vector]
            check_dimension(values, EMBEDDING_DIM)
            keys.append(int(k))
            texts.append(Vector(values).to_text())
        given = (text(GIVEN_SQL).bindparams(keys=keys, vectors=texts)
                 .columns(column("k", BigInteger), column("vec", VECTOR(EMBEDDING_DIM))).subquery("given"))
        stmt = (update(table).where(key == given.c.k, table.c.model != model)
                .values(embedding=given.c.vec, model=model).returning(key))
        async with self._sessionmaker() as session, session.begin():
            return len((await session.execute(stmt)).all())
