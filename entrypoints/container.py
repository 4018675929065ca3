"""Composition root: the one place where ports are wired to adapters.

Three configurations:
- live: embedded (or DATABASE_URL) Postgres, the real embedding model, real
  brokers and LLMs when configured;
- backtest: the same database and model, simulated broker and market;
- test: in-memory repositories and the hashing embedder, nothing external.
"""

from __future__ import annotations

from functools import partial
from typing import Literal

from dependency_injector import containers, providers

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from adapters.postgres.engine import make_engine, make_sessionmaker, resolve_database_url
from adapters.postgres.uow import PgUnitOfWork
from domain.ports.embedder import Embedder
from entrypoints.settings import Settings

Mode = Literal["live", "backtest", "test"]


def _sentence_transformer(settings: Settings) -> Embedder:
    from adapters.embeddings.lazy import LazyEmbedder

    def load() -> Embedder:
        from adapters.embeddings.sentence_transformer import SentenceTransformerEmbedder

        e = settings.embeddings
        return SentenceTransformerEmbedder(
            e.model, dimension=e.dimension, batch_size=e.batch_size, device=e.device,
            allow_download=e.allow_download, threads=e.threads or None)

    return LazyEmbedder(load, dimension=settings.embeddings.dimension)


def _database_url(settings: Settings) -> tuple[str, str]:
    return resolve_database_url(settings.effective_database_url, settings.database.embedded_dir)


class Container(containers.DeclarativeContainer):
    """Providers for every port; `mode` picks the configuration."""

    settings = providers.Dependency(instance_of=Settings)
    mode = providers.Object("live")

    embedder: providers.Provider[Embedder] = providers.Selector(
        mode,
        live=providers.Singleton(_sentence_transformer, settings),
        backtest=providers.Singleton(_sentence_transformer, settings),
        test=providers.Singleton(HashingEmbedder, 384),
    )
    database = providers.Singleton(_database_url, settings)
    engine = providers.Singleton(lambda db, echo: make_engine(db[0], echo=echo), database,
                                 settings.provided.database.echo)
    sessionmaker = providers.Singleton(make_sessionmaker, engine)
    memory_db = providers.Singleton(InMemoryDatabase, embedder)
    uow_factory = providers.Selector(
        mode,
        live=providers.Factory(partial, PgUnitOfWork, sessionmaker, embedder),
        backtest=providers.Factory(partial, PgUnitOfWork, sessionmaker, embedder),
        test=providers.Factory(partial, InMemoryUnitOfWork, memory_db),
    )


def build_container(settings: Settings, mode: Mode = "live") -> Container:
    """A container for `mode` with `settings`."""
    container = Container(settings=settings)
    container.mode.override(providers.Object(mode))
    return container
