"""Every migration upgrades and downgrades cleanly on a real PostgreSQL + pgvector database, and 0006 carries the
trading documents over to typed rows and back."""

from __future__ import annotations

import json
import logging
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pgvector.sqlalchemy import Vector
from sqlalchemy import create_engine, pool, text

from adapters.postgres import migrate
from adapters.postgres.embedded import pg_bin
from adapters.postgres.tables import metadata
from domain.trading_state import (
    ControlState,
    DayStart,
    FillCursor,
    OpenTrade,
    PendingEntry,
    StopKeeper,
    TradingState,
)

pytestmark = pytest.mark.integration

EMBEDDING_TABLES = {"trade_embeddings", "condition_embeddings", "symbol_context_embeddings"}
DISCOVERY_TABLES = {"discovered_symbols", "watchlist", "watchlist_changes", "discovery_runs", "picker_suggestions"}
TRADING_STATE_TABLES = {"trading_state", "open_trades", "pending_entries", "reentry_cooldowns"}
CHAINLIT_TABLES = {"User", "Thread", "Step", "Element", "Feedback"}  # the chat's history (chainlit==2.12.0)
CHAT_VIEWS = {f"chat.{v}" for v in ("trades", "fills", "decisions", "events", "positions_history", "discovery",
                                    "llm_calls", "evals")}  # the chat's SQL executor reads these (schema chat)
REPORTING_VIEWS = {"reporting.equity", "reporting.trades"}  # Grafana reads these as quorum_grafana (schema reporting)
# What each known revision must have created (other revisions are checked by the generic round trip only).
CREATED_BY = {"0001": set(), "0002": EMBEDDING_TABLES, "0003": DISCOVERY_TABLES, "0006": TRADING_STATE_TABLES,
              "0008": CHAT_VIEWS, "0010": CHAINLIT_TABLES, "0011": REPORTING_VIEWS}


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


@contextmanager
def new_database(pg_url: str) -> Iterator[str]:
    """A database of its own on the test server, with no migration applied, dropped afterwards."""
    base, query = _psql_parts(pg_url)
    socket_dir = query.split("host=", 1)[1]
    name = "migrations_" + uuid.uuid4().hex[:8]
    subprocess.run([str(pg_bin("createdb")), "-h", socket_dir, "-U", "postgres", name], check=True)
    try:
        yield f"{base}/{name}?{query}"
    finally:
        subprocess.run([str(pg_bin("dropdb")), "-h", socket_dir, "-U", "postgres", "--if-exists", "--force", name],
                       check=False)


@pytest.fixture(scope="module")
def empty_db_url(pg_url: str) -> Iterator[str]:
    """A database of its own with no migration applied (the schema walk)."""
    with new_database(pg_url) as url:
        yield url


