"""`quorum chat` end to end over Chainlit's own protocol: HTTP login, then socket.io as the browser speaks it.

A real `quorum chat` process (simulated venue, no model: the deterministic router answers, no Redis) on a database
of its own. Asked for the portfolio, it shows the tool step (input and output) and answers; asked to pause trading,
it asks for a confirmation, refuses a confirmation carrying another action id, honours a cancel, pauses on a real
confirmation and the event log names who asked; a new connection resumes the thread with its history. Nobody gets
in without the API key or a password (with no key configured, a generated one: test_chat_backtest.py). With Redis,
a confirmed cycle is only queued and a step follows it to its end.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, pool, text

from tests.e2e.chat_server import (
    API_KEY,
    ChatClient,
    ChatServer,
    chat_env,
    login_with_header,
    login_with_password,
    own_database,
    quorum,
    running_chat,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def chat(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    with own_database(pg_url) as db, running_chat(db, tmp_path_factory.mktemp("chat")) as server:
        yield server


def events(database_url: str, *types: str) -> list[tuple[str, str, dict[str, Any]]]:
    engine = create_engine(database_url.replace("+asyncpg", "+psycopg"), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT type, message, payload FROM events WHERE type = ANY(:t) ORDER BY id"),
                                {"t": list(types)}).all()
    finally:
        engine.dispose()
    return [(t, m, p) for t, m, p in rows]


def answer_with(client: ChatClient, name: str, action_id: str | None = None) -> Callable[[dict[str, Any]], Any]:
    """Answer the next question by clicking action `name`, its payload's id replaced by `action_id` if given."""

    def click(ask: dict[str, Any]) -> dict[str, Any]:
        step_id = ask["spec"]["step_id"]
        action = next(d for n, d in client.events if n == "action" and d["forId"] == step_id and d["name"] == name)
        payload = dict(action["payload"]) if action_id is None else {"action_id": action_id}
        return {**action, "payload": payload}

    return click


def said(client: ChatClient, fragment: str) -> list[dict[str, Any]]:
    return [m for m in client.messages("assistant_message") if fragment in m.get("output", "")]


def test_nobody_gets_in_without_the_key_or_a_password(chat: ChatServer) -> None:
    assert login_with_header(chat.url, "not-the-key").status_code == 401
    assert httpx.post(f"{chat.url}/auth/header", timeout=10).status_code == 401
    assert login_with_password(chat.url, "admin", "guess").status_code == 401
    assert login_with_password(chat.url, "root", API_KEY).status_code == 401
    assert httpx.post(f"{chat.url}/project/threads", json={"pagination": {"first": 5}, "filter": {}},
                      timeout=10).status_code == 401
    ok = login_with_password(chat.url, "admin", API_KEY)
    assert ok.status_code == 200 and ok.cookies.get("access_token")


async def test_a_socket_without_a_login_is_refused(chat: ChatServer) -> None:
    import socketio

    client = ChatClient(chat.url, token="forged")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect()
    assert not client.sio.connected


