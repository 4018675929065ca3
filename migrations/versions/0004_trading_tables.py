"""Trading core: event log, cycles, orders, fills, positions, equity, state documents and LLM calls.

Quantities are NUMERIC(20, 9) (fractional shares to 1e-9), prices Quorum sets are NUMERIC(20, 4),
executed and average prices NUMERIC(20, 9), cash amounts and fees NUMERIC(20, 4): Decimal in, the
same Decimal out.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

QTY = sa.Numeric(20, 9)
EXEC_PRICE = sa.Numeric(20, 9)
PRICE = sa.Numeric(20, 4)
CASH = sa.Numeric(20, 4)


def _ts(name: str, **kw: object) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), **kw)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(80), nullable=False),
        _ts("at", nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("cycle_id", sa.Text),
        sa.Column("symbol", sa.String(16)),
        sa.Column("payload", JSONB, nullable=False, server_default="{}"),
    )
    op.create_index("ix_events_scope_at", "events", ["scope", sa.text("at DESC")])
    op.create_index("ix_events_scope_type", "events", ["scope", "type"])
    op.create_index("ix_events_cycle_id", "events", ["cycle_id"])

    op.create_table(
        "cycles",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("scope", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        _ts("as_of", nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(16)),
        sa.Column("summary", JSONB, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text),
        _ts("started_at", nullable=False, server_default=sa.func.now()),
        _ts("updated_at", nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_cycles_scope_as_of", "cycles", ["scope", sa.text("as_of DESC")])

    op.create_table(
        "orders",
        sa.Column("client_order_id", sa.Text, primary_key=True),
        sa.Column("scope", sa.String(80), nullable=False),
        sa.Column("cycle_id", sa.Text),
        sa.Column("shadow", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("qty", QTY, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("limit_price", PRICE),
        sa.Column("stop_price", PRICE),
        sa.Column("take_profit_price", PRICE),
        sa.Column("time_in_force", sa.String(8), nullable=False),
        sa.Column("fractional", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("broker_order_id", sa.Text, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        _ts("submitted_at", nullable=False),
        sa.Column("filled_qty", QTY, nullable=False, server_default="0"),
        sa.Column("filled_avg_price", EXEC_PRICE),
        _ts("updated_at", nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_orders_scope_submitted_at", "orders", ["scope", sa.text("submitted_at DESC")])
    op.create_index("ix_orders_cycle_id", "orders", ["cycle_id"])

    op.create_table(
        "fills",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(80), nullable=False),
        sa.Column("cycle_id", sa.Text),
        sa.Column("shadow", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("client_order_id", sa.Text, nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("qty", QTY, nullable=False),
        sa.Column("price", EXEC_PRICE, nullable=False),
        sa.Column("fee", CASH, nullable=False),
        _ts("at", nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("client_order_id", "at", "qty", "price", name="uq_fills_order_at_qty_price"),
    )
    op.create_index("ix_fills_scope_at", "fills", ["scope", "at"])

    op.create_table(
        "positions",
        sa.Column("scope", sa.String(80), primary_key=True),
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("qty", QTY, nullable=False),
        sa.Column("avg_entry_price", EXEC_PRICE, nullable=False),
        sa.Column("stop_price", PRICE),
        _ts("opened_at"),
        sa.Column("fractional", sa.Boolean, nullable=False, server_default=sa.false()),
    )

    op.create_table(
        "equity_points",
        sa.Column("scope", sa.String(80), primary_key=True),
        _ts("at", primary_key=True),
        sa.Column("equity", CASH, nullable=False),
        sa.Column("cash", CASH, nullable=False),
        sa.Column("exposure", CASH, nullable=False),
        sa.Column("net_deposits", CASH, nullable=False, server_default="0"),
    )

    op.create_table(
        "state_documents",
        sa.Column("scope", sa.String(80), primary_key=True),
        sa.Column("name", sa.String(120), primary_key=True),
        sa.Column("value", JSONB, nullable=False),
        _ts("updated_at", nullable=False),
    )

    op.create_table(
        "llm_calls",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        _ts("at", nullable=False),
        sa.Column("scope", sa.String(80), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("cycle_id", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("request_hash", sa.String(128)),
    )
    op.create_index("ix_llm_calls_scope_at", "llm_calls", ["scope", "at"])


def downgrade() -> None:
    op.drop_table("llm_calls")
    op.drop_table("state_documents")
    op.drop_table("equity_points")
    op.drop_table("positions")
    op.drop_table("fills")
    op.drop_table("orders")
    op.drop_table("cycles")
    op.drop_table("events")
