"""Contract of the chat's SQL reader, run against the in-memory fake (sqlite) and PostgreSQL (as the chat role).

Both get the same rows (PostgreSQL through the real repositories, in a scope of the test's own) and must refuse,
clamp, cap and answer alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.inmemory.sql_reader import InMemorySqlReader
from adapters.postgres.readonly_sql import chat_guard
from domain.chat_views import CELL_CUT_MARK, CHAT_VIEWS, SqlLimits
from domain.errors import QueryFailedError, UnsafeQueryError
from domain.events import Event, EventType, Severity
from domain.models.trading import Fill, Side
from domain.ports.chat import SqlReader
from domain.ports.repositories import FillRecord

LIMITS = SqlLimits(timeout_ms=2000, max_rows=5, max_cell_chars=40)
T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
VIEW_NAMES = {"trades", "fills", "decisions", "events", "positions_history", "discovery", "llm_calls", "evals"}


@dataclass
class Backend:
    reader: SqlReader
    seed: Callable[[Sequence[Event], Sequence[FillRecord]], Awaitable[None]]


def _fake() -> Backend:
    reader = InMemorySqlReader(chat_guard(LIMITS, sorted(VIEW_NAMES)), limits=LIMITS)

    async def seed(events: Sequence[Event], fills: Sequence[FillRecord]) -> None:
        reader.add_rows("events", [{"id": i, "scope": e.scope, "at": e.at, "type": e.type.value,
                                    "severity": e.severity.value, "message": e.message, "cycle_id": e.cycle_id,
                                    "symbol": e.symbol, "payload": e.payload} for i, e in enumerate(events, 1)])
        reader.add_rows("fills", [{"id": i, "scope": r.scope, "at": r.fill.at, "symbol": r.fill.symbol,
                                   "side": r.fill.side.value, "qty": r.fill.qty, "price": r.fill.price,
                                   "fee": r.fill.fee, "notional": r.fill.notional, "shadow": r.shadow,
                                   "reason": r.fill.reason, "cycle_id": r.cycle_id,
                                   "client_order_id": r.fill.client_order_id} for i, r in enumerate(fills, 1)])

    return Backend(reader, seed)


def _postgres(request: pytest.FixtureRequest) -> Backend:
    from adapters.inmemory.hashing_embedder import HashingEmbedder
    from adapters.postgres.uow import PgUnitOfWork

    reader = request.getfixturevalue("chat_reader")
    sessionmaker = request.getfixturevalue("pg_sessionmaker")

    async def seed(events: Sequence[Event], fills: Sequence[FillRecord]) -> None:
        async with PgUnitOfWork(sessionmaker, HashingEmbedder()) as uow:
            await uow.events.add(list(events))
            await uow.fills.add(list(fills))
            await uow.commit()

    return Backend(reader, seed)


@pytest.fixture
async def chat_reader(pg_url: str) -> SqlReader:
    from adapters.postgres.chat_role import chat_reader_url, ensure_chat_login
    from adapters.postgres.readonly_sql import PgReadOnlySql

    await ensure_chat_login(pg_url, "quorum_chat", "contract-password")
    return PgReadOnlySql(chat_reader_url(pg_url, "quorum_chat", "contract-password"), limits=LIMITS)


@pytest.fixture(params=["inmemory", pytest.param("postgres", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> Backend:
    return _fake() if request.param == "inmemory" else _postgres(request)


def scoped(sql: str, scope: str) -> str:
    """`sql` with :scope replaced by the test's scope as a literal."""
    return sql.replace(":scope", "'" + scope + "'")


def event(scope: str, n: int, message: str = "") -> Event:
    return Event(type=EventType.ORDER_FILLED, at=T0 + timedelta(minutes=n), message=message or f"event {n}",
                 severity=Severity.INFO, cycle_id=f"c{n}", symbol="AAPL", payload={"n": n}, scope=scope)


