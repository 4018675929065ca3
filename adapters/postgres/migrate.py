"""Alembic migrations driven from code (`quorum db upgrade|downgrade|status`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool, text

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def _sync_url(url: str) -> str:
    return url.replace("+asyncpg", "+psycopg")


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the project's migrations and `url`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Revert migrations down to `revision` (`base` removes everything)."""
    command.downgrade(alembic_config(url), revision)


def revisions(url: str) -> list[str]:
    """All revision ids, oldest first."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


@dataclass(frozen=True)
class DatabaseStatus:
    """What `quorum db status` reports."""

    server_version: str
    current_revision: str | None
    head_revision: str
    vector_version: str | None

    @property
    def at_head(self) -> bool:
        """Whether every migration has been applied."""
        return self.current_revision == self.head_revision


def status(url: str) -> DatabaseStatus:
    """Server version, applied and head revisions, and the vector extension version."""
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    engine = create_engine(_sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            version = conn.execute(text("SHOW server_version")).scalar_one()
            vector = conn.execute(
                text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            ).scalar_one_or_none()
    finally:
        engine.dispose()
    return DatabaseStatus(str(version), current, str(head), vector)
