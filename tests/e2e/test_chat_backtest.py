"""`quorum chat --backtest latest` end to end: a real short backtest (real tickers of the test fixtures, the real
embedding model) into a database of its own, then the chat on it with no API key set, driven over socket.io.

Before any run, `--backtest latest` exits 2 saying to run a backtest. With no key, the chat prints the admin
password it generated (saved 0600 under data_dir) and lets nobody else in, not even with a header. Asked for the
portfolio it shows the run's final positions and its last equity, labelled with the run; asked why it bought a
symbol it did buy, it cites the run's events about it (the entry among them); asked to pause, it refuses: nothing is
asked for confirmation and nothing is written.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, pool, text

from tests.e2e.chat_server import (
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
MARKET = Path(__file__).resolve().parents[1] / "fixtures" / "market"


@dataclass
class Recorded:
    """The backtest run and the chat reading it."""

    server: ChatServer
    data_dir: Path
    summary: dict[str, Any]
    held: dict[str, tuple[str, str]]          # symbol -> (qty, entry cycle id) at the end of the run
    equity: str
    printed: list[str]


def rows(database_url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(database_url.replace("+asyncpg", "+psycopg"), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def recorded(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    work = tmp_path_factory.mktemp("chat-backtest")
    data_dir = work / "data"
    with own_database(pg_url) as db:
        none_yet = quorum(["chat", "--backtest", "latest", "--port", "9"], chat_env(db, data_dir), work, timeout=120)
        assert none_yet.returncode == 2 and "run `make demo` or `quorum backtest` first" in none_yet.stderr, \
            none_yet.stderr
        bt = quorum(["backtest", "--data", str(MARKET / "daily"), "--data", str(MARKET / "context"), "--start",
                     "2016-03-01", "--end", "2016-04-05", "--symbols", "8", "--json", "--report", str(work / "r")],
                    chat_env(db, data_dir), work, timeout=900)
        assert bt.returncode == 0, bt.stderr[-3000:]
        summary = json.loads(bt.stdout)
        scope = summary["scope"]
        held = {s: (str(q), str(c)) for s, q, c in rows(db, """
            SELECT p.symbol, p.qty, (SELECT f.cycle_id FROM fills f WHERE f.scope = p.scope AND f.symbol = p.symbol
                                     AND f.side = 'buy' ORDER BY f.at LIMIT 1)
            FROM positions p WHERE p.scope = :s""", s=scope)}
        assert held, "the run should end holding positions (entries in March 2016, stops hit late in April)"
        [(equity,)] = rows(db, "SELECT equity FROM equity_points WHERE scope = :s ORDER BY at DESC LIMIT 1", s=scope)
        with running_chat(db, data_dir, args=["--backtest", "latest"], unset=["QUORUM_API_KEY"],
                          timeout_s=300) as server:
            yield Recorded(server, data_dir, summary, held, f"{equity:.2f}", start_lines(server))


def start_lines(server: ChatServer) -> list[str]:
    """What `quorum chat` printed up to "chat on http://..." (printed and flushed before Chainlit started)."""
    assert server.process.stdout is not None
    lines: list[str] = []
    while not (lines and lines[-1].startswith("chat on http://")):
        line = server.process.stdout.readline()
        assert line, f"quorum chat printed no 'chat on' line: {lines}"
        lines.append(line.strip())
    return lines


def said(client: ChatClient, fragment: str) -> list[dict[str, Any]]:
    return [m for m in client.messages("assistant_message") if fragment in m.get("output", "")]


def tool_steps(client: ChatClient, name: str) -> list[dict[str, Any]]:
    return [s for s in client.messages("tool") if s["name"] == name and s.get("end")]


def test_without_a_key_only_the_generated_admin_password_gets_in(recorded: Recorded) -> None:
    url, path = recorded.server.url, recorded.data_dir / "chat" / "admin_password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = path.read_text().strip()
    assert len(password) >= 20
    assert f"log in as admin with password: {password} (saved in {path.resolve()}" in "\n".join(recorded.printed)
    run_id = recorded.summary["run_id"]
    assert any(line.startswith(f"reading the recorded backtest {run_id}, as of 2016-04-05")
               and "control actions are off" in line for line in recorded.printed), recorded.printed
    assert login_with_header(url).status_code == 401                      # header auth needs QUORUM_API_KEY
    assert httpx.post(f"{url}/auth/header", timeout=10).status_code == 401
    assert login_with_password(url, "admin", "").status_code in (401, 422)          # 422: empty form field
    assert login_with_password(url, "admin", password[:-1]).status_code == 401
    assert login_with_password(url, "root", password).status_code == 401
    assert login_with_password(url, "admin", password).status_code == 200


async def test_the_portfolio_why_and_pause_are_answered_from_the_recorded_run(recorded: Recorded) -> None:
    url, run_id = recorded.server.url, recorded.summary["run_id"]
    password = (recorded.data_dir / "chat" / "admin_password").read_text().strip()
    client = ChatClient(url, login_with_password(url, "admin", password).cookies["access_token"])
    await client.connect()

    await client.send("show me the portfolio")
    [step] = await client.wait_for(lambda: tool_steps(client, "portfolio"), 60)
    assert step["isError"] is False
    assert f"backtest {run_id}, as of 2016-04-05" in step["output"] and "not the live account" in step["output"]
    assert f"Equity ${recorded.equity}" in step["output"]
    for symbol in recorded.held:
        assert f"| {symbol} |" in step["output"]
    await client.wait_for(lambda: said(client, "Recorded run"))

    symbol, (_, entry_cycle) = sorted(recorded.held.items())[0]
    await client.send(f"why did you buy {symbol}?")
    [why] = await client.wait_for(lambda: tool_steps(client, "search_events"), 60)
    assert json.loads(why["input"])["symbol"] == symbol and why["isError"] is False
    [answer] = await client.wait_for(lambda: said(client, "Sources:"))
    cited = [line for line in answer["output"].splitlines() if line.startswith("- ") and "(event #" in line]
    assert cited and all(symbol in line for line in cited)
    buy = [line for line in cited if f"cycle {entry_cycle}," in line or f"order_filled, {symbol}" in line]
    assert buy and "filled buy" in answer["output"], answer["output"]     # the entry itself is among the sources

    await client.send("pause trading")
    [refused] = await client.wait_for(lambda: said(client, "cannot be paused"))
    assert run_id in refused["output"] and "nothing was done" in refused["output"]
    assert client.asks == []
    await client.close()
    db = recorded.server.database_url
    assert rows(db, "SELECT type FROM events WHERE type IN ('trading_paused', 'chat_action')") == []
    assert rows(db, "SELECT scope FROM trading_state WHERE paused") == []
