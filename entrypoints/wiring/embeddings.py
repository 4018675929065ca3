"""The embedding model and the stored vectors: the lazily loaded model of the settings, the store of every vector
(`EmbeddingStore`), and the start-up check that the configured model is here and made every stored vector."""

from __future__ import annotations

from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.embeddings.lazy import LazyEmbedder
from adapters.embeddings.models import model_name, resolve_model
from adapters.inmemory.embedding_store import InMemoryEmbeddingStore, ReembeddableCollection
from adapters.inmemory.event_memory import InMemoryEventMemory
from adapters.inmemory.uow import InMemoryDatabase
from adapters.postgres.embedding_store import PgEmbeddingStore
from application.memory_reembed import check_stored_models
from domain.ports.chat import EventMemory
from domain.ports.embedder import Embedder
from domain.ports.embedding_store import EmbeddingStore
from entrypoints.settings import Settings


def sentence_transformer(settings: Settings) -> Embedder:
    """The configured model, loaded on first use (its name is known before: the start-up check needs no model)."""
    e = settings.embeddings

    def load() -> Embedder:
        from adapters.embeddings.backends import build_embedder

        return build_embedder(
            e.model, backend=e.backend, dimension=e.dimension, batch_size=e.batch_size, device=e.device,
            allow_download=e.allow_download, threads=e.threads, cache_dir=e.cache_dir)

    return LazyEmbedder(load, dimension=e.dimension, model_name=model_name(e.model),
                        available=partial(resolve_model, e.model, allow_download=e.allow_download))


def pg_embedding_store(sessionmaker: async_sessionmaker[AsyncSession]) -> EmbeddingStore:
    """Every pgvector table of the container's database."""
    return PgEmbeddingStore(sessionmaker)


def in_memory_embedding_store(db: InMemoryDatabase, events: EventMemory) -> EmbeddingStore:
    """The in-memory memories and event search."""
    collections: dict[str, ReembeddableCollection] = {
        "trade": db.trade_memory, "condition": db.condition_memory, "symbol_context": db.symbol_memory}
    if isinstance(events, InMemoryEventMemory):
        collections["event"] = events
    return InMemoryEmbeddingStore(collections)


def check_model_available(embedder: Embedder) -> None:
    """The configured model can be loaded (its files are here), checked without loading it.

    Raises:
        ConfigurationError: it cannot (one line saying what to set).
    """
    if isinstance(embedder, LazyEmbedder):
        embedder.check_available()


async def check_embeddings(embedder: Embedder, store: EmbeddingStore) -> None:
    """At start-up: the configured model is available (without loading it) and made every stored vector.

    Raises:
        ConfigurationError: the model is not available offline (the message says what to set).
        EmbeddingModelMismatchError: another model made stored vectors (the message names `quorum memory reembed`).
    """
    check_model_available(embedder)
    await check_stored_models(store, embedder.model_name)
