"""SQLAlchemy Core tables. Alembic migrations are the source of truth for the schema;
these declarations mirror them for queries (a test checks they agree)."""

from __future__ import annotations

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

EMBEDDING_DIM = 384
metadata = MetaData()


def _embedding_table(name: str, *extra: Column) -> Table:  # type: ignore[type-arg]
    return Table(
        name,
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("scope", String(80), nullable=False),
        Column("symbol", String(16)),
        Column("action", String(8)),
        Column("outcome", String(16)),
        Column("return_pct", Float),
        Column("as_of", DateTime(timezone=True), nullable=False),
        Column("outcome_at", DateTime(timezone=True)),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("text", Text, nullable=False),
        Column("embedding", Vector(EMBEDDING_DIM), nullable=False),
        Column("model", String(120), nullable=False),
        Column("metadata", JSONB, nullable=False, server_default="{}"),
        *extra,
    )


trade_embeddings = _embedding_table("trade_embeddings", Column("cycle_id", String(64)))
condition_embeddings = _embedding_table("condition_embeddings")
symbol_context_embeddings = _embedding_table("symbol_context_embeddings", Column("source", String(40)))

discovered_symbols = Table(
    "discovered_symbols",
    metadata,
    Column("symbol", String(16), primary_key=True),
    Column("name", Text, nullable=False, server_default=""),
    Column("exchange", String(16)),
    Column("asset_class", String(16), nullable=False, server_default="us_equity"),
    Column("tradable", Boolean, nullable=False),
    Column("shortable", Boolean, nullable=False),
    Column("fractionable", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("sector", String(64)),
    Column("market_cap", Float),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
)

watchlist = Table(
    "watchlist",
    metadata,
    Column("scope", String(80), primary_key=True),
    Column("symbol", String(16), primary_key=True),
    Column("source", String(16), nullable=False),
    Column("score", Float),
    Column("reason", Text, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

watchlist_changes = Table(
    "watchlist_changes",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("scope", String(80), nullable=False),
    Column("symbol", String(16), nullable=False),
    Column("change", String(8), nullable=False),
    Column("source", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

discovery_runs = Table(
    "discovery_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("scope", String(80), nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("pickers", JSONB, nullable=False),
    Column("universe_size", Integer, nullable=False),
    Column("stats", JSONB, nullable=False, server_default="{}"),
)

picker_suggestions = Table(
    "picker_suggestions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("scope", String(80), nullable=False),
    Column("picker", String(16), nullable=False),
    Column("symbol", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("rank", Integer, nullable=False),
    Column("reasons", JSONB, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("entry_price", Numeric(18, 4)),
    Column("fwd_return_1d", Float),
    Column("fwd_return_5d", Float),
    Column("fwd_return_20d", Float),
    Column("universe_return_1d", Float),
    Column("universe_return_5d", Float),
    Column("universe_return_20d", Float),
)
