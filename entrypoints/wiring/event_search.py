"""The chat's event search: its store (pgvector or in memory) and the indexer run after each cycle."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.inmemory.event_memory import InMemoryEventMemory
from adapters.inmemory.uow import InMemoryDatabase
from adapters.postgres.event_memory import PgEventMemory
from application.chat.event_index import EventIndexer
from domain.ports.chat import EventMemory
from domain.ports.embedder import Embedder
from domain.ports.uow import UnitOfWorkFactory
from entrypoints.settings import Settings


def pg_event_memory(sessionmaker: async_sessionmaker[AsyncSession], embedder: Embedder) -> EventMemory:
    """`event_embeddings` on the container's database, embedded with the container's embedder."""
    return PgEventMemory(sessionmaker, embedder)


def in_memory_event_memory(embedder: Embedder, db: InMemoryDatabase) -> EventMemory:
    """The in-memory store, refusing documents of events its in-memory event log does not hold."""
    return InMemoryEventMemory(embedder, events=db.events)


def event_indexer(settings: Settings, memory: EventMemory, uow_factory: UnitOfWorkFactory,
                  scope: str) -> EventIndexer | None:
    """The indexer the trading service runs after each cycle; None when QUORUM_CHAT__INDEX_EVENTS is off."""
    return EventIndexer(memory, uow_factory, scope) if settings.chat.index_events else None