def fill(scope: str, n: int, side: Side, qty: str, price: str) -> FillRecord:
    f = Fill(client_order_id=f"q-{scope}-{n}", symbol="AAPL", side=side, qty=Decimal(qty), price=Decimal(price),
             fee=Decimal("0.5"), at=T0 + timedelta(days=n), reason="signal")
    return FillRecord(f, scope, f"c{n}")


def test_views_lists_the_eight_documented_views(backend: Backend) -> None:
    views = backend.reader.views()
    assert set(views) == VIEW_NAMES
    for view in CHAT_VIEWS:
        assert all(f"- {c.name} (" in views[view.name] for c in view.columns)


@pytest.mark.parametrize("sql", [
    "DELETE FROM fills", "SELECT pg_sleep(1)", "SELECT * FROM state_documents", "SELECT * FROM public.fills",
    "SELECT 1; SELECT 2", "WITH x AS (DELETE FROM fills RETURNING *) SELECT * FROM x",
    "SELECT query_to_xml('select 1', true, true, '')",
])
async def test_a_refused_statement_raises_unsafe_query(backend: Backend, sql: str) -> None:
    with pytest.raises(UnsafeQueryError, match="refused"):
        await backend.reader.run(sql)


async def test_rows_are_capped_and_the_limit_clamped(backend: Backend, scope: str) -> None:
    await backend.seed([event(scope, n) for n in range(LIMITS.max_rows + 3)], [])
    many = await backend.reader.run(
        scoped("SELECT id, message FROM events WHERE scope = :scope ORDER BY at LIMIT 1000", scope))
    assert many.sql.endswith(f"LIMIT {LIMITS.max_rows + 1}")
    assert many.columns == ("id", "message")
    assert [r[1] for r in many.rows] == [f"event {n}" for n in range(LIMITS.max_rows)]
    assert many.truncated
    few = await backend.reader.run(
        scoped("SELECT message FROM events WHERE scope = :scope ORDER BY at DESC LIMIT 2", scope))
    assert few.rows == ((f"event {LIMITS.max_rows + 2}",), (f"event {LIMITS.max_rows + 1}",))
    assert not few.truncated
    missing = await backend.reader.run(scoped("SELECT message FROM events WHERE scope = :scope", scope))
    assert missing.sql.endswith(f"LIMIT {LIMITS.max_rows + 1}") and len(missing.rows) == LIMITS.max_rows


async def test_long_cells_are_cut_and_flagged(backend: Backend, scope: str) -> None:
    await backend.seed([event(scope, 1, "x" * 5000), event(scope, 2, "short")], [])
    got = await backend.reader.run(scoped("SELECT message FROM events WHERE scope = :scope ORDER BY at", scope))
    assert got.rows[0][0] == "x" * (LIMITS.max_cell_chars - 1) + CELL_CUT_MARK
    assert got.rows[1] == ("short",)
    assert got.truncated


async def test_both_answer_the_same_values(backend: Backend, scope: str) -> None:
    await backend.seed([], [fill(scope, 1, Side.BUY, "10", "180.25"), fill(scope, 2, Side.SELL, "4", "190")])
    got = await backend.reader.run(
        scoped("SELECT symbol, side, qty, price, fee, notional, shadow, at FROM fills WHERE scope = :scope "
               "ORDER BY at", scope))
    assert got.rows == (("AAPL", "buy", "10", "180.25", "0.5", "1802.5", False, T0.replace(day=5).isoformat()),
                        ("AAPL", "sell", "4", "190", "0.5", "760", False, T0.replace(day=6).isoformat()))
    total = await backend.reader.run(
        scoped("SELECT side, count(*) AS n FROM fills WHERE scope = :scope GROUP BY side ORDER BY side", scope))
    assert total.columns == ("side", "n") and total.rows == (("buy", 1), ("sell", 1))


async def test_a_query_the_database_cannot_run_fails_with_query_failed(backend: Backend) -> None:
    with pytest.raises(QueryFailedError):
        await backend.reader.run("SELECT no_such_column FROM fills")
