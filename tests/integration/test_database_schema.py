"""A database behind the migrations: the embedded one is upgraded with one line saying so, an external one is
refused with the command to run; and `quorum` itself says it in one line, without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.postgres import migrate
from adapters.postgres.embedded import pg_bin, stop_embedded_server
from domain.errors import DatabaseError
from entrypoints.database_schema import SchemaBehindError, ensure_schema

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def empty_database(pg_url: str) -> Iterator[str]:
    """asyncpg URL of a new database with no migration applied, on the session's server."""
    base, _, query = pg_url.partition("?")
    socket_dir = query.split("host=", 1)[1]
    name = "behind_" + uuid.uuid4().hex[:8]
    subprocess.run([str(pg_bin("createdb")), "-h", socket_dir, "-U", "postgres", name], check=True)
    yield base.rsplit("/", 1)[0] + f"/{name}?{query}"
    subprocess.run([str(pg_bin("dropdb")), "-h", socket_dir, "-U", "postgres", "--if-exists", name], check=False)


def test_an_external_database_behind_is_refused_naming_the_command(empty_database: str) -> None:
    said: list[str] = []
    with pytest.raises(SchemaBehindError, match=r"at migration none, behind .*: run `quorum db upgrade`") as info:
        ensure_schema(empty_database, "external PostgreSQL at test", embedded=False, say=said.append)
    assert info.value.exit_code == 2
    assert migrate.status(empty_database).current_revision is None and said == []


def test_the_embedded_database_is_upgraded_and_says_so_once(empty_database: str) -> None:
    said: list[str] = []
    head = migrate.status(empty_database).head_revision
    migrate.upgrade(empty_database, migrate.revisions(empty_database)[-2])
    ensure_schema(empty_database, "embedded PostgreSQL in /x", embedded=True, say=said.append)
    assert migrate.status(empty_database).at_head
    previous = migrate.revisions(empty_database)[-2]
    assert said == [f"database: upgraded embedded PostgreSQL in /x from migration {previous} to {head}"]
    ensure_schema(empty_database, "embedded PostgreSQL in /x", embedded=True, say=said.append)
    assert len(said) == 1


def test_an_unreachable_database_is_one_database_error(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@/nowhere?host={tmp_path}"
    with pytest.raises(DatabaseError, match=r"^cannot reach external PostgreSQL at test: ") as info:
        ensure_schema(url, "external PostgreSQL at test", embedded=False)
    assert "\n" not in str(info.value)


def quorum(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QUORUM_") and k != "DATABASE_URL"}
    clean.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", QUORUM_NO_DOTENV="1", **env)
    return subprocess.run([sys.executable, "-m", "entrypoints.cli", *args], cwd=ROOT, env=clean, text=True,
                          capture_output=True, timeout=300)


@pytest.mark.slow
def test_quorum_on_an_external_database_behind_exits_2_naming_the_command(empty_database: str,
                                                                          tmp_path: Path) -> None:
    url = empty_database.replace("postgresql+asyncpg://", "postgresql://")
    result = quorum("trading", "status", DATABASE_URL=url, QUORUM_DATA_DIR=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.endswith("run `quorum db upgrade`\n") and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.slow
def test_quorum_upgrades_its_embedded_database_and_carries_on(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    try:
        result = quorum("trading", "status", QUORUM_DATA_DIR=str(tmp_path))
    finally:
        stop_embedded_server(pgdata)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "trading\n"
    upgraded = [line for line in result.stderr.splitlines() if line.startswith("database: upgraded")]
    assert upgraded == [f"database: upgraded embedded PostgreSQL in {pgdata} from migration none to "
                        f"{migrate.revisions('postgresql://x')[-1]}"]
    assert "Traceback" not in result.stderr
