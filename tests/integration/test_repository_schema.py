"""The Core tables of adapters/postgres/tables.py match what the migrations create.

The declarations are created in a scratch schema of the migrated test database (inside a
transaction that is rolled back), then both versions of every declared table are reflected with
SQLAlchemy's inspector and compared column by column: name, type as PostgreSQL reports it,
nullability, presence of a server default, primary key and unique constraints.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, inspect, pool, text
from sqlalchemy.dialects import postgresql

from adapters.postgres.tables import metadata

pytestmark = pytest.mark.integration

DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def sync_engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url.replace("+asyncpg", "+psycopg"), poolclass=pool.NullPool)
    yield engine
    engine.dispose()


def describe(conn: Connection, table: str, schema: str) -> dict[str, Any]:
    """What the inspector sees of `schema.table`."""
    insp = inspect(conn)
    return {
        "columns": {
            c["name"]: (c["type"].compile(dialect=DIALECT), c["nullable"], c.get("default") is not None)
            for c in insp.get_columns(table, schema=schema)
        },
        "primary_key": insp.get_pk_constraint(table, schema=schema)["constrained_columns"],
        "unique": sorted(
            (u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table, schema=schema)
        ),
    }


def create_declared_tables(conn: Connection) -> str:
    """Create every table of tables.py in a new scratch schema; returns its name (the caller rolls back)."""
    scratch = "declared_" + uuid.uuid4().hex[:8]
    conn.execute(text(f"CREATE SCHEMA {scratch}"))
    metadata.create_all(conn.execution_options(schema_translate_map={None: scratch}))
    return scratch


def test_declared_tables_match_the_migrated_schema(sync_engine: Engine) -> None:
    declared_tables = sorted(metadata.tables)
    assert {"events", "orders", "fills", "positions", "equity_points", "cycles", "state_documents", "llm_calls"} <= set(
        declared_tables
    )
    with sync_engine.connect() as conn:
        try:
            migrated_tables = set(inspect(conn).get_table_names(schema="public"))
            missing = sorted(set(declared_tables) - migrated_tables)
            assert not missing, f"declared in tables.py but created by no migration: {missing}"
            scratch = create_declared_tables(conn)
            differences = {}
            for name in declared_tables:
                migrated = describe(conn, name, "public")
                declared = describe(conn, name, scratch)
                if migrated != declared:
                    differences[name] = _diff(migrated, declared)
        finally:
            conn.rollback()
    assert differences == {}, "tables.py and the migrations disagree (migrated vs declared): " + repr(differences)


def _diff(migrated: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    m_cols, d_cols = migrated["columns"], declared["columns"]
    for col in sorted(set(m_cols) | set(d_cols)):
        if m_cols.get(col) != d_cols.get(col):
            out[col] = (m_cols.get(col), d_cols.get(col))
    for key in ("primary_key", "unique"):
        if migrated[key] != declared[key]:
            out[key] = (migrated[key], declared[key])
    return out


def test_the_comparison_reports_a_drifted_column(sync_engine: Engine) -> None:
    """The check can fail: a scale, a nullability and a unique constraint changed on a copy are all reported."""
    with sync_engine.connect() as conn:
        try:
            scratch = create_declared_tables(conn)
            conn.execute(text(f"ALTER TABLE {scratch}.fills ALTER COLUMN price TYPE numeric(20, 4)"))
            conn.execute(text(f"ALTER TABLE {scratch}.fills ALTER COLUMN cycle_id SET NOT NULL"))
            conn.execute(text(f"ALTER TABLE {scratch}.fills DROP CONSTRAINT uq_fills_order_at_qty_price"))
            diff = _diff(describe(conn, "fills", "public"), describe(conn, "fills", scratch))
        finally:
            conn.rollback()
    assert diff == {
        "price": (("NUMERIC(20, 9)", False, False), ("NUMERIC(20, 4)", False, False)),
        "cycle_id": (("TEXT", True, False), ("TEXT", False, False)),
        "unique": ([("uq_fills_order_at_qty_price", ("client_order_id", "at", "qty", "price"))], []),
    }
