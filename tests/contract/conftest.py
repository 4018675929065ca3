"""Fixtures shared by the contract suites: units of work on every backend."""

from __future__ import annotations

import pytest

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from domain.ports.uow import UnitOfWork, UnitOfWorkFactory


@pytest.fixture(
    params=[
        pytest.param("inmemory", id="inmemory"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.integration),
    ]
)
def uow_factory(request: pytest.FixtureRequest) -> UnitOfWorkFactory:
    """Opens units of work on one backend: a fresh in-memory database, or the migrated test Postgres.

    The Postgres database is shared by the whole session: tests keep to their own `scope`.
    The server starts only when a postgres test runs.
    """
    embedder = HashingEmbedder()
    if request.param == "inmemory":
        db = InMemoryDatabase(embedder)

        def open_inmemory() -> UnitOfWork:
            return InMemoryUnitOfWork(db)

        return open_inmemory

    from adapters.postgres.uow import PgUnitOfWork

    sessionmaker = request.getfixturevalue("pg_sessionmaker")

    def open_postgres() -> UnitOfWork:
        return PgUnitOfWork(sessionmaker, embedder)

    return open_postgres
