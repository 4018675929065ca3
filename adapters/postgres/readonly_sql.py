"""The chat's SQL executor on PostgreSQL: the parser guard, then the database guard.

Implements `domain.ports.chat.SqlReader`. After `check_select` accepts a query, it runs on a connection of its own
logged in as the chat role (SELECT on the chat views only, dangerous functions revoked, docs/chat.md), inside a
read-only transaction with ``SET LOCAL statement_timeout``. The model's SQL only ever goes through the extended
protocol: it is parsed on its own first (one statement, and it must return rows), then run wrapped as
``SELECT <cells> FROM (<query>) AS q`` where every variable-length cell is cut on the server
(``left(x::text, cap + 1)``), through a cursor that reads at most ``max_rows + 1`` rows.
`run_unparsed` is the same without the parser guard: the database guard alone (the hostile-SQL tests use it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncpg

from adapters.postgres.sql_guard import DEFAULT_FUNCTIONS, check_select
from domain.chat import SqlResult
from domain.chat_views import CHAT_SCHEMA, SqlLimits, capped_rows, chat_view_docs
from domain.errors import DatabaseError, QueryFailedError

_KEPT_TYPES = frozenset({"int2", "int4", "int8", "float4", "float8", "bool", "date", "time", "timetz", "timestamp",
                         "timestamptz", "uuid"})
"""Fixed-width types returned as they are; every other cell is cut to text on the server."""
_CONNECT_TIMEOUT_S = 10.0


def chat_guard(limits: SqlLimits, views: Sequence[str]) -> Callable[[str], str]:
    """The parser guard as the chat uses it: the views, `DEFAULT_FUNCTIONS`, LIMIT clamped to max_rows + 1 (one
    row more than returned, so that a cut answer is flagged). Returns the SQL to run or raises UnsafeQueryError."""
    relations = frozenset(views)

    def guard(sql: str) -> str:
        return check_select(sql, relations=relations, functions=DEFAULT_FUNCTIONS, max_limit=limits.max_rows + 1).sql

    return guard


class PgReadOnlySql:
    """Implements `SqlReader` on PostgreSQL as the chat role."""

    def __init__(self, reader_url: str, *, limits: SqlLimits, views: Mapping[str, str] | None = None,
                 before_first_query: Callable[[], Awaitable[None]] | None = None) -> None:
        """
        Args:
            reader_url: a postgresql:// URL logging in as the chat role (`chat_role.chat_reader_url`).
            limits: timeout and caps.
            views: view name -> documentation (default: the chat views of `domain.chat_views`).
            before_first_query: run once before the first query (e.g. `ensure_chat_login` as the owner).
        """
        self._url = reader_url
        self._limits = limits
        self._views = dict(views if views is not None else chat_view_docs())
        self._guard = chat_guard(limits, list(self._views))
        self._before = before_first_query
        self._ready = asyncio.Lock()

    def views(self) -> dict[str, str]:
        """The chat views with their documentation."""
        return dict(self._views)

    async def run(self, sql: str) -> SqlResult:
        """Run `sql` if the parser guard accepts it, then under the database guard.

        Raises:
            UnsafeQueryError: the parser guard refused it.
            QueryFailedError: the database refused or cancelled it, or the chat role could not log in.
        """
        return await self.run_unparsed(self._guard(sql))

    async def run_unparsed(self, sql: str) -> SqlResult:
        """Run `sql` under the database guard only (role, read-only transaction, timeout, caps).

        Raises:
            QueryFailedError: the database refused or cancelled it, or the chat role could not log in.
        """
        await self._prepare_once()
        conn = await self._connect()
        try:
            async with conn.transaction(readonly=True):
                await conn.execute(f"SET LOCAL statement_timeout = {int(self._limits.timeout_ms)}")
                columns, rows = await self._fetch(conn, sql)
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise self._failure(exc) from None
        finally:
            await _close(conn)
        cells, truncated = capped_rows(rows, self._limits)
        return SqlResult(sql=sql, columns=columns, rows=cells, truncated=truncated)

    async def _fetch(self, conn: asyncpg.Connection, sql: str) -> tuple[tuple[str, ...], list[Sequence[Any]]]:
        timeout = self._limits.timeout_ms / 1000 + 2
        attributes = (await conn.prepare(sql, timeout=timeout)).get_attributes()
        if not attributes:
            raise QueryFailedError("refused by the database guard: the statement returns no rows (only queries run)")
        if len(attributes) > self._limits.max_columns:
            raise QueryFailedError(f"refused by the database guard: {len(attributes)} columns, at most "
                                   f"{self._limits.max_columns}")
        wrapped = _wrapped(sql, [a.type.name for a in attributes], self._limits.max_cell_chars)
        cursor = await (await conn.prepare(wrapped, timeout=timeout)).cursor(timeout=timeout)
        rows = await cursor.fetch(self._limits.max_rows + 1, timeout=timeout)
        return tuple(a.name for a in attributes), [tuple(r) for r in rows]

    async def _prepare_once(self) -> None:
        if self._before is None:
            return
        async with self._ready:
            if self._before is not None:
                try:
                    await self._before()
                except (DatabaseError, OSError, asyncpg.PostgresError) as exc:
                    raise QueryFailedError(f"the chat's database role is not ready: {_first_line(exc)}") from None
                self._before = None

    async def _connect(self) -> asyncpg.Connection:
        settings = {"application_name": "quorum chat sql", "search_path": CHAT_SCHEMA,
                    "default_transaction_read_only": "on", "statement_timeout": str(int(self._limits.timeout_ms))}
        try:
            conn: asyncpg.Connection = await asyncpg.connect(self._url, timeout=_CONNECT_TIMEOUT_S,
                                                             statement_cache_size=0, server_settings=settings)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise QueryFailedError(f"the chat's database role could not log in ({type(exc).__name__}: "
                                   f"{_first_line(exc)})") from None
        return conn

    def _failure(self, exc: BaseException) -> QueryFailedError:
        if isinstance(exc, (asyncpg.QueryCanceledError, asyncio.TimeoutError)):
            return QueryFailedError(f"cancelled after {self._limits.timeout_ms} ms (the statement timeout)")
        return QueryFailedError(f"the database refused the query: {_first_line(exc)}")


def _wrapped(sql: str, types: Sequence[str], max_cell_chars: int) -> str:
    """`sql` as a subquery whose variable-length cells are cut to max_cell_chars + 1 characters on the server."""
    cells = []
    for i, type_name in enumerate(types, start=1):
        column = f"q.c{i}"
        if type_name in _KEPT_TYPES:
            cells.append(column)
        elif type_name == "numeric":
            cells.append(f"left(trim_scale({column})::text, {max_cell_chars + 1})")
        else:
            cells.append(f"left({column}::text, {max_cell_chars + 1})")
    names = ", ".join(f"c{i}" for i in range(1, len(types) + 1))
    body = sql.rstrip().removesuffix(";")
    return f"SELECT {', '.join(cells)} FROM (\n{body}\n) AS q({names})"  # noqa: S608 - parsed alone first


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await conn.close(timeout=2)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
