"""Vector memory ports: trades, market conditions and symbol context."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from domain.memory import MemoryFilters, MemoryKind, MemoryRecord, SimilarItem

Query = str | Sequence[float]


@runtime_checkable
class VectorMemory(Protocol):
    """A store of embedded records searchable by cosine similarity."""

    @property
    def kind(self) -> MemoryKind:
        """Which memory this is."""
        ...

    async def store(self, records: Sequence[MemoryRecord]) -> list[MemoryRecord]:
        """Store records, embedding (in one batch) those that carry no vector.

        Args:
            records: records of this memory's kind.

        Returns:
            The stored records with their ids and embeddings.

        Raises:
            EmptyTextError: a record has no text.
            DimensionMismatchError: a given vector has the wrong dimension.
        """
        ...

    async def similar(
        self,
        query: Query,
        *,
        k: int,
        as_of: datetime,
        filters: MemoryFilters | None = None,
    ) -> list[SimilarItem]:
        """Return the `k` nearest records known at `as_of`, closest first.

        Args:
            query: a text (embedded with the store's embedder) or a vector.
            k: how many items at most; must be positive.
            as_of: nothing created after it is returned, and outcomes that
                became known after it are hidden.
            filters: equality filters; recall never crosses scopes.

        Raises:
            EmptyTextError: the query text is empty.
            DimensionMismatchError: the query vector has the wrong dimension.
        """
        ...

    async def similar_many(
        self,
        queries: Sequence[Query],
        *,
        k: int,
        as_of: datetime,
        filters: MemoryFilters | None = None,
    ) -> list[list[SimilarItem]]:
        """`similar` for several queries at once: one round trip, texts embedded in one batch.

        Args:
            queries: texts and/or vectors (a single text is refused: wrap it in a list).
            k: how many items at most per query; must be positive.
            as_of: as for `similar`.
            filters: as for `similar`, applied to every query.

        Returns:
            One list per query, in the order of `queries`, each equal to what `similar(query, ...)`
            returns (same records, same order, same distances).

        Raises:
            EmptyTextError: a query text is empty.
            DimensionMismatchError: a query vector has the wrong dimension.
        """
        ...

    async def record_outcome(
        self, record_id: int, *, outcome: str, return_pct: float, outcome_at: datetime
    ) -> None:
        """Attach the outcome of a stored record, known from `outcome_at` on."""
        ...

    async def count(self, *, scope: str | None = None) -> int:
        """Number of stored records (in `scope` when given)."""
        ...


@runtime_checkable
class TradeMemory(VectorMemory, Protocol):
    """Executed trades with their reasoning and, later, their outcome."""


@runtime_checkable
class ConditionMemory(VectorMemory, Protocol):
    """Daily market conditions and what the market did after them."""


@runtime_checkable
class SymbolContextMemory(VectorMemory, Protocol):
    """Per-symbol context: news, notes, discovery reasons."""
