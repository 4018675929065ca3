"""Migration 0010 holds what the installed Chainlit's data layer needs (chainlit==2.12.0, pinned).

Two checks against the migrated test database: the SQL text of chainlit/data/chainlit_data_layer.py (tables read
and written, columns inserted, every quoted identifier) names nothing the schema lacks, and the data layer itself
runs a whole thread's life on it (user, thread with tags, steps, element, feedback, listing, deletion). A Chainlit
upgrade that needs another column fails here, before a user sees an error in the chat.
"""

from __future__ import annotations

import ast
import os
import re
import tempfile
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, pool, text

os.environ.setdefault("CHAINLIT_APP_ROOT", tempfile.mkdtemp(prefix="quorum-chainlit-"))  # before chainlit is imported

pytestmark = pytest.mark.integration
CHAINLIT_TABLES = {"User", "Thread", "Step", "Element", "Feedback"}


@pytest.fixture(scope="module")
def columns(pg_url: str) -> dict[str, set[str]]:
    engine: Engine = create_engine(pg_url.replace("+asyncpg", "+psycopg"), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT table_name, column_name FROM information_schema.columns "
                                     "WHERE table_schema = 'public'")).all()
    finally:
        engine.dispose()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(table, set()).add(column)
    return out


def data_layer_sql() -> list[str]:
    """Every SQL text in the installed data layer module (string constants and the literal parts of f-strings)."""
    from chainlit.data import chainlit_data_layer

    tree = ast.parse(Path(chainlit_data_layer.__file__).read_text())
    texts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return [t for t in texts if re.search(r"\b(SELECT|INSERT|UPDATE|DELETE)\b", t)]


def test_the_pinned_chainlit_is_installed() -> None:
    import chainlit

    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"chainlit==2.12.0"' in pyproject
    assert chainlit.__version__ == "2.12.0", "a new Chainlit: compare its data layer SQL with migration 0010 first"


def test_the_data_layer_sql_names_only_migrated_tables_and_columns(columns: dict[str, set[str]]) -> None:
    sql = data_layer_sql()
    assert len(sql) >= 20, "the data layer's SQL was not found where expected"
    tables = {t for s in sql for t in re.findall(r'(?:FROM|JOIN|INTO|UPDATE)\s+"(\w+)"', s)}
    assert tables == CHAINLIT_TABLES
    assert tables <= columns.keys()
    inserted = {(t, c.strip().strip('"')) for s in sql
                for t, cols in re.findall(r'INSERT INTO "(\w+)"\s*\(([^)]*)\)', s, re.S) for c in cols.split(",")}
    assert {t for t, _ in inserted} == CHAINLIT_TABLES - {"Thread"}     # Thread's columns are built in code
    assert {(t, c) for t, c in inserted if c not in columns[t]} == set()
    quoted = {q for s in sql for q in re.findall(r'"(\w+)"', s)} - CHAINLIT_TABLES
    known = set().union(*(columns[t] for t in CHAINLIT_TABLES))
    assert quoted - known == set()
    assert {"threadId", "parentId", "showInput", "isError", "startTime", "userId", "deletedAt"} <= quoted


def test_the_step_type_enum_has_every_chainlit_step_type(pg_url: str) -> None:
    from literalai.observability.step import MessageStepType, TrueStepType

    engine = create_engine(pg_url.replace("+asyncpg", "+psycopg"), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            labels = set(conn.execute(text('SELECT unnest(enum_range(NULL::"StepType"))::text')).scalars())
    finally:
        engine.dispose()
    assert set(typing.get_args(TrueStepType)) | set(typing.get_args(MessageStepType)) <= labels


def _step(step_id: str, thread_id: str, kind: str, output: str, *, parent: str | None = None,
          metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": step_id, "threadId": thread_id, "parentId": parent, "type": kind, "name": kind, "input": "{}",
            "output": output, "metadata": metadata or {}, "createdAt": "2025-01-02T03:04:05.000006Z",
            "showInput": "json", "isError": False}


@pytest.fixture
def chainlit_layer(pg_url: str) -> Any:
    from chainlit.data.chainlit_data_layer import ChainlitDataLayer

    return ChainlitDataLayer(database_url=pg_url.replace("postgresql+asyncpg://", "postgresql://"))


async def test_the_data_layer_runs_a_thread_on_the_migrated_schema(chainlit_layer: Any) -> None:
    import uuid

    from chainlit.context import init_http_context
    from chainlit.types import Feedback, Pagination, ThreadFilter
    from chainlit.user import User

    init_http_context()  # an HTTP session: Chainlit writes at once instead of waiting for a first user message
    layer = chainlit_layer
    try:
        name = f"tester-{uuid.uuid4().hex[:8]}"
        user = await layer.create_user(User(identifier=name, metadata={"login": "test"}))
        assert (await layer.create_user(User(identifier=name, metadata={"again": True}))).id == user.id
        assert (await layer.get_user(name)).metadata == {"again": True}
        thread = str(uuid.uuid4())
        await layer.update_thread(thread, name="pause trading", user_id=user.id, metadata={"a": 1}, tags=["chat"])
        await layer.update_thread(thread, metadata={"b": 2})
        asked, tool, answered = (str(uuid.uuid4()) for _ in range(3))
        await layer.create_step(_step(asked, thread, "user_message", "pause trading"))
        await layer.create_step(_step(tool, thread, "tool", "", parent=asked))
        await layer.update_step(_step(tool, thread, "tool", "**Control**: proposed", parent=asked))
        await layer.create_step(_step(answered, thread, "assistant_message", "Confirm?",
                                                        metadata={"quorum_turns": [{"role": "user"}]}))
        element = SimpleNamespace(id=str(uuid.uuid4()), thread_id=thread, for_id=answered, path=None, url=None,
                                  content=None, mime="text/plain", name="table", chainlit_key=None,
                                  display="inline", size="medium", language=None, page=None, props={"x": 1},
                                  type="text")
        await layer.create_element(element)
        feedback = await layer.upsert_feedback(Feedback(forId=answered, value=1, comment="good"))

        got = await layer.get_thread(thread)
        assert got["name"] == "pause trading" and got["metadata"] == {"a": 1, "b": 2}
        assert got["userIdentifier"] == name and await layer.get_thread_author(thread) == name
        steps = {s["id"]: s for s in got["steps"]}
        assert steps[tool]["output"] == "**Control**: proposed" and steps[tool]["parentId"] == asked
        assert steps[tool]["type"] == "tool" and steps[asked]["output"] == "pause trading"
        assert steps[answered]["metadata"] == {"quorum_turns": [{"role": "user"}]}
        assert steps[answered]["feedback"]["id"] == feedback
        assert [e["props"] for e in got["elements"]] == [{"x": 1}]
        assert (await layer.get_element(thread, element.id))["name"] == "table"
        listed = await layer.list_threads(Pagination(first=5), ThreadFilter(userId=user.id))
        assert [t["id"] for t in listed.data] == [thread]
        assert await layer.get_favorite_steps(user.id) == []

        await layer.delete_feedback(feedback)
        await layer.delete_element(element.id, thread)
        await layer.delete_step(tool)
        assert tool not in {s["id"] for s in (await layer.get_thread(thread))["steps"]}
        await layer.delete_thread(thread)
        assert await layer.get_thread(thread) is None
    finally:
        await layer.close()
