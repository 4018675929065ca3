"""InMemoryEmbeddingStore: the `EmbeddingStore` port over the in-memory memories and event search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from domain.embedding_models import COLLECTIONS, Census, StoredText
from domain.ports.embedding_store import EmbeddingStore


class ReembeddableCollection(Protocol):
    """What the in-memory stores of vectors offer the embedding store (InMemoryVectorMemory,
    InMemoryEventMemory)."""

    def model_counts(self) -> dict[str, int]:
        """How many stored vectors each model made."""
        ...

    def stale_texts(self, model: str, *, after: int, limit: int) -> list[StoredText]:
        """Texts another model embedded, keys above `after`, by key."""
        ...

    def replace_vectors(self, model: str, vectors: Sequence[tuple[int, Sequence[float]]]) -> int:
        """Replace vectors (all checked before any changes)."""
        ...


class InMemoryEmbeddingStore(EmbeddingStore):
    """Implements `EmbeddingStore` over in-memory collections.

    Args:
        collections: collection id (`domain.embedding_models.COLLECTIONS`) -> its store, in re-embedding order.
    """

    def __init__(self, collections: Mapping[str, ReembeddableCollection]) -> None:
        unknown = set(collections) - set(COLLECTIONS)
        if unknown:
            raise ValueError(f"unknown collections {sorted(unknown)}; use {', '.join(COLLECTIONS)}")
        self._collections = dict(collections)

    def _get(self, collection: str) -> ReembeddableCollection:
        try:
            return self._collections[collection]
        except KeyError:
            raise ValueError(f"unknown collection {collection!r}; use one of {', '.join(self._collections)}") from None

    @property
    def collections(self) -> tuple[str, ...]:
        """The collection ids, in re-embedding order."""
        return tuple(self._collections)

    async def census(self) -> Census:
        """How many vectors each model made, per collection."""
        return {name: c.model_counts() for name, c in self._collections.items()}

    async def stale(self, collection: str, model: str, *, after: int, limit: int) -> list[StoredText]:
        """Texts of `collection` another model embedded, keys above `after`, by key."""
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        return self._get(collection).stale_texts(model, after=after, limit=limit)

    async def replace(self, collection: str, model: str, vectors: Sequence[tuple[int, Sequence[float]]]) -> int:
        """Replace the vectors of these keys (all or none: every vector is checked first)."""
        return self._get(collection).replace_vectors(model, vectors)
