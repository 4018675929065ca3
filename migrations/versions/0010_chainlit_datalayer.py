"""The chat's history: the tables of Chainlit's built-in data layer (chainlit==2.12.0), on our database.

Chainlit ships the SQL it runs (chainlit/data/chainlit_data_layer.py) but no schema. These tables follow its
queries and the chainlit-datalayer project's Prisma schema: text ids, JSONB metadata, TIMESTAMP(3) without
time zone (the data layer writes naive datetimes), the StepType enum. gen_random_uuid() is built into
PostgreSQL 13+, so pgcrypto is not needed. tests/integration/test_chainlit_schema.py holds the installed
package's SQL against this schema: a Chainlit upgrade that needs other columns fails there (docs/chat.md).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

STEP_TYPES = ("assistant_message", "embedding", "llm", "retrieval", "rerank", "run", "system_message", "tool",
              "undefined", "user_message")
_ID = "\"id\" TEXT NOT NULL DEFAULT gen_random_uuid()::text PRIMARY KEY"
_STAMPS = ("\"createdAt\" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "
           "\"updatedAt\" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP")

STATEMENTS = (
    "CREATE TYPE \"StepType\" AS ENUM (" + ", ".join(f"'{t}'" for t in STEP_TYPES) + ")",
    f"""CREATE TABLE "User" (
        {_ID}, {_STAMPS},
        "metadata" JSONB NOT NULL,
        "identifier" TEXT NOT NULL,
        CONSTRAINT "User_identifier_key" UNIQUE ("identifier"))""",
    f"""CREATE TABLE "Thread" (
        {_ID}, {_STAMPS},
        "deletedAt" TIMESTAMP(3),
        "name" TEXT,
        "metadata" JSONB NOT NULL,
        "tags" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
        "userId" TEXT REFERENCES "User" ("id") ON DELETE SET NULL)""",
    'CREATE INDEX "Thread_userId_updatedAt_idx" ON "Thread" ("userId", "updatedAt")',
    f"""CREATE TABLE "Step" (
        {_ID}, {_STAMPS},
        "parentId" TEXT REFERENCES "Step" ("id") ON DELETE CASCADE,
        "threadId" TEXT REFERENCES "Thread" ("id") ON DELETE CASCADE,
        "input" TEXT,
        "metadata" JSONB NOT NULL,
        "name" TEXT,
        "output" TEXT,
        "type" "StepType" NOT NULL,
        "showInput" TEXT DEFAULT 'json',
        "isError" BOOLEAN DEFAULT false,
        "startTime" TIMESTAMP(3) NOT NULL,
        "endTime" TIMESTAMP(3) NOT NULL)""",
    'CREATE INDEX "Step_threadId_startTime_idx" ON "Step" ("threadId", "startTime")',
    'CREATE INDEX "Step_parentId_idx" ON "Step" ("parentId")',
    f"""CREATE TABLE "Element" (
        {_ID}, {_STAMPS},
        "threadId" TEXT REFERENCES "Thread" ("id") ON DELETE CASCADE,
        "stepId" TEXT NOT NULL REFERENCES "Step" ("id") ON DELETE CASCADE,
        "metadata" JSONB NOT NULL,
        "mime" TEXT,
        "name" TEXT NOT NULL,
        "objectKey" TEXT,
        "url" TEXT,
        "chainlitKey" TEXT,
        "display" TEXT,
        "size" TEXT,
        "language" TEXT,
        "page" INTEGER,
        "props" JSONB)""",
    'CREATE INDEX "Element_threadId_idx" ON "Element" ("threadId")',
    'CREATE INDEX "Element_stepId_idx" ON "Element" ("stepId")',
    f"""CREATE TABLE "Feedback" (
        {_ID}, {_STAMPS},
        "stepId" TEXT REFERENCES "Step" ("id") ON DELETE SET NULL,
        "name" TEXT NOT NULL,
        "value" DOUBLE PRECISION NOT NULL,
        "comment" TEXT)""",
    'CREATE INDEX "Feedback_stepId_idx" ON "Feedback" ("stepId")',
)


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for table in ("Feedback", "Element", "Step", "Thread", "User"):
        op.execute(f'DROP TABLE "{table}"')
    op.execute('DROP TYPE "StepType"')
