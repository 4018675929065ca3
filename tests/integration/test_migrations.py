"""Every migration upgrades and downgrades cleanly on a real PostgreSQL + pgvector database."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pgvector.sqlalchemy import Vector
from sqlalchemy import create_engine, pool, text

from adapters.postgres import migrate
from adapters.postgres.embedded import pg_bin
from adapters.postgres.tables import metadata

pytestmark = pytest.mark.integration

EMBEDDING_TABLES = {"trade_embeddings", "condition_embeddings", "symbol_context_embeddings"}
DISCOVERY_TABLES = {"discovered_symbols", "watchlist", "watchlist_changes", "discovery_runs", "picker_suggestions"}
# What each known revision must have created (later revisions are checked by the generic round trip only).
CREATED_BY = {"0001": set(), "0002": EMBEDDING_TABLES, "0003": DISCOVERY_TABLES}


@dataclass(frozen=True)
class Schema:
    """What a migration can change: extensions, tables with their columns, indexes, constraints."""

    extensions: frozenset[str]
    columns: frozenset[tuple[str, str, str, str]]
    indexes: frozenset[tuple[str, str]]
    constraints: frozenset[tuple[str, str]]

    @property
    def tables(self) -> set[str]:
        return {c[0] for c in self.columns}


def _psql_parts(pg_url: str) -> tuple[str, str]:
    base, _, query = pg_url.partition("?")
    return base.rsplit("/", 1)[0], query


@pytest.fixture(scope="module")
def empty_db_url(pg_url: str) -> Iterator[str]:
    """A database of its own on the test server, with no migration applied, dropped afterwards."""
    base, query = _psql_parts(pg_url)
    socket_dir = query.split("host=", 1)[1]
    name = "migrations_" + uuid.uuid4().hex[:8]
    subprocess.run([str(pg_bin("createdb")), "-h", socket_dir, "-U", "postgres", name], check=True)
    yield f"{base}/{name}?{query}"
    subprocess.run([str(pg_bin("dropdb")), "-h", socket_dir, "-U", "postgres", "--if-exists", name], check=False)


def snapshot(url: str) -> Schema:
    engine = create_engine(url.replace("+asyncpg", "+psycopg"), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            extensions = conn.execute(text("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'")).scalars()
            columns = conn.execute(text(
                "SELECT table_name, column_name, data_type || coalesce('(' || udt_name || ')', ''), is_nullable "
                "FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'alembic_version'"
            )).all()
            indexes = conn.execute(text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )).all()
            constraints = conn.execute(text(
                "SELECT conrelid::regclass::text, conname FROM pg_constraint c JOIN pg_namespace n "
                "ON n.oid = c.connamespace WHERE n.nspname = 'public' AND conrelid <> 0 "
                "AND conrelid::regclass::text <> 'alembic_version'"
            )).all()
    finally:
        engine.dispose()
    return Schema(
        frozenset(extensions),
        frozenset(tuple(r) for r in columns),
        frozenset(tuple(r) for r in indexes),
        frozenset(tuple(r) for r in constraints),
    )


def hnsw_cosine_indexes(schema: Schema) -> dict[str, str]:
    """index name -> definition of every HNSW index with the cosine operator class."""
    return {n: d for n, d in schema.indexes if "USING hnsw" in d and "vector_cosine_ops" in d}


def _indexed_table(indexdef: str) -> str:
    return indexdef.split(" ON ", 1)[1].split()[0].removeprefix("public.")


def check_known_revisions(applied: list[str], schema: Schema) -> None:
    """The known revisions among `applied` have created what they should, the others nothing yet."""
    step = applied[-1] if applied else "base"
    assert ("vector" in schema.extensions) == ("0001" in applied)
    for rev, tables in CREATED_BY.items():
        if rev in applied:
            assert tables <= schema.tables, f"after {step}: missing {tables - schema.tables}"
        else:
            assert not tables & schema.tables, f"after {step}: {tables & schema.tables} exist too early"
    if "0002" in applied:
        indexed = {_indexed_table(d) for d in hnsw_cosine_indexes(schema).values()}
        assert indexed >= EMBEDDING_TABLES


def current_revision(url: str) -> str | None:
    return migrate.status(url).current_revision


def test_every_revision_upgrades_and_downgrades(empty_db_url: str) -> None:
    url = empty_db_url
    revisions = migrate.revisions(url)
    assert revisions[:3] == ["0001", "0002", "0003"]
    assert len(revisions) == len(set(revisions))

    base = snapshot(url)
    assert current_revision(url) is None
    assert base.tables == set() and "vector" not in base.extensions
    assert migrate.status(url).vector_version is None

    states = [base]
    for n, rev in enumerate(revisions):  # up, one revision at a time
        migrate.upgrade(url, rev)
        assert current_revision(url) == rev
        state = snapshot(url)
        assert state != states[-1], f"revision {rev} changed nothing"
        check_known_revisions(revisions[: n + 1], state)
        states.append(state)

    for i in range(len(revisions) - 1, -1, -1):  # down, one revision at a time, back to base
        target = revisions[i - 1] if i > 0 else "base"
        migrate.downgrade(url, target)
        assert current_revision(url) == (None if target == "base" else target)
        state = snapshot(url)
        check_known_revisions(revisions[:i], state)
        assert state == states[i], f"downgrading {revisions[i]} did not restore the schema before it: " + _diff(
            states[i], state)

    assert snapshot(url).tables == set()
    assert migrate.status(url).vector_version is None

    migrate.upgrade(url, "head")  # and back to head in one go
    st = migrate.status(url)
    assert st.at_head and st.current_revision == revisions[-1]
    assert st.vector_version
    assert snapshot(url) == states[-1]


def _diff(expected: Schema, got: Schema) -> str:
    parts = []
    for field in ("extensions", "columns", "indexes", "constraints"):
        a, b = getattr(expected, field), getattr(got, field)
        if a != b:
            parts.append(f"{field}: missing {sorted(a - b)}, extra {sorted(b - a)}")
    return "; ".join(parts)


def test_head_has_an_hnsw_cosine_index_on_every_vector_column(pg_url: str) -> None:
    schema = snapshot(pg_url)
    vector_tables = {t.name for t in metadata.sorted_tables if any(isinstance(c.type, Vector) for c in t.columns)}
    assert vector_tables >= EMBEDDING_TABLES
    indexes = hnsw_cosine_indexes(schema)
    for table in vector_tables:
        defs = [d for d in indexes.values() if f" ON public.{table} " in d]
        assert len(defs) == 1, f"{table}: {defs}"
        assert "(embedding vector_cosine_ops)" in defs[0]


def test_head_matches_the_table_declarations(pg_url: str) -> None:
    """adapters/postgres/tables.py mirrors the migrations: same tables, same columns, same nullability."""
    db = {(t, c): nullable for t, c, _, nullable in snapshot(pg_url).columns}
    declared = {(t.name, c.name): "YES" if c.nullable else "NO" for t in metadata.sorted_tables for c in t.columns}
    assert {k for k in db if k[0] in {t for t, _ in declared}} == set(declared)
    mismatched = {k: (v, db[k]) for k, v in declared.items() if db[k] != v}
    assert mismatched == {}
