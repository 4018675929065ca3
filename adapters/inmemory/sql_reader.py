"""An in-memory SQL reader for the chat: the same parser guard and caps as PostgreSQL, answered by sqlite3.

Implements `domain.ports.chat.SqlReader`. The chat views of `domain.chat_views` are sqlite tables holding the rows
given (`add_rows`); a query goes through the parser guard it is given (the one PostgreSQL uses, see
`adapters.postgres.readonly_sql.chat_guard`: it lives in the Postgres package, so it is passed in), is translated
from the Postgres dialect by sqlglot and runs on a query-only sqlite connection, one statement, with the same
timeout, row, cell and size caps and the same `truncated` flag. What sqlite cannot express (interval arithmetic,
``date_trunc``, ``extract``) fails with `QueryFailedError`, as a bad query would on PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot.errors import SqlglotError

from domain.chat import SqlResult
from domain.chat_views import CHAT_VIEWS, SqlLimits, capped_rows, chat_view_docs
from domain.errors import QueryFailedError

_SQLITE_TYPES = {"bigint": "INTEGER", "integer": "INTEGER", "numeric": "DECIMAL", "double precision": "REAL",
                 "boolean": "BOOLEAN", "timestamp with time zone": "TIMESTAMPTZ", "text": "TEXT", "jsonb": "JSONB"}
_PROGRESS_STEPS = 1000


def _register_converters() -> None:
    sqlite3.register_converter("DECIMAL", lambda b: Decimal(b.decode()))
    sqlite3.register_converter("BOOLEAN", lambda b: b not in (b"0", b""))
    sqlite3.register_converter("TIMESTAMPTZ", lambda b: datetime.fromisoformat(b.decode()))


_register_converters()


class InMemorySqlReader:
    """Implements `SqlReader` over sqlite3 holding the chat views as tables."""

    def __init__(self, guard: Callable[[str], str], *, limits: SqlLimits,
                 rows: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> None:
        """
        Args:
            guard: the parser guard: returns the SQL to run or raises UnsafeQueryError.
            limits: timeout and caps, as for PostgreSQL.
            rows: view name -> rows (column name -> value) to start with.
        """
        self._guard = guard
        self._limits = limits
        self._views = {v.name: v for v in CHAT_VIEWS}
        self._db = sqlite3.connect(":memory:", detect_types=sqlite3.PARSE_DECLTYPES, check_same_thread=False)
        for view in CHAT_VIEWS:
            columns = ", ".join(f'"{c.name}" {_SQLITE_TYPES[c.type]}' for c in view.columns)
            self._db.execute(f'CREATE TABLE "{view.name}" ({columns})')
        for name, view_rows in (rows or {}).items():
            self.add_rows(name, view_rows)

    def views(self) -> dict[str, str]:
        """The chat views with their documentation."""
        return chat_view_docs()

    def add_rows(self, view: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append rows to a view; missing columns are NULL.

        Raises:
            ValueError: an unknown view or column.
        """
        spec = self._views.get(view)
        if spec is None:
            raise ValueError(f"unknown chat view {view!r}")
        names = [c.name for c in spec.columns]
        for row in rows:
            unknown = set(row) - set(names)
            if unknown:
                raise ValueError(f"{view}: unknown columns {sorted(unknown)}")
            values = [_stored(row.get(n), c.type) for n, c in zip(names, spec.columns, strict=True)]
            marks = ", ".join("?" * len(names))
            self._db.execute(f'INSERT INTO "{view}" VALUES ({marks})', values)  # noqa: S608 - a known view name
        self._db.commit()

    async def run(self, sql: str) -> SqlResult:
        """Run `sql` if the guard accepts it.

        Raises:
            UnsafeQueryError: the parser guard refused it.
            QueryFailedError: sqlite refused it (or cannot express it) or it ran past the timeout.
        """
        guarded = self._guard(sql)
        try:
            translated = sqlglot.transpile(guarded, read="postgres", write="sqlite")
        except SqlglotError as exc:
            raise QueryFailedError(f"the in-memory reader cannot translate the query: {exc}") from None
        if len(translated) != 1:
            raise QueryFailedError("the in-memory reader runs exactly one statement")
        columns, rows = self._execute(translated[0])
        if len(columns) > self._limits.max_columns:
            raise QueryFailedError(f"refused by the database guard: {len(columns)} columns, at most "
                                   f"{self._limits.max_columns}")
        cells, truncated = capped_rows(rows, self._limits)
        return SqlResult(sql=guarded, columns=columns, rows=cells, truncated=truncated)

    def _execute(self, sql: str) -> tuple[tuple[str, ...], list[Sequence[Any]]]:
        deadline = time.monotonic() + self._limits.timeout_ms / 1000
        self._db.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_STEPS)
        self._db.execute("PRAGMA query_only = ON")
        try:
            cursor = self._db.execute(sql)
            rows = cursor.fetchmany(self._limits.max_rows + 1)
            columns = tuple(d[0] for d in cursor.description or ())
            cursor.close()
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                ms = self._limits.timeout_ms
                raise QueryFailedError(f"cancelled after {ms} ms (the statement timeout)") from None
            raise QueryFailedError(f"the database refused the query: {exc}") from None
        except (sqlite3.Error, ValueError, OverflowError) as exc:
            raise QueryFailedError(f"the database refused the query: {exc}") from None
        finally:
            self._db.set_progress_handler(None, _PROGRESS_STEPS)
            self._db.execute("PRAGMA query_only = OFF")
        if not columns:
            raise QueryFailedError("refused by the database guard: the statement returns no rows (only queries run)")
        return columns, rows


def _stored(value: Any, type_: str) -> Any:
    if value is None:
        return None
    if type_ == "timestamp with time zone":
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"a timestamptz needs an aware datetime, got {value!r}")
        return value.astimezone(UTC).isoformat()
    if type_ == "numeric":
        return str(Decimal(value))
    if type_ == "jsonb":
        return json.dumps(value, sort_keys=True)
    if type_ == "boolean":
        return int(bool(value))
    return value

