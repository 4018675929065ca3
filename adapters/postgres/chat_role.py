"""The chat's database role at run time: give it LOGIN and a password, and build the URL it logs in with.

Migration 0008 creates the role NOLOGIN with SELECT on the chat views only. `ensure_chat_login` (run as the
owner when the chat starts) refuses a role that could do more (superuser, CREATEROLE, member of another role...),
grants SELECT on the views again (a restore made with --no-privileges drops grants) and sets LOGIN with the
password sent as a SCRAM-SHA-256 verifier, so the clear password never reaches the server's logs.
`ensure_view_reader_login` does the same for any such role (Grafana's, adapters/postgres/reporting_role.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

import asyncpg
from sqlalchemy.engine import make_url

from domain.chat_views import CHAT_SCHEMA, CHAT_VIEWS
from domain.errors import DatabaseError

_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SCRAM_ITERATIONS = 4096


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy (postgresql+asyncpg://) or libpq URL as a DSN asyncpg.connect accepts."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def chat_reader_url(owner_url: str, role: str, password: str) -> str:
    """The owner's URL (same host, port, database and options) with the chat role's name and password."""
    _check_role_name(role)
    parsed = make_url(owner_url).set(drivername="postgresql", username=role, password=password)
    return parsed.render_as_string(hide_password=False)


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = _SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (printable ASCII, so SASLprep changes nothing)."""
    if not password or not all(" " <= ch <= "~" for ch in password):
        raise ValueError("a database role's password must be non-empty printable ASCII")
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


async def ensure_chat_login(owner_url: str, role: str, password: str) -> None:
    """Let `role` log in with `password`, after checking it can do no more than read the chat views.

    Args:
        owner_url: the database URL of the schema's owner (the one migrations run with).
        role: the chat role (settings.chat.sql_role).
        password: its password (printable ASCII).

    Raises:
        DatabaseError: the role does not exist (migrations not applied), could do more than read (superuser,
            CREATEROLE, CREATEDB, REPLICATION, BYPASSRLS, member of another role), or the owner may not alter it.
    """
    await ensure_view_reader_login(owner_url, role, password, schema=CHAT_SCHEMA,
                                   views=[v.name for v in CHAT_VIEWS], what="chat", migration="0008")


async def ensure_view_reader_login(owner_url: str, role: str, password: str, *, schema: str, views: Sequence[str],
                                   what: str, migration: str) -> None:
    """Let `role` log in with `password`, after checking it can do no more than read the views of `schema`.

    Args:
        owner_url: the database URL of the schema's owner (the one migrations run with).
        role: a role a migration created NOLOGIN.
        password: its password (printable ASCII).
        schema: the schema of the views it reads.
        views: the views it reads (SELECT is granted on them again).
        what: who uses the role, for messages ("chat", "Grafana").
        migration: the migration that creates the role, for messages.

    Raises:
        DatabaseError: the role does not exist (migrations not applied), could do more than read (superuser,
            CREATEROLE, CREATEDB, REPLICATION, BYPASSRLS, member of another role), or the owner may not alter it.
    """
    _check_role_name(role)
    for name in (schema, *views):
        _check_role_name(name)
    verifier = scram_verifier(password)
    conn = await asyncpg.connect(asyncpg_dsn(owner_url), timeout=10)
    try:
        row = await conn.fetchrow(
            "SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls, "
            "(SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid) AS memberships "
            "FROM pg_roles r WHERE r.rolname = $1", role)
        if row is None:
            raise DatabaseError(f"the {what} role {role!r} does not exist: run `quorum db upgrade` "
                                f"(migration {migration})")
        powers = [name for name in ("rolsuper", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls")
                  if row[name]] + (["member of other roles"] if row["memberships"] else [])
        if powers:
            raise DatabaseError(f"refusing to let the {what} role {role!r} log in: it has {', '.join(powers)}")
        async with conn.transaction():
            await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
            await conn.execute(f"GRANT SELECT ON {', '.join(f'{schema}.{v}' for v in views)} TO {role}")
            await conn.execute(f"ALTER ROLE {role} LOGIN PASSWORD '{verifier}'")
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"could not enable the {what} role {role!r}: {exc.__class__.__name__}: "
                            f"{str(exc).splitlines()[0][:200]}") from None
    finally:
        await conn.close()


def _check_role_name(role: str) -> None:
    if not _ROLE_NAME.fullmatch(role):
        raise ValueError(f"a role, schema or view name must be a lower-case SQL name, got {role!r}")
