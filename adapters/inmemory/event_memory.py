"""InMemoryEventMemory: the chat's event search with exact cosine search in NumPy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt

from adapters.inmemory.repo_events import InMemoryEventRepository
from domain.chat import EventDocument, EventHit
from domain.embedding_models import StoredText
from domain.event_search import check_search, new_documents
from domain.memory import check_dimension
from domain.ports.chat import EventMemory
from domain.ports.embedder import Embedder
from domain.storage import utc, utc_or_none


class InMemoryEventMemory(EventMemory):
    """Implements `EventMemory` in memory, with the checks of `PgEventMemory`.

    Args:
        embedder: embeds documents and questions.
        events: the event log a document must name an event of (the foreign key of `event_embeddings`); None
            accepts any positive id.
        dimension: the vector length (384, like the table).
    """

    def __init__(self, embedder: Embedder, *, events: InMemoryEventRepository | None = None,
                 dimension: int = 384) -> None:
        if embedder.dimension != dimension:
            check_dimension([0.0] * embedder.dimension, dimension, what="embedder")
        self._embedder = embedder
        self._events = events
        self._dimension = dimension
        self._documents: dict[int, EventDocument] = {}
        self._vectors: dict[int, npt.NDArray[np.float32]] = {}
        self._models: dict[int, str] = {}

    async def add(self, documents: Sequence[EventDocument]) -> int:
        """Embed and store documents; an event already stored is skipped (and never embedded again).

        Raises:
            EmptyTextError: a document's text is empty.
            ValueError: a document names no event of its scope in the event log, or its time has no zone.
            DimensionMismatchError: the embedder returned vectors of the wrong length.
        """
        todo = new_documents(documents, set(self._documents))
        if not todo:
            return 0
        if self._events is not None:
            wrong = [d.event_id for d in todo if not self._events.exists(d.scope, [d.event_id])]
            if wrong:
                raise ValueError(f"no event of the document's scope in the event log for ids {sorted(wrong)[:10]}")
        vectors = self._embedder.embed([d.text for d in todo])
        checked = []
        for d, vec in zip(todo, vectors, strict=True):
            values = [float(x) for x in vec]
            check_dimension(values, self._dimension)
            checked.append((d, np.asarray(values, dtype=np.float32)))
        for d, vec in checked:
            self._documents[d.event_id] = EventDocument(d.event_id, d.scope, utc(d.at, what="event time"), d.type,
                                                        d.cycle_id, d.symbol, d.text)
            self._vectors[d.event_id] = vec
            self._models[d.event_id] = self._embedder.model_name
        return len(checked)

    async def last_event_id(self, scope: str) -> int:
        """The highest event id stored for `scope` (0 when none)."""
        return max((i for i, d in self._documents.items() if d.scope == scope), default=0)

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
        [q] = self._embedder.embed([query])
        qn = float(np.linalg.norm(q))
        hits = []
        model = self._embedder.model_name
        for i, d in self._documents.items():
            if self._models[i] != model:
                continue
            if d.scope != scope or d.at > until or (start is not None and d.at < start):
                continue
            if symbol is not None and d.symbol != symbol:
                continue
            v = self._vectors[i]
            norm = qn * float(np.linalg.norm(v))
            distance = 1.0 if norm == 0.0 else 1.0 - float(np.dot(q, v)) / norm
            hits.append(EventHit(d, distance))
        hits.sort(key=lambda h: (h.distance, h.document.event_id))
        return hits[:k]

    def model_counts(self) -> dict[str, int]:
        """How many stored vectors each model made."""
        counts: dict[str, int] = {}
        for m in self._models.values():
            counts[m] = counts.get(m, 0) + 1
        return counts

    def stale_texts(self, model: str, *, after: int, limit: int) -> list[StoredText]:
        """Up to `limit` documents another model than `model` embedded, event ids above `after`, by event id."""
        keys = sorted(i for i, m in self._models.items() if m != model and i > after)[:limit]
        return [StoredText(i, self._documents[i].text) for i in keys]

    def replace_vectors(self, model: str, vectors: Sequence[tuple[int, Sequence[float]]]) -> int:
        """Give the documents of these event ids these vectors of `model` (all checked before any is changed)."""
        todo = []
        for key, vector in vectors:
            values = [float(x) for x in vector]
            check_dimension(values, self._dimension)
            if self._models.get(key, model) != model:
                todo.append((key, np.asarray(values, dtype=np.float32)))
        for key, vec in todo:
            self._vectors[key] = vec
            self._models[key] = model
        return len(todo)
