"""Discovered symbols, watchlist (with its change log), discovery runs and picker suggestions.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "discovered_symbols",
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("exchange", sa.String(16)),
        sa.Column("asset_class", sa.String(16), nullable=False, server_default="us_equity"),
        sa.Column("tradable", sa.Boolean, nullable=False),
        sa.Column("shortable", sa.Boolean, nullable=False),
        sa.Column("fractionable", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sector", sa.String(64)),
        sa.Column("market_cap", sa.Float),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "watchlist",
        sa.Column("scope", sa.String(80), primary_key=True),
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("source IN ('manual', 'discovered')", name="watchlist_source_known"),
    )
    op.create_table(
        "watchlist_changes",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(80), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("change", sa.String(8), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_watchlist_changes_scope_at", "watchlist_changes", ["scope", "at"])
    op.create_table(
        "discovery_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(80), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pickers", JSONB, nullable=False),
        sa.Column("universe_size", sa.Integer, nullable=False),
        sa.Column("stats", JSONB, nullable=False, server_default="{}"),
    )
    op.create_table(
        "picker_suggestions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(80), nullable=False),
        sa.Column("picker", sa.String(16), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("reasons", JSONB, nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entry_price", sa.Numeric(18, 4)),
        sa.Column("fwd_return_1d", sa.Float),
        sa.Column("fwd_return_5d", sa.Float),
        sa.Column("fwd_return_20d", sa.Float),
        sa.Column("universe_return_1d", sa.Float),
        sa.Column("universe_return_5d", sa.Float),
        sa.Column("universe_return_20d", sa.Float),
        sa.CheckConstraint("score >= 0 AND score <= 1", name="picker_suggestions_score_range"),
    )
    op.create_index("ix_picker_suggestions_scope_as_of", "picker_suggestions", ["scope", "as_of"])
    op.create_index("ix_picker_suggestions_run", "picker_suggestions", ["run_id"])


def downgrade() -> None:
    op.drop_table("picker_suggestions")
    op.drop_table("discovery_runs")
    op.drop_table("watchlist_changes")
    op.drop_table("watchlist")
    op.drop_table("discovered_symbols")
