"""Eval runs: one row per stored run of the evals (nightly, CI, manual, baseline) with the gate's verdict.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("scope", sa.String(80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("baseline_key", sa.String(64), nullable=False),
        sa.Column("llm", sa.Text, nullable=False),
        sa.Column("git_sha", sa.String(64)),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("comparison", JSONB, nullable=False, server_default="{}"),
        sa.CheckConstraint("kind IN ('nightly', 'ci', 'manual', 'baseline')", name="ck_eval_runs_kind"),
        sa.CheckConstraint("verdict IN ('ok', 'noise', 'regression', 'refused', 'no_baseline')",
                           name="ck_eval_runs_verdict"),
    )
    op.create_index("ix_eval_runs_scope_at", "eval_runs", ["scope", "at"])
    op.create_index("ix_eval_runs_scope_key_kind_at", "eval_runs", ["scope", "baseline_key", "kind", "at"])


def downgrade() -> None:
    op.drop_index("ix_eval_runs_scope_key_kind_at", table_name="eval_runs")
    op.drop_index("ix_eval_runs_scope_at", table_name="eval_runs")
    op.drop_table("eval_runs")
