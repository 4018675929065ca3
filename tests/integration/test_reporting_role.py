"""Grafana's database role on a real PostgreSQL: once `quorum db upgrade` lets it log in, it reads the reporting
views (and every SQL query of the dashboards runs as it), but no base table, no chat view, and it cannot write."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from adapters.postgres.chat_role import asyncpg_dsn, chat_reader_url
from adapters.postgres.reporting_role import REPORTING_ROLE, REPORTING_SCHEMA, REPORTING_VIEWS, ensure_reporting_login

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "grafana-test-password-NEVER-PRINTED-9"
SCOPE = "test:reporting"
T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
FORBIDDEN_READS = ("public.fills", "public.state_documents", "public.alerts", 'public."User"', "public.equity_points",
                   "public.events", "public.llm_calls", "chat.trades", "chat.events")
WRITES = (
    "INSERT INTO public.equity_points (scope, at, equity, cash, exposure) VALUES ('x', now(), 1, 1, 0)",
    "DELETE FROM public.fills",
    "UPDATE public.state_documents SET value = '{}'",
    "DELETE FROM reporting.equity",
    "CREATE TABLE reporting.x (a int)",
    "CREATE TABLE public.x (a int)",
    "CREATE TEMP TABLE t (a int)",
    f"ALTER ROLE {REPORTING_ROLE} SUPERUSER",
    f"GRANT SELECT ON public.fills TO {REPORTING_ROLE}",
)


async def _owner(pg_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(pg_url))


@pytest.fixture(scope="module")
async def grafana(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A little history written as the owner, then a connection as the Grafana role."""
    owner = await _owner(pg_url)
    try:
        await owner.execute("INSERT INTO equity_points (scope, at, equity, cash, exposure) VALUES "
                            "($1, $2, 650, 400, 250), ($1, $2 + interval '1 hour', 655.5, 400, 255.5) "
                            "ON CONFLICT DO NOTHING", SCOPE, T0)
        for side, at, price in (("buy", T0, 100), ("sell", T0.replace(hour=16), 110)):
            await owner.execute(
                "INSERT INTO fills (scope, client_order_id, symbol, side, qty, price, fee, at, reason) VALUES "
                "($1, $2, 'AAPL', $3, 2, $4, 0, $5, 'test') ON CONFLICT DO NOTHING",
                SCOPE, f"q-{side}-{uuid.uuid4().hex[:6]}", side, price, at)
    finally:
        await owner.close()
    await ensure_reporting_login(pg_url, PASSWORD)
    conn = await asyncpg.connect(chat_reader_url(pg_url, REPORTING_ROLE, PASSWORD))
    try:
        yield conn
    finally:
        await conn.close()


async def test_the_role_reads_the_reporting_views(grafana: asyncpg.Connection) -> None:
    assert await grafana.fetchval("SELECT current_user") == REPORTING_ROLE
    equity = await grafana.fetch("SELECT equity FROM equity WHERE scope = $1 ORDER BY at", SCOPE)  # search_path
    assert [float(r["equity"]) for r in equity] == [650.0, 655.5]
    [trade] = await grafana.fetch("SELECT symbol, pnl FROM reporting.trades WHERE scope = $1", SCOPE)
    assert (trade["symbol"], float(trade["pnl"])) == ("AAPL", 20.0)


async def test_the_views_are_exactly_those_granted(pg_url: str, grafana: asyncpg.Connection) -> None:
    owner = await _owner(pg_url)
    try:
        views = await owner.fetch("SELECT table_name FROM information_schema.views WHERE table_schema = $1",
                                  REPORTING_SCHEMA)
        readable = await owner.fetch(
            "SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = "
            "c.relnamespace WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S') AND n.nspname NOT IN "
            "('pg_catalog', 'information_schema') AND has_table_privilege($1, c.oid, 'SELECT')", REPORTING_ROLE)
        attrs = await owner.fetchrow("SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles "
                                     "WHERE rolname = $1", REPORTING_ROLE)
    finally:
        await owner.close()
    assert {r["table_name"] for r in views} == set(REPORTING_VIEWS)
    assert {r["name"] for r in readable} == {f"{REPORTING_SCHEMA}.{v}" for v in REPORTING_VIEWS}
    assert dict(attrs) == {"rolsuper": False, "rolcreaterole": False, "rolcreatedb": False, "rolcanlogin": True}


