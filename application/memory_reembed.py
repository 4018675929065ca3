"""One embedding model for every stored vector: the start-up check, and `quorum memory reembed`.

Vectors of two models are not comparable, so a process that searches refuses to start while another model than the
configured one made stored vectors (`check_stored_models`), and `reembed_stored` re-embeds them with the configured
model: in batches, each replaced in one transaction, so an interruption loses at most the batch in flight and a
second run goes on where the first stopped (vectors the configured model made already are never embedded again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from domain.embedding_models import mismatch_message, stale_count
from domain.errors import EmbeddingModelMismatchError
from domain.ports.embedder import Embedder
from domain.ports.embedding_store import EmbeddingStore

log = structlog.get_logger(__name__)

ReembedProgress = Callable[[int, int], None]
"""Called after each batch with (vectors re-embedded so far, vectors to re-embed in all)."""


@dataclass(frozen=True, slots=True)
class ReembedReport:
    """What `reembed_stored` did.

    Attributes:
        model: the model every stored vector now comes from.
        found: how many vectors another model had made when it started.
        reembedded: how many it re-embedded, per collection (collections with none left out).
        batches: how many batches (transactions) it took.
    """

    model: str
    found: int
    reembedded: dict[str, int] = field(default_factory=dict)
    batches: int = 0

    @property
    def total(self) -> int:
        """Vectors re-embedded in all."""
        return sum(self.reembedded.values())


async def check_stored_models(store: EmbeddingStore, model: str) -> None:
    """Refuse stored vectors made by another model than `model`.

    Raises:
        EmbeddingModelMismatchError: one line naming the models, the collections and `quorum memory reembed`.
    """
    message = mismatch_message(await store.census(), model)
    if message is not None:
        raise EmbeddingModelMismatchError(message)


async def reembed_stored(store: EmbeddingStore, embedder: Embedder, *, batch: int = 256,
                         progress: ReembedProgress | None = None) -> ReembedReport:
    """Re-embed, with `embedder`, every stored vector another model made.

    Args:
        store: every collection of stored vectors.
        embedder: the configured model.
        batch: texts embedded and replaced per transaction.
        progress: called after each batch with (done, total).

    Returns:
        What was re-embedded; nothing when `embedder`'s model made every stored vector already.

    Raises:
        ValueError: a batch that is not positive.
    """
    if batch <= 0:
        raise ValueError(f"batch must be positive, got {batch}")
    model = embedder.model_name
    found = total = stale_count(await store.census(), model)
    done, batches = 0, 0
    per_collection: dict[str, int] = {}
    log.info("memory_reembed_started", model=model, stale=found, batch=batch)
    if progress is not None:
        progress(0, total)
    for collection in store.collections:
        after = 0
        while rows := await store.stale(collection, model, after=after, limit=batch):
            vectors = embedder.embed([r.text for r in rows])
            changed = await store.replace(collection, model,
                                          [(r.key, v.tolist()) for r, v in zip(rows, vectors, strict=True)])
            after = rows[-1].key
            done, batches = done + changed, batches + 1
            per_collection[collection] = per_collection.get(collection, 0) + changed
            total = max(total, done)  # vectors another process stored meanwhile
            if progress is not None:
                progress(done, total)
    log.info("memory_reembed_finished", model=model, reembedded=done, batches=batches, per_collection=per_collection)
    return ReembedReport(model, found, per_collection, batches)
