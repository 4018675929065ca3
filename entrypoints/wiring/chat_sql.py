"""The chat's SQL executor: the PostgreSQL reader logged in as the chat role, its password and its caps."""

from __future__ import annotations

import os
import secrets
from functools import partial
from pathlib import Path

from adapters.postgres.chat_role import chat_reader_url, ensure_chat_login
from adapters.postgres.engine import resolve_database_url
from adapters.postgres.readonly_sql import PgReadOnlySql
from domain.chat_views import SqlLimits
from domain.ports.chat import SqlReader
from entrypoints.logging_setup import register_secret
from entrypoints.settings import Settings

PASSWORD_FILE = "chat_sql_password"  # noqa: S105 - a file name


def chat_sql_limits(settings: Settings) -> SqlLimits:
    """The timeout and caps of settings.chat."""
    c = settings.chat
    return SqlLimits(timeout_ms=c.sql_timeout_ms, max_rows=c.sql_max_rows, max_cell_chars=c.sql_max_cell_chars)


def chat_sql_password(settings: Settings) -> str:
    """settings.chat.sql_password, or the one generated into data_dir/chat_sql_password (mode 0600) on first use."""
    if settings.chat.sql_password is not None:
        password = settings.chat.sql_password.get_secret_value()
    else:
        password = _generated_password(settings.data_dir / PASSWORD_FILE)
    register_secret(password)
    return password


def _generated_password(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        password = path.read_text(encoding="utf-8").strip()
        if password:
            return password
        path.unlink()
        return _generated_password(path)
    password = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(password + "\n")
    return password


def build_sql_reader(settings: Settings) -> SqlReader:
    """The chat's SQL reader: as the chat role (LOGIN and password set, as the owner, before its first query).

    Starts the embedded server when no DATABASE_URL is set.
    """
    owner_url, _ = resolve_database_url(settings.effective_database_url, settings.database.embedded_dir)
    role, password = settings.chat.sql_role, chat_sql_password(settings)
    return PgReadOnlySql(chat_reader_url(owner_url, role, password), limits=chat_sql_limits(settings),
                         before_first_query=partial(ensure_chat_login, owner_url, role, password))
