"""Alerts: one row per (alert, channel) with its delivery state.

A row is written as 'pending' before delivery is attempted and updated to 'delivered' or
'undeliverable' afterwards, so no alert is ever lost.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("fields", JSONB, nullable=False, server_default="{}"),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("event_id", sa.BigInteger),
        sa.Column("dedupe_key", sa.String(200)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'undeliverable')", name="ck_alerts_status"),
    )
    op.create_index("ix_alerts_scope_at", "alerts", ["scope", sa.text("at DESC")])
    op.create_index("ix_alerts_scope_status_updated_at", "alerts", ["scope", "status", "updated_at"])
    op.create_index("ix_alerts_scope_dedupe_key_channel", "alerts", ["scope", "dedupe_key", "channel"])


def downgrade() -> None:
    op.drop_index("ix_alerts_scope_dedupe_key_channel", table_name="alerts")
    op.drop_index("ix_alerts_scope_status_updated_at", table_name="alerts")
    op.drop_index("ix_alerts_scope_at", table_name="alerts")
    op.drop_table("alerts")
