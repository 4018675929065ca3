"""Backups of the real embedded PostgreSQL: pg_dump a migrated database with rows, restore it into a fresh
database and compare every table; retention deletes old dumps; a failing pg_dump leaves no file and no password."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, pool, select, table, text

from adapters.postgres import migrate
from adapters.postgres.backup import backup_database, backup_name, prune_backups, restore_database, verify_backup
from adapters.postgres.embedded import pg_bin
from domain.errors import DatabaseError

pytestmark = [pytest.mark.integration]
NOW = datetime(2024, 3, 6, 7, 0, tzinfo=UTC)


def _socket(pg_url: str) -> str:
    return pg_url.partition("?")[2].split("host=", 1)[1]


@pytest.fixture(scope="module")
def databases(pg_url: str) -> Iterator[tuple[str, str]]:
    """(source URL, empty target URL): two databases of this module's own on the test server."""
    socket = _socket(pg_url)
    names = [f"bk_src_{uuid.uuid4().hex[:6]}", f"bk_dst_{uuid.uuid4().hex[:6]}"]
    for name in names:
        subprocess.run([str(pg_bin("createdb")), "-h", socket, "-U", "postgres", name], check=True)
    base = pg_url.partition("?")[0].rsplit("/", 1)[0]
    yield f"{base}/{names[0]}?host={socket}", f"{base}/{names[1]}?host={socket}"
    for name in names:
        subprocess.run([str(pg_bin("dropdb")), "-h", socket, "-U", "postgres", "--if-exists", name], check=False)


def _sync(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql+psycopg://")


def table_counts(url: str) -> dict[str, int]:
    engine = create_engine(_sync(url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).scalars()
        counts = {t: conn.execute(select(func.count()).select_from(table(t))).scalar_one() for t in list(tables)}
    engine.dispose()
    return counts


async def _add_rows(url: str) -> None:
    from adapters.inmemory.hashing_embedder import HashingEmbedder
    from adapters.postgres.engine import make_engine, make_sessionmaker
    from adapters.postgres.uow import PgUnitOfWork
    from domain.events import Event, EventType
    from domain.ports.repositories import CycleRecord, EquityPoint

    engine = make_engine(url)
    try:
        async with PgUnitOfWork(make_sessionmaker(engine), HashingEmbedder(384)) as uow:
            await uow.events.add([Event(EventType.CYCLE_STARTED, NOW + timedelta(minutes=i), f"cycle {i}",
                                        scope="backup-test") for i in range(25)])
            await uow.equity.add("backup-test", EquityPoint(NOW, Decimal("650.00"), Decimal("650.00"), Decimal(0)))
            await uow.cycles.upsert(CycleRecord("c-backup", "backup-test", "scheduled", NOW, "completed"))
            await uow.commit()
    finally:
        await engine.dispose()


async def test_backup_restores_into_a_fresh_database_with_every_row(databases: tuple[str, str],
                                                                      tmp_path: Path) -> None:
    source, target = databases
    migrate.upgrade(source)
    await _add_rows(source)
    dump = await backup_database(source, tmp_path, keep_days=7, now=NOW)
    assert dump == tmp_path / backup_name(NOW) and dump.name == "quorum-20240306T070000Z.dump"
    assert await verify_backup(dump) > 10
    await restore_database(dump, target)
    before, after = table_counts(source), table_counts(target)
    assert after == before
    assert before["events"] >= 25 and before["alembic_version"] == 1
    assert migrate.status(target).at_head
    assert sorted(p.name for p in tmp_path.glob("*")) == [dump.name]  # noqa: ASYNC240 - no partial file left


def test_retention_deletes_only_backups_older_than_keep_days(tmp_path: Path) -> None:
    ages = [0, 1, 6, 7, 8, 30]
    for days in ages:
        (tmp_path / backup_name(NOW - timedelta(days=days))).write_bytes(b"x")
    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    deleted = prune_backups(tmp_path, keep_days=7, now=NOW)
    assert sorted(deleted) == sorted(tmp_path / backup_name(NOW - timedelta(days=d)) for d in (8, 30))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [backup_name(NOW - timedelta(days=d)) for d in (0, 1, 6, 7)] + ["notes.txt"])


async def test_a_failed_dump_raises_without_leaving_a_file_or_showing_the_password(pg_url: str,
                                                                                 tmp_path: Path) -> None:
    socket = _socket(pg_url)
    bad = f"postgresql://postgres:s3cret-pw-991@/no_such_db_{uuid.uuid4().hex[:6]}?host={socket}"
    with pytest.raises(DatabaseError) as err:
        await backup_database(bad, tmp_path, keep_days=7, now=NOW)
    assert "pg_dump failed" in str(err.value) and "s3cret-pw-991" not in str(err.value)
    assert not any(tmp_path.glob("*"))  # noqa: ASYNC240
