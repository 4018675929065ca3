"""SQLAlchemy Core tables. Alembic migrations are the source of truth for the schema;
these declarations mirror them for queries (a test checks they agree)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from domain.storage import CASH_SCALE, EXEC_PRICE_SCALE, NUMERIC_PRECISION, PRICE_SCALE, QTY_SCALE

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

# Trading core (migration 0004). Quantities carry 9 decimals, prices Quorum sets 4, executed and
# average prices 9, cash amounts and fees 4.


def _numeric(scale: int) -> Numeric[Decimal]:
    return Numeric(NUMERIC_PRECISION, scale)


def _ts(name: str, **kw: Any) -> Column[Any]:
    return Column(name, DateTime(timezone=True), **kw)


events = Table(
    "events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("scope", String(80), nullable=False),
    _ts("at", nullable=False),
    Column("type", String(40), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("cycle_id", Text),
    Column("symbol", String(16)),
    Column("payload", JSONB, nullable=False, server_default="{}"),
)

cycles = Table(
    "cycles",
    metadata,
    Column("id", Text, primary_key=True),
    Column("scope", String(80), nullable=False),
    Column("kind", String(32), nullable=False),
    _ts("as_of", nullable=False),
    Column("status", String(32), nullable=False),
    Column("symbol", String(16)),
    Column("summary", JSONB, nullable=False, server_default="{}"),
    Column("error", Text),
    _ts("started_at", nullable=False, server_default=func.now()),
    _ts("updated_at", nullable=False, server_default=func.now()),
)

orders = Table(
    "orders",
    metadata,
    Column("client_order_id", Text, primary_key=True),
    Column("scope", String(80), nullable=False),
    Column("cycle_id", Text),
    Column("shadow", Boolean, nullable=False, server_default=false()),
    Column("symbol", String(16), nullable=False),
    Column("side", String(8), nullable=False),
    Column("qty", _numeric(QTY_SCALE), nullable=False),
    Column("type", String(16), nullable=False),
    Column("limit_price", _numeric(PRICE_SCALE)),
    Column("stop_price", _numeric(PRICE_SCALE)),
    Column("take_profit_price", _numeric(PRICE_SCALE)),
    Column("time_in_force", String(8), nullable=False),
    Column("fractional", Boolean, nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("broker_order_id", Text, nullable=False),
    Column("status", String(32), nullable=False),
    _ts("submitted_at", nullable=False),
    Column("filled_qty", _numeric(QTY_SCALE), nullable=False, server_default="0"),
    Column("filled_avg_price", _numeric(EXEC_PRICE_SCALE)),
    _ts("updated_at", nullable=False, server_default=func.now()),
)

fills = Table(
    "fills",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("scope", String(80), nullable=False),
    Column("cycle_id", Text),
    Column("shadow", Boolean, nullable=False, server_default=false()),
    Column("client_order_id", Text, nullable=False),
    Column("symbol", String(16), nullable=False),
    Column("side", String(8), nullable=False),
    Column("qty", _numeric(QTY_SCALE), nullable=False),
    Column("price", _numeric(EXEC_PRICE_SCALE), nullable=False),
    Column("fee", _numeric(CASH_SCALE), nullable=False),
    _ts("at", nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    UniqueConstraint("client_order_id", "at", "qty", "price", name="uq_fills_order_at_qty_price"),
)

positions = Table(
    "positions",
    metadata,
    Column("scope", String(80), primary_key=True),
    Column("symbol", String(16), primary_key=True),
    Column("qty", _numeric(QTY_SCALE), nullable=False),
    Column("avg_entry_price", _numeric(EXEC_PRICE_SCALE), nullable=False),
    Column("stop_price", _numeric(PRICE_SCALE)),
    _ts("opened_at"),
    Column("fractional", Boolean, nullable=False, server_default=false()),
)

equity_points = Table(
    "equity_points",
    metadata,
    Column("scope", String(80), primary_key=True),
    _ts("at", primary_key=True),
    Column("equity", _numeric(CASH_SCALE), nullable=False),
    Column("cash", _numeric(CASH_SCALE), nullable=False),
    Column("exposure", _numeric(CASH_SCALE), nullable=False),
    Column("net_deposits", _numeric(CASH_SCALE), nullable=False, server_default="0"),
)

state_documents = Table(
    "state_documents",
    metadata,
    Column("scope", String(80), primary_key=True),
    Column("name", String(120), primary_key=True),
    Column("value", JSONB, nullable=False),
    _ts("updated_at", nullable=False),
)

llm_calls = Table(
    "llm_calls",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    _ts("at", nullable=False),
    Column("scope", String(80), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("model", String(120), nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("cycle_id", Text),
    Column("error", Text),
    Column("request_hash", String(128)),
)

# Alerts (migration 0005): one row per (alert, channel), written before delivery is attempted.
ALERT_STATUSES = ("pending", "delivered", "undeliverable")

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("scope", String(80), nullable=False),
    _ts("at", nullable=False),
    Column("type", String(40), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("fields", JSONB, nullable=False, server_default="{}"),
    Column("channel", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("event_id", BigInteger),
    Column("dedupe_key", String(200)),
    _ts("updated_at", nullable=False),
    CheckConstraint("status IN ('pending', 'delivered', 'undeliverable')", name="ck_alerts_status"),
)

# Typed trading state (migration 0006): one `trading_state` row per scope; its open trades, pending entries and
# re-entry cooldowns hang off it and go with it (ON DELETE CASCADE), so a save is delete-then-insert.


def _state_scope(**kw: Any) -> Column[Any]:
    return Column("scope", String(80), ForeignKey("trading_state.scope", ondelete="CASCADE"), nullable=False, **kw)


trading_state = Table(
    "trading_state",
    metadata,
    Column("scope", String(80), primary_key=True),
    _ts("fill_since"),
    Column("fill_seen", ARRAY(Text), nullable=False, server_default="{}"),
    Column("day", Date),
    Column("day_equity", _numeric(CASH_SCALE)),
    Column("day_source", Text),
    Column("paused", Boolean, nullable=False, server_default=false()),
    Column("paused_by", Text, nullable=False, server_default=""),
    Column("pause_reason", Text, nullable=False, server_default=""),
    _ts("control_at"),
    _ts("updated_at", nullable=False),
    CheckConstraint("fill_since IS NOT NULL OR cardinality(fill_seen) = 0", name="ck_trading_state_fill_cursor"),
    CheckConstraint("(day IS NULL) = (day_equity IS NULL) AND (day IS NULL) = (day_source IS NULL)",
                    name="ck_trading_state_day_start"),
)

open_trades = Table(
    "open_trades",
    metadata,
    _state_scope(primary_key=True),
    Column("symbol", String(16), primary_key=True),
    Column("qty", _numeric(QTY_SCALE), nullable=False),
    Column("entry_price", _numeric(EXEC_PRICE_SCALE), nullable=False),
    _ts("opened_at", nullable=False),
    Column("stop_price", _numeric(PRICE_SCALE)),
    Column("take_profit_price", _numeric(PRICE_SCALE)),
    Column("stop_keeper", String(16), nullable=False),
    Column("entry_client_order_id", Text, nullable=False),
    Column("entry_broker_order_id", Text),
    Column("leg_ids", ARRAY(Text), nullable=False, server_default="{}"),
    Column("memory_id", BigInteger),
    Column("cycle_id", Text),
    Column("adopted", Boolean, nullable=False, server_default=false()),
    CheckConstraint("stop_keeper IN ('broker', 'quorum')", name="ck_open_trades_stop_keeper"),
)

pending_entries = Table(
    "pending_entries",
    metadata,
    Column("client_order_id", Text, primary_key=True),
    _state_scope(),
    Column("symbol", String(16), nullable=False),
    Column("qty", _numeric(QTY_SCALE), nullable=False),
    Column("stop_price", _numeric(PRICE_SCALE)),
    Column("take_profit_price", _numeric(PRICE_SCALE)),
    Column("fractional", Boolean, nullable=False),
    _ts("submitted_at", nullable=False),
    Column("cycle_id", Text),
    Column("broker_order_id", Text),
    Column("setup", Text, nullable=False, server_default=""),
    Column("reasoning", Text, nullable=False, server_default=""),
    Index("ix_pending_entries_scope", "scope"),
)

reentry_cooldowns = Table(
    "reentry_cooldowns",
    metadata,
    _state_scope(primary_key=True),
    Column("symbol", String(16), primary_key=True),
    _ts("until", nullable=False),
)

# Eval runs (migration 0007): one row per stored run of `quorum evals`, with the gate's verdict.
eval_runs = Table(
    "eval_runs",
    metadata,
    Column("id", String(120), primary_key=True),
    Column("scope", String(80), nullable=False),
    _ts("at", nullable=False),
    Column("kind", String(16), nullable=False),
    Column("baseline_key", String(64), nullable=False),
    Column("llm", Text, nullable=False),
    Column("git_sha", String(64)),
    Column("verdict", String(16), nullable=False),
    Column("document", JSONB, nullable=False),
    Column("comparison", JSONB, nullable=False, server_default="{}"),
    CheckConstraint("kind IN ('nightly', 'ci', 'manual', 'baseline')", name="ck_eval_runs_kind"),
    CheckConstraint("verdict IN ('ok', 'noise', 'regression', 'refused', 'no_baseline')", name="ck_eval_runs_verdict"),
    Index("ix_eval_runs_scope_at", "scope", "at"),
    Index("ix_eval_runs_scope_key_kind_at", "scope", "baseline_key", "kind", "at"),
)

# Event embeddings (migration 0009): the event-log entries the chat's event search finds by meaning, one row per
# indexed event, removed with its event.
event_embeddings = Table(
    "event_embeddings",
    metadata,
    Column("event_id", BigInteger, ForeignKey("events.id", ondelete="CASCADE"), primary_key=True,
           autoincrement=False),
    Column("scope", String(80), nullable=False),
    _ts("at", nullable=False),
    Column("type", String(40), nullable=False),
    Column("cycle_id", Text),
    Column("symbol", String(16)),
    Column("text", Text, nullable=False),
    Column("embedding", Vector(EMBEDDING_DIM), nullable=False),
    Column("model", String(120), nullable=False),
    _ts("created_at", nullable=False, server_default=func.now()),
    CheckConstraint("length(btrim(text)) > 0", name="event_embeddings_text_not_empty"),
    Index("ix_event_embeddings_scope_at", "scope", "at"),
    Index("ix_event_embeddings_scope_event_id", "scope", "event_id"),
)
