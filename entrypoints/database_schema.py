"""A database behind the migrations: the embedded one is upgraded (saying so), an external one is refused by name."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres import migrate
from domain.errors import DatabaseError
from entrypoints.logging_setup import redact

UPGRADE_COMMAND = "quorum db upgrade"
_at_head: set[str] = set()


class SchemaBehindError(DatabaseError):
    """The database lacks migrations this version of Quorum needs; the message names the command to run."""

    exit_code = 2


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _first_line(exc: BaseException) -> str:
    return redact(next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__))


def ensure_schema(url: str, description: str, *, embedded: bool, say: Callable[[str], None] = _say) -> None:
    """Make sure the database at `url` has every migration before Quorum uses its tables (checked once per URL).

    Args:
        url: the SQLAlchemy URL.
        description: the database as shown to the user ("embedded PostgreSQL in ...").
        embedded: Quorum's own server: upgraded here, with one line through `say`.
        say: where the line about an upgrade goes (stderr).

    Raises:
        SchemaBehindError: an external database is behind (run `quorum db upgrade`).
        DatabaseError: the database cannot be reached, or is at a revision this version does not know.
    """
    if url in _at_head:
        return
    try:
        status = migrate.status(url)
    except Exception as exc:  # any connection failure, reported the same way
        raise DatabaseError(f"cannot reach {description}: {_first_line(exc)}") from exc
    if not status.at_head:
        current = status.current_revision
        if current is not None and current not in migrate.revisions(url):
            raise DatabaseError(f"{description} is at migration {current}, which this version of Quorum does not "
                                f"know (its head is {status.head_revision}): install the version that migrated it, "
                                "or point DATABASE_URL elsewhere")
        if not embedded:
            raise SchemaBehindError(f"{description} is at migration {current or 'none'}, behind this version's "
                                    f"{status.head_revision}: run `{UPGRADE_COMMAND}`")
        migrate.upgrade(url)
        say(f"database: upgraded {description} from migration {current or 'none'} to {status.head_revision}")
    _at_head.add(url)


def ensure_schema_on_connect(engine: AsyncEngine, url: str, description: str, *, embedded: bool) -> None:
    """Run `ensure_schema` when `engine` opens a connection (creating the engine opens none): the error, if any,
    is raised by the first use of the database."""

    def check(*_args: Any) -> None:
        ensure_schema(url, description, embedded=embedded)

    event.listen(engine.sync_engine, "connect", check)
