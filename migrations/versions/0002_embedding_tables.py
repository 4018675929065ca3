"""Trade, market-condition and symbol-context embeddings with HNSW cosine indexes.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = {
    "trade_embeddings": [sa.Column("cycle_id", sa.String(64))],
    "condition_embeddings": [],
    "symbol_context_embeddings": [sa.Column("source", sa.String(40))],
}


def upgrade() -> None:
    for name, extra in TABLES.items():
        op.create_table(
            name,
            sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
            sa.Column("scope", sa.String(80), nullable=False),
            sa.Column("symbol", sa.String(16)),
            sa.Column("action", sa.String(8)),
            sa.Column("outcome", sa.String(16)),
            sa.Column("return_pct", sa.Float),
            sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
            sa.Column("outcome_at", sa.DateTime(timezone=True)),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("embedding", Vector(384), nullable=False),
            sa.Column("model", sa.String(120), nullable=False),
            sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
            *extra,
            sa.CheckConstraint("length(btrim(text)) > 0", name=f"{name}_text_not_empty"),
        )
        op.create_index(f"ix_{name}_scope_as_of", name, ["scope", "as_of"])
        op.create_index(f"ix_{name}_scope_symbol", name, ["scope", "symbol", "as_of"])
        op.execute(
            f"CREATE INDEX ix_{name}_embedding_hnsw ON {name} "
            "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )


def downgrade() -> None:
    for name in reversed(list(TABLES)):
        op.drop_table(name)
