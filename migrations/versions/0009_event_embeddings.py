"""Event embeddings: the event-log entries the chat's event search finds by meaning (HNSW cosine index).

One row per indexed event (`event_id` references the event log and goes with it); `(scope, event_id)` is where
indexing resumes and `(scope, at)` serves the time filters of a search.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_embeddings",
        sa.Column("event_id", sa.BigInteger, sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True,
                  autoincrement=False),
        sa.Column("scope", sa.String(80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("cycle_id", sa.Text),
        sa.Column("symbol", sa.String(16)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("embedding", Vector(384), nullable=False),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("length(btrim(text)) > 0", name="event_embeddings_text_not_empty"),
    )
    op.create_index("ix_event_embeddings_scope_at", "event_embeddings", ["scope", "at"])
    op.create_index("ix_event_embeddings_scope_event_id", "event_embeddings", ["scope", "event_id"])
    op.execute(
        "CREATE INDEX ix_event_embeddings_embedding_hnsw ON event_embeddings "
        "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
    )


def downgrade() -> None:
    op.drop_table("event_embeddings")