@pytest.mark.parametrize("relation", FORBIDDEN_READS)
async def test_the_role_cannot_read_base_tables_or_chat_views(grafana: asyncpg.Connection, relation: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await grafana.fetch(f"SELECT * FROM {relation} LIMIT 1")  # noqa: S608 - constants of this test


@pytest.mark.parametrize("statement", WRITES)
async def test_the_role_cannot_write(pg_url: str, grafana: asyncpg.Connection, statement: str) -> None:
    with pytest.raises(asyncpg.PostgresError) as refused:
        await grafana.execute(statement)
    assert isinstance(refused.value, (asyncpg.InsufficientPrivilegeError, asyncpg.ReadOnlySQLTransactionError,
                                      asyncpg.WrongObjectTypeError, asyncpg.ObjectNotInPrerequisiteStateError))
    owner = await _owner(pg_url)
    try:
        assert await owner.fetchval("SELECT count(*) FROM equity_points WHERE scope = 'x'") == 0
        assert await owner.fetchval("SELECT count(*) FROM fills WHERE scope = $1", SCOPE) == 2
    finally:
        await owner.close()


async def test_turning_read_only_off_still_writes_nothing(pg_url: str, grafana: asyncpg.Connection) -> None:
    conn = await asyncpg.connect(chat_reader_url(pg_url, REPORTING_ROLE, PASSWORD))
    try:
        await conn.execute("SET default_transaction_read_only = off")
        for statement in WRITES[:3] + WRITES[4:6]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_every_dashboard_query_runs_as_the_role(grafana: asyncpg.Connection) -> None:
    """The SQL of every panel on the Quorum database, with Grafana's time macro expanded, runs as quorum_grafana."""
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/quorum.json").read_text())
    queries = [t["rawSql"] for p in dashboard["panels"] if p["datasource"]["uid"] == "quorum-postgres"
               for t in p["targets"]]
    assert len(queries) >= 2
    for sql in queries:
        assert "reporting." in sql
        expanded = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 BETWEEN '2024-01-01' AND '2024-12-31'", sql)
        rows = await grafana.fetch(expanded.replace("'live'", f"'{SCOPE}'"))
        assert rows, sql


def test_db_upgrade_lets_the_role_log_in_without_printing_the_password(pg_url: str, tmp_path: Path) -> None:
    """The real CLI: `quorum db upgrade` with QUORUM_GRAFANA_DB_PASSWORD sets the role's LOGIN and password."""
    import asyncio

    async def set_nologin() -> None:
        owner = await _owner(pg_url)
        try:
            await owner.execute(f"ALTER ROLE {REPORTING_ROLE} NOLOGIN")
        finally:
            await owner.close()

    async def can_login() -> bool:
        owner = await _owner(pg_url)
        try:
            return bool(await owner.fetchval("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", REPORTING_ROLE))
        finally:
            await owner.close()

    asyncio.run(set_nologin())
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUORUM_") and k not in ("DATABASE_URL",
                                                                                          "REDIS_URL")}
    env.update(DATABASE_URL=pg_url.replace("+asyncpg", ""), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               QUORUM_DATABASE__EMBEDDED_DIR=str(tmp_path / "never-used"), QUORUM_GRAFANA_DB_PASSWORD=PASSWORD)
    result = subprocess.run([sys.executable, "-m", "entrypoints.cli", "db", "upgrade"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{REPORTING_ROLE} may log in" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    assert asyncio.run(can_login())
    env.pop("QUORUM_GRAFANA_DB_PASSWORD")
    refused = subprocess.run([sys.executable, "-m", "entrypoints.cli", "db", "grant-reporting"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode == 2 and "QUORUM_GRAFANA_DB_PASSWORD" in refused.stdout + refused.stderr
