"""Records kept in vector memory and the results of a similarity search.

Every record carries the time it became known (`as_of`). A trade's outcome
becomes known later than the trade itself, so it has its own `outcome_at`:
a recall made before that time sees the trade but not its outcome.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from domain.errors import DimensionMismatchError, EmptyTextError

if TYPE_CHECKING:
    from domain.ports.embedder import Embedder

DEFAULT_SCOPE = "live"


class MemoryKind(StrEnum):
    """The three vector memories."""

    TRADE = "trade"
    CONDITION = "condition"
    SYMBOL_CONTEXT = "symbol_context"


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """One item of vector memory.

    Attributes:
        kind: which memory it belongs to.
        text: the text that was embedded.
        as_of: when the item became known; recall before this time never sees it.
        symbol: ticker, or None for market-wide items (conditions).
        action: BUY/SELL/HOLD for trades, None otherwise.
        outcome: WIN/LOSS/FLAT for trades, a label for conditions, once known.
        return_pct: realised (trade) or forward (condition) return as a fraction.
        outcome_at: when outcome and return_pct became known.
        scope: "live" or "backtest:<run id>"; recall never crosses scopes.
        metadata: free-form extra fields.
        embedding: the vector, once computed.
        id: database id, once stored.
    """

    kind: MemoryKind
    text: str
    as_of: datetime
    symbol: str | None = None
    action: str | None = None
    outcome: str | None = None
    return_pct: float | None = None
    outcome_at: datetime | None = None
    scope: str = DEFAULT_SCOPE
    metadata: dict[str, Any] = field(default_factory=dict)
    embedding: tuple[float, ...] | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        if not self.text or not self.text.strip():
            raise EmptyTextError(f"{self.kind.value} memory text must not be empty")
        if self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")

    def with_embedding(self, embedding: Sequence[float]) -> MemoryRecord:
        """Return a copy carrying `embedding`."""
        return replace(self, embedding=tuple(float(x) for x in embedding))

    def visible_at(self, as_of: datetime) -> MemoryRecord:
        """Return this record as it looked at `as_of` (outcome hidden if not yet known)."""
        if self.outcome_at is not None and self.outcome_at > as_of:
            return replace(self, outcome=None, return_pct=None, outcome_at=None)
        return self


@dataclass(frozen=True, slots=True)
class MemoryFilters:
    """Optional equality filters for recall. `scope` is always applied."""

    symbol: str | None = None
    action: str | None = None
    outcome: str | None = None
    scope: str = DEFAULT_SCOPE


@dataclass(frozen=True, slots=True)
class SimilarItem:
    """A record found by recall, with its cosine distance to the query (0 = same)."""

    record: MemoryRecord
    distance: float


def check_dimension(vector: Sequence[float], expected: int, *, what: str = "embedding") -> None:
    """Raise `DimensionMismatchError` unless `vector` has `expected` finite entries."""
    if len(vector) != expected:
        raise DimensionMismatchError(expected, len(vector), what=what)
    if not all(math.isfinite(x) for x in vector):
        raise ValueError(f"{what} contains NaN or infinite values")


def cosine_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine distance as pgvector's `<=>` computes it (1 - cosine similarity)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    if na == 0.0 or nb == 0.0:
        return 1.0
    return 1.0 - dot / (na * nb)


def query_vectors(queries: Sequence[str | Sequence[float]], embedder: Embedder, dimension: int
                  ) -> list[npt.NDArray[np.float32]]:
    """The vectors of memory queries, in order: given vectors checked against `dimension`, texts embedded in one
    batch.

    Raises:
        TypeError: `queries` is one text rather than a sequence of queries.
        DimensionMismatchError: a given vector has the wrong length.
    """
    if isinstance(queries, str):
        raise TypeError("queries must be a sequence of queries, not one text")
    vectors: list[npt.NDArray[np.float32] | None] = []
    texts: list[tuple[int, str]] = []
    for i, query in enumerate(queries):
        if isinstance(query, str):
            texts.append((i, query))
            vectors.append(None)
            continue
        vec = [float(x) for x in query]
        check_dimension(vec, dimension, what="query vector")
        vectors.append(np.asarray(vec, dtype=np.float32))
    if texts:
        embedded = embedder.embed([t for _, t in texts])
        for (i, _), emb in zip(texts, embedded, strict=True):
            vectors[i] = np.asarray([float(x) for x in emb], dtype=np.float32)
    return [v for v in vectors if v is not None]