async def test_ask_see_the_tool_step_confirm_only_the_id_sent_and_resume_the_thread(chat: ChatServer) -> None:
    token = login_with_header(chat.url).cookies["access_token"]
    client = ChatClient(chat.url, token)
    await client.connect()

    await client.send("show me the portfolio")
    [step] = await client.wait_for(lambda: [s for s in client.messages("tool")
                                            if s["name"] == "portfolio" and s.get("end")])
    assert json.loads(step["input"]) == {} and step["isError"] is False
    assert "**Portfolio**" in step["output"] and "cash" in step["output"].lower()
    [answer] = await client.wait_for(lambda: said(client, "Portfolio"))
    [thread_id] = [d["thread_id"] for n, d in client.events if n == "first_interaction"]

    client.on_ask = answer_with(client, "confirm", "an-id-that-was-never-sent")
    await client.send("pause trading")
    await client.wait_for(lambda: said(client, "Refused"))
    assert "does not match" in said(client, "Refused")[0]["output"]
    assert events(chat.database_url, "trading_paused") == []

    client.on_ask = answer_with(client, "cancel")
    await client.send("pause trading")
    await client.wait_for(lambda: said(client, "cancelled"))
    assert events(chat.database_url, "trading_paused") == []

    client.on_ask = answer_with(client, "confirm")
    await client.send("pause trading")
    await client.wait_for(lambda: said(client, "trading paused by admin"))
    assert len(client.asks) == 3 and all(a["spec"]["type"] == "action" for a in client.asks)
    [(_, message, payload)] = events(chat.database_url, "trading_paused")
    assert payload["by"] == "admin" and "paused by admin" in message
    outcomes = [(p["action"], p["outcome"], p["by"]) for _, _, p in events(chat.database_url, "chat_action")]
    assert outcomes == [("pause", "refused", "admin"), ("pause", "cancelled", "admin"), ("pause", "done", "admin")]
    await client.close()

    again = ChatClient(chat.url, token, thread_id=thread_id)
    await again.connect()
    [thread] = await again.wait_for(lambda: [d for n, d in again.events if n == "resume_thread"])
    await again.close()
    assert thread["id"] == thread_id
    asked = [s["output"] for s in thread["steps"] if s["type"] == "user_message"]
    assert asked == ["show me the portfolio", "pause trading", "pause trading", "pause trading"]
    tools = [s for s in thread["steps"] if s["type"] == "tool"]
    assert [s["name"] for s in tools][:1] == ["portfolio"] and "**Portfolio**" in tools[0]["output"]
    replies = [s["output"] for s in thread["steps"] if s["type"] == "assistant_message"]
    assert answer["output"] in replies and "trading paused by admin" in replies
    assert any("quorum_turns" in (s.get("metadata") or {}) for s in thread["steps"])


def test_the_chat_refuses_an_unmigrated_database(pg_url: str, tmp_path: Path) -> None:
    """(Without QUORUM_API_KEY the chat is not refused: it generates an admin password, test_chat_backtest.py.)"""
    with own_database(pg_url, migrated=False) as db:
        out = quorum(["chat", "--port", "9"], chat_env(db, tmp_path), tmp_path, timeout=120)
    assert out.returncode == 2 and "quorum db upgrade" in out.stderr, out.stderr


async def test_a_confirmed_cycle_is_queued_and_followed_as_a_step_until_it_ends(
        pg_url: str, redis: Any, tmp_path: Path) -> None:
    """With Redis the confirmation only enqueues the cycle; a background step follows its status to the end."""
    from tests.conftest import TEST_REDIS_URL

    with own_database(pg_url) as db, running_chat(db, tmp_path / "chat", REDIS_URL=TEST_REDIS_URL) as server:
        client = ChatClient(server.url, login_with_header(server.url).cookies["access_token"])
        await client.connect()
        client.on_ask = answer_with(client, "confirm")
        await client.send("run a cycle")
        [queued] = await client.wait_for(lambda: said(client, "queued"))
        cycle_id = queued["output"].split()[1]
        [progress] = await client.wait_for(lambda: [s for s in client.messages("run")
                                                    if s["name"] == f"cycle {cycle_id}" and s.get("output")])
        assert progress["output"].startswith(f"cycle {cycle_id}: queued") and not progress.get("end")
        assert await redis.zrange("arq:queue", 0, -1) == [cycle_id.encode()]      # on Redis, for the workers

        engine = create_engine(db.replace("+asyncpg", "+psycopg"), poolclass=pool.NullPool)
        with engine.begin() as conn:                     # what a worker would write when the cycle ends
            conn.execute(text("UPDATE cycles SET status = 'completed', summary = '{\"orders\": 0}' WHERE id = :i"),
                         {"i": cycle_id})
        engine.dispose()
        [done] = await client.wait_for(lambda: [s for s in client.messages("run") if s["name"] == f"cycle {cycle_id}"
                                                and "completed" in s.get("output", "") and s.get("end")])
        assert done["output"].startswith(f"cycle {cycle_id}: completed")
        await client.close()
