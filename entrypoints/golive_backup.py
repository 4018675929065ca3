"""The backup gate of `quorum golive`: take a backup of the configured database into the backup directory and
restore it into a scratch database on the same server (dropped afterwards), comparing what came back."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.postgres.backup import backup_database, restore_database

_COUNTED = ("alembic_version", "events", "orders", "cycles")


async def _counts(url: str) -> dict[str, int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return {t: int((await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one())  # noqa: S608 - fixed names
                    for t in _COUNTED}
    finally:
        await engine.dispose()


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def backup_and_restore(url: str, backup_dir: Path, *, keep_days: int,
                             now: datetime) -> tuple[Path, dict[str, int]]:
    """Back up `url` into `backup_dir`, restore the file into a scratch database and drop it again.

    Returns:
        The backup file and the row counts of a few tables in the restored copy.

    Raises:
        DatabaseError: the dump or the restore failed.
        ValueError: the restored copy differs from the database in the tables counted.
    """
    before = await _counts(url)
    dump = await backup_database(url, backup_dir, keep_days=keep_days, now=now)
    scratch = f"quorum_restore_check_{uuid.uuid4().hex[:8]}"
    scratch_url = make_url(url).set(database=scratch).render_as_string(hide_password=False)
    await _admin(url, f'CREATE DATABASE "{scratch}"')
    try:
        await restore_database(dump, scratch_url)
        after = await _counts(scratch_url)
    finally:
        await _admin(url, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    short = {t: (before[t], after[t]) for t in _COUNTED if after[t] < before[t]}
    if short:
        raise ValueError(f"the restored copy has fewer rows: {short} (database, copy)")
    return dump, after
