"""In-memory fakes of the memory ports: exact cosine search with NumPy.

Like the pgvector tables, each record keeps the name of the model that made its vector; a search sees only the
records of the embedder's model, and `stale_texts` / `replace_vectors` serve the in-memory `EmbeddingStore`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial

import numpy as np
import numpy.typing as npt

from adapters.inmemory.journal import Journal
from domain.embedding_models import StoredText
from domain.memory import MemoryFilters, MemoryKind, MemoryRecord, SimilarItem, check_dimension, query_vectors
from domain.ports.embedder import Embedder
from domain.ports.memory import ConditionMemory, Query, SymbolContextMemory, TradeMemory


def _check_recall(k: int, as_of: datetime) -> None:
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")


class InMemoryVectorMemory:
    """Exact nearest-neighbour search over records kept in a list."""

    memory_kind: MemoryKind

    def __init__(self, embedder: Embedder, journal: Journal | None = None, *, dimension: int = 384) -> None:
        if embedder.dimension != dimension:
            check_dimension([0.0] * embedder.dimension, dimension, what=f"embedder of dimension {embedder.dimension}")
        self._embedder = embedder
        self._journal = journal or Journal()
        self._dimension = dimension
        self._records: list[MemoryRecord] = []
        self._models: list[str] = []
        self._matrix: npt.NDArray[np.float32] = np.zeros((0, dimension), dtype=np.float32)
        self._next_id = 1

    @property
    def kind(self) -> MemoryKind:
        """Which memory this is."""
        return self.memory_kind

    async def store(self, records: Sequence[MemoryRecord]) -> list[MemoryRecord]:
        """Store records, embedding in one batch those without a vector."""
        for r in records:
            if r.kind is not self.memory_kind:
                raise ValueError(f"{r.kind.value} record given to the {self.memory_kind.value} memory")
        missing = [i for i, r in enumerate(records) if r.embedding is None]
        done = list(records)
        if missing:
            vectors = self._embedder.embed([records[i].text for i in missing])
            for i, vec in zip(missing, vectors, strict=True):
                done[i] = records[i].with_embedding(vec.tolist())
        stored = []
        for r in done:
            if r.embedding is None:
                raise ValueError(f"memory {r.text[:40]!r} has no embedding")
            check_dimension(r.embedding, self._dimension)
            stored.append(replace(r, id=self._next_id))
            self._next_id += 1
        if not stored:
            return []
        before = len(self._records)
        new_rows = np.asarray([r.embedding for r in stored], dtype=np.float32)
        self._records.extend(stored)
        self._models.extend([self._embedder.model_name] * len(stored))
        self._matrix = np.vstack([self._matrix, new_rows])
        self._journal.record(lambda: self._truncate(before))
        return stored

    def _truncate(self, n: int) -> None:
        del self._records[n:]
        del self._models[n:]
        self._matrix = self._matrix[:n]

    def _query_vectors(self, queries: Sequence[Query]) -> list[npt.NDArray[np.float32]]:
        return query_vectors(queries, self._embedder, self._dimension)

    def _eligible(self, as_of: datetime, f: MemoryFilters) -> list[int]:
        model = self._embedder.model_name
        return [
            i
            for i, r in enumerate(self._records)
            if self._models[i] == model
            and r.scope == f.scope
            and r.as_of <= as_of
            and (f.symbol is None or r.symbol == f.symbol)
            and (f.action is None or r.action == f.action)
            and (f.outcome is None or (r.outcome == f.outcome and (r.outcome_at or r.as_of) <= as_of))
        ]

    def _nearest(self, idx: list[int], q: npt.NDArray[np.float32], k: int, as_of: datetime) -> list[SimilarItem]:
        if not idx:
            return []
        rows = self._matrix[idx]
        qn = float(np.linalg.norm(q)) or 1.0
        norms = np.linalg.norm(rows, axis=1)
        norms[norms == 0] = 1.0
        dist = 1.0 - (rows @ q) / (norms * qn)
        order = np.lexsort((np.asarray(idx), dist))[:k]
        return [
            SimilarItem(replace(self._records[idx[j]], embedding=None).visible_at(as_of), float(dist[j])) for j in order
        ]

    async def similar(
        self, query: Query, *, k: int, as_of: datetime, filters: MemoryFilters | None = None
    ) -> list[SimilarItem]:
        """Nearest records known at `as_of`, by cosine distance."""
        return (await self.similar_many([query], k=k, as_of=as_of, filters=filters))[0]

    async def similar_many(
        self, queries: Sequence[Query], *, k: int, as_of: datetime, filters: MemoryFilters | None = None
    ) -> list[list[SimilarItem]]:
        """`similar` for each query (texts embedded in one batch), one list per query in order."""
        _check_recall(k, as_of)
        vectors = self._query_vectors(queries)
        idx = self._eligible(as_of, filters or MemoryFilters())
        return [self._nearest(idx, q, k, as_of) for q in vectors]

    async def record_outcome(self, record_id: int, *, outcome: str, return_pct: float, outcome_at: datetime) -> None:
        """Attach the outcome of a stored record."""
        for i, r in enumerate(self._records):
            if r.id == record_id:
                self._records[i] = replace(r, outcome=outcome, return_pct=return_pct, outcome_at=outcome_at)
                self._journal.record(partial(self._records.__setitem__, i, r))
                return
        raise KeyError(f"no {self.memory_kind.value} memory with id {record_id}")

    async def count(self, *, scope: str | None = None) -> int:
        """Number of stored records."""
        return sum(1 for r in self._records if scope is None or r.scope == scope)

    def model_counts(self) -> dict[str, int]:
        """How many stored vectors each model made."""
        counts: dict[str, int] = {}
        for m in self._models:
            counts[m] = counts.get(m, 0) + 1
        return counts

    def stale_texts(self, model: str, *, after: int, limit: int) -> list[StoredText]:
        """Up to `limit` records another model than `model` made, ids above `after`, by id."""
        found = sorted((r.id, r.text) for r, m in zip(self._records, self._models, strict=True)
                       if m != model and r.id is not None and r.id > after)
        return [StoredText(k, t) for k, t in found[:limit]]

    def replace_vectors(self, model: str, vectors: Sequence[tuple[int, Sequence[float]]]) -> int:
        """Give the records of these ids these vectors of `model` (all checked before any is changed)."""
        rows = {r.id: i for i, r in enumerate(self._records)}
        todo = []
        for key, vector in vectors:
            values = [float(x) for x in vector]
            check_dimension(values, self._dimension)
            i = rows.get(key)
            if i is not None and self._models[i] != model:
                todo.append((i, values))
        for i, values in todo:
            self._matrix[i] = np.asarray(values, dtype=np.float32)
            self._models[i] = model
        return len(todo)


class InMemoryTradeMemory(InMemoryVectorMemory, TradeMemory):
    """In-memory `TradeMemory`."""

    memory_kind = MemoryKind.TRADE


class InMemoryConditionMemory(InMemoryVectorMemory, ConditionMemory):
    """In-memory `ConditionMemory`."""

    memory_kind = MemoryKind.CONDITION


class InMemorySymbolContextMemory(InMemoryVectorMemory, SymbolContextMemory):
    """In-memory `SymbolContextMemory`."""

    memory_kind = MemoryKind.SYMBOL_CONTEXT
