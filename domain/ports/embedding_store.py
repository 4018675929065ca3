"""EmbeddingStore port: every stored vector (memories and the event search), by the model that made it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from domain.embedding_models import Census, StoredText


@runtime_checkable
class EmbeddingStore(Protocol):
    """The stored vectors of every collection (`domain.embedding_models.COLLECTIONS`), for the start-up check of
    the model that made them and for re-embedding them with another."""

    @property
    def collections(self) -> tuple[str, ...]:
        """The collection ids, in the order they are re-embedded."""
        ...

    async def census(self) -> Census:
        """For each collection, how many vectors each model made (collections without vectors may be left out)."""
        ...

    async def stale(self, collection: str, model: str, *, after: int, limit: int) -> list[StoredText]:
        """Up to `limit` stored texts of `collection` whose vector another model than `model` made, with keys above
        `after`, by key.

        Raises:
            ValueError: an unknown collection, or a limit that is not positive.
        """
        ...

    async def replace(self, collection: str, model: str, vectors: Sequence[tuple[int, Sequence[float]]]) -> int:
        """Give the rows of these keys these vectors, made by `model`, all in one transaction (all or none).

        Rows already made by `model`, and keys no longer stored, are left alone.

        Returns:
            How many rows were changed.

        Raises:
            ValueError: an unknown collection.
            DimensionMismatchError: a vector has the wrong length (nothing is changed).
        """
        ...
