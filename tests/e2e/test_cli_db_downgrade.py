"""`quorum db downgrade`, the real CLI as a subprocess on a database of its own: nothing happens without the typed
revision (or --yes); with it, a backup holding the tables about to be dropped is written first; a backup that
fails stops the downgrade."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, pool, text

from adapters.postgres import migrate
from adapters.postgres.embedded import pg_bin

pytestmark = [pytest.mark.integration]

TARGET = "0009"  # before the Chainlit tables of 0010 (and whatever later migrations add)


@pytest.fixture
def database(pg_url: str) -> Iterator[str]:
    """The URL of a new database of this test's own, migrated to head."""
    query = pg_url.partition("?")[2]
    socket_dir = query.split("host=", 1)[1]
    name = "dg_" + uuid.uuid4().hex[:8]
    subprocess.run([str(pg_bin("createdb")), "-h", socket_dir, "-U", "postgres", name], check=True)
    url = f"postgresql+asyncpg://postgres@/{name}?host={socket_dir}"
    migrate.upgrade(url)
    yield url
    subprocess.run([str(pg_bin("dropdb")), "-h", socket_dir, "-U", "postgres", "--if-exists", name], check=False)


def quorum(workdir: Path, url: str, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QUORUM_") and k not in ("DATABASE_URL",
                                                                                              "REDIS_URL")}
    clean.update(DATABASE_URL=url.replace("+asyncpg", ""), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                 QUORUM_DATABASE__EMBEDDED_DIR=str(workdir / "never-used"),
                 QUORUM_SCHEDULE__BACKUP_DIR=str(workdir / "backups"))
    clean.update(env)
    return subprocess.run([sys.executable, "-m", "entrypoints.cli", *args], cwd=workdir, env=clean, input=stdin,
                          capture_output=True, text=True, timeout=300, check=False)


def revision(url: str) -> str | None:
    return migrate.status(url).current_revision


def tables(url: str) -> set[str]:
    engine = create_engine(url.replace("+asyncpg", "+psycopg"), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
    finally:
        engine.dispose()


def dumped_tables(dump: Path) -> set[str]:
    toc = subprocess.run([str(pg_bin("pg_restore")), "--list", str(dump)], capture_output=True, text=True,
                         check=True).stdout
    return {line.split(" TABLE public ", 1)[1].split()[0].strip('"') for line in toc.splitlines()
            if " TABLE public " in line}


@pytest.mark.parametrize("typed", ["", "\n", "0008\n", "yes\n"], ids=["no-input", "empty", "other-revision", "yes"])
def test_without_the_typed_revision_nothing_changes(database: str, tmp_path: Path, typed: str) -> None:
    head = revision(database)
    result = quorum(tmp_path, database, "db", "downgrade", TARGET, stdin=typed)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not confirmed: nothing was changed" in result.stderr
    assert f"type the revision ({TARGET}) to confirm" in result.stdout
    assert revision(database) == head
    assert not (tmp_path / "backups").exists()


def test_the_typed_revision_backs_up_then_downgrades(database: str, tmp_path: Path) -> None:
    assert TARGET in migrate.revisions(database)
    before = tables(database)
    result = quorum(tmp_path, database, "db", "downgrade", TARGET, stdin=f"{TARGET}\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert revision(database) == TARGET
    dropped = before - tables(database)
    assert {"Thread", "Step", "User"} <= dropped
    [dump] = (tmp_path / "backups").glob("quorum-*.dump")
    assert f"backup: {dump}" in result.stdout
    assert dropped <= dumped_tables(dump), "the backup was not taken before the downgrade"


def test_yes_skips_the_question_but_not_the_backup(database: str, tmp_path: Path) -> None:
    result = quorum(tmp_path, database, "db", "downgrade", TARGET, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "to confirm" not in result.stdout
    assert revision(database) == TARGET
    assert len(list((tmp_path / "backups").glob("quorum-*.dump"))) == 1


def test_a_failed_backup_stops_the_downgrade(database: str, tmp_path: Path) -> None:
    head = revision(database)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the backup directory should be")
    result = quorum(tmp_path, database, "db", "downgrade", TARGET, "--yes",
                    QUORUM_SCHEDULE__BACKUP_DIR=str(blocker / "backups"))
    assert result.returncode == 1
    assert "backup failed, nothing was downgraded" in result.stderr
    assert "Traceback" not in result.stderr
    assert revision(database) == head


def test_an_unknown_revision_is_refused_before_anything(database: str, tmp_path: Path) -> None:
    result = quorum(tmp_path, database, "db", "downgrade", "nope", "--yes")
    assert result.returncode == 2
    assert "unknown revision 'nope'" in result.stderr
    assert not (tmp_path / "backups").exists()