def snapshot(url: str) -> Schema:
    engine = create_engine(url.replace("+asyncpg", "+psycopg"), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            extensions = conn.execute(text("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'")).scalars()
            columns = conn.execute(text(
                "SELECT CASE WHEN table_schema = 'public' THEN table_name ELSE table_schema || '.' || table_name END, "
                "column_name, data_type || coalesce('(' || udt_name || ')', ''), is_nullable "
                "FROM information_schema.columns WHERE table_schema IN ('public', 'chat', 'reporting') "
                "AND table_name <> 'alembic_version'"
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


# --- 0006: the trading documents become typed rows, and back ----------------------------------------------

S1, S2 = "live", "paper"
ENTRY_AT = "2024-03-04T14:31:15.250000+00:00"
SINCE = "2024-03-05T15:00:00+00:00"
OLD_DOCUMENTS: dict[tuple[str, str], dict[str, Any]] = {
    (S1, "open_trades"): {
        "AAPL": {"entry_price": "180.25", "entry_at": ENTRY_AT, "memory_index": None, "stop_price": "171.24",
                 "client_order_id": "q-c1-AAPL", "memory_id": 42},
        "MSFT": {"entry_price": "410.123456789", "entry_at": SINCE, "memory_index": None, "stop_price": None,
                 "client_order_id": "q-c2-MSFT"},
        "TSLA": {"entry_price": "200", "entry_at": ENTRY_AT, "memory_index": None, "stop_price": "190",
                 "client_order_id": "q-c1-TSLA"},
    },
    (S1, "fill_sync"): {"since": SINCE, "keys": ["q-c2-MSFT|t|0.5|410.1", "q-c1-AAPL|t|10|180.25"]},
    (S1, "day"): {"day": "2024-03-05", "start_equity": "650.12"},
    (S1, "control"): {"paused": True, "by": "operator", "reason": "earnings week", "at": SINCE},
    (S2, "control"): {"paused": False, "by": "operator", "reason": "", "at": ENTRY_AT},
}
UNRELATED = (S1, "breaker"), {"state": "closed"}
# TSLA has no position row any more: its open trade is dropped by the upgrade (and so absent after downgrade).
AFTER_DOWNGRADE = {**OLD_DOCUMENTS, (S1, "open_trades"): {
    s: t for s, t in OLD_DOCUMENTS[(S1, "open_trades")].items() if s != "TSLA"}, UNRELATED[0]: UNRELATED[1]}


def write_at_0005(url: str) -> None:
    """Positions, one recorded entry order and the documents, as Quorum wrote them before 0006."""
    engine = create_engine(url.replace("+asyncpg", "+psycopg"), poolclass=pool.NullPool)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO positions (scope, symbol, qty, avg_entry_price, fractional) VALUES "
                          "(:s, 'AAPL', 10, 180.25, false), (:s, 'MSFT', 0.5, 410.123456789, true)"), {"s": S1})
        conn.execute(text(
            "INSERT INTO orders (client_order_id, scope, cycle_id, symbol, side, qty, type, time_in_force, fractional, "
            "broker_order_id, status, submitted_at) VALUES ('q-c1-AAPL', :s, 'c1', 'AAPL', 'buy', 10, 'market', "
            "'day', false, 'b-aapl', 'filled', :at)"), {"s": S1, "at": datetime.fromisoformat(ENTRY_AT)})
        for (scope, name), value in [*OLD_DOCUMENTS.items(), UNRELATED]:
            conn.execute(text("INSERT INTO state_documents (scope, name, value, updated_at) "
                              "VALUES (:scope, :name, CAST(:value AS jsonb), now())"),
                         {"scope": scope, "name": name, "value": json.dumps(value)})
    engine.dispose()


def documents(url: str) -> dict[tuple[str, str], Any]:
    engine = create_engine(url.replace("+asyncpg", "+psycopg"), poolclass=pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT scope, name, value FROM state_documents")).all()
    engine.dispose()
    return {(scope, name): value for scope, name, value in rows}


def typed_state_of_the_old_documents() -> dict[str, TradingState]:
    since, entry_at = datetime.fromisoformat(SINCE), datetime.fromisoformat(ENTRY_AT)
    aapl = OpenTrade("AAPL", Decimal(10), Decimal("180.25"), entry_at, Decimal("171.24"), None, StopKeeper.BROKER,
                     "q-c1-AAPL", entry_broker_order_id="b-aapl", memory_id=42, cycle_id="c1")
    msft = OpenTrade("MSFT", Decimal("0.5"), Decimal("410.123456789"), since, None, None, StopKeeper.QUORUM,
                     "q-c2-MSFT")
    return {
        S1: TradingState(
            open_trades={"AAPL": aapl, "MSFT": msft},
            fill_cursor=FillCursor(since, ("q-c2-MSFT|t|0.5|410.1", "q-c1-AAPL|t|10|180.25")),
            day_start=DayStart(date(2024, 3, 5), Decimal("650.12"), "first_cycle"),
            control=ControlState(True, "operator", "earnings week", since),
        ),
        S2: TradingState(control=ControlState(False, "operator", "", entry_at)),
    }


async def load_states(url: str, *scopes: str) -> dict[str, TradingState]:
    from adapters.inmemory.hashing_embedder import HashingEmbedder
    from adapters.postgres.engine import make_engine, make_sessionmaker
    from adapters.postgres.uow import PgUnitOfWork

    engine = make_engine(url)
    try:
        async with PgUnitOfWork(make_sessionmaker(engine), HashingEmbedder()) as uow:
            return {scope: await uow.trading.load(scope) for scope in scopes}
    finally:
        await engine.dispose()


async def add_pending_entry(url: str) -> None:
    from adapters.inmemory.hashing_embedder import HashingEmbedder
    from adapters.postgres.engine import make_engine, make_sessionmaker
    from adapters.postgres.uow import PgUnitOfWork

    engine = make_engine(url)
    try:
        async with PgUnitOfWork(make_sessionmaker(engine), HashingEmbedder()) as uow:
            state = await uow.trading.load(S2)
            entry = PendingEntry("q-c3-NVDA", "NVDA", Decimal(1), Decimal(800), None, False, datetime.now(UTC))
            await uow.trading.save(S2, state.with_pending(entry), at=datetime.now(UTC))
            await uow.commit()
    finally:
        await engine.dispose()


async def test_0006_turns_the_trading_documents_into_typed_state_and_back(
        pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with new_database(pg_url) as url:
        migrate.upgrade(url, "0005")
        write_at_0005(url)
        with caplog.at_level(logging.WARNING):
            migrate.upgrade(url, "0006")
        assert any("TSLA" in r.getMessage() and "no position" in r.getMessage() for r in caplog.records)
        assert await load_states(url, S1, S2) == typed_state_of_the_old_documents()
        assert documents(url) == {UNRELATED[0]: UNRELATED[1]}      # the four documents are gone, others stay

        migrate.downgrade(url, "0005")
        assert documents(url) == AFTER_DOWNGRADE
        assert not TRADING_STATE_TABLES & snapshot(url).tables

        migrate.upgrade(url, "0006")                                 # and up again: the same typed state
        assert await load_states(url, S1, S2) == typed_state_of_the_old_documents()
        await add_pending_entry(url)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            migrate.downgrade(url, "0005")
        assert any("1 pending entries" in r.getMessage() for r in caplog.records)   # said out loud, not silent
        assert documents(url) == AFTER_DOWNGRADE
