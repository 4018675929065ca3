"""A real `quorum chat` for the chat's end-to-end tests: its own migrated database on the test server, a free port,
the simulated venue, an API key; and a socket.io client that speaks Chainlit's protocol."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.postgres import migrate
from adapters.postgres.embedded import pg_bin

API_KEY = "chat-e2e-key-0123456789abcdef"
REPO = Path(__file__).resolve().parents[2]


@contextmanager
def own_database(pg_url: str, *, migrated: bool = True) -> Iterator[str]:
    """A database of its own on the test server (migrated to head unless told otherwise), dropped afterwards."""
    base, _, query = pg_url.partition("?")
    socket_dir = query.split("host=", 1)[1]
    name = "chat_" + uuid.uuid4().hex[:8]
    subprocess.run([str(pg_bin("createdb")), "-h", socket_dir, "-U", "postgres", name], check=True)
    url = f"{base.rsplit('/', 1)[0]}/{name}?{query}"
    try:
        if migrated:
            migrate.upgrade(url)
        yield url
    finally:
        subprocess.run([str(pg_bin("dropdb")), "-h", socket_dir, "-U", "postgres", "--if-exists", "--force", name],
                       check=False)


def chat_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `quorum chat` on the simulated venue, offline, without Redis."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("QUORUM_", "CHAINLIT_", "LITERAL_")) and k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(DATABASE_URL=database_url, QUORUM_API_KEY=API_KEY, QUORUM_DATA_DIR=str(data_dir),
               QUORUM_LOG_LEVEL="WARNING", LITELLM_LOCAL_MODEL_COST_MAP="True", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", **extra)
    return env


def quorum(args: list[str], env: dict[str, str], cwd: Path, **kwargs: Any) -> Any:
    """`quorum ARGS` as a subprocess (Popen when `popen=True`, else run to completion)."""
    argv = [sys.executable, "-m", "entrypoints.cli", *args]
    if kwargs.pop("popen", False):
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ChatServer:
    """A running `quorum chat`."""

    url: str
    database_url: str
    process: subprocess.Popen[str]


@contextmanager
def running_chat(database_url: str, data_dir: Path, *, timeout_s: float = 90.0, args: Sequence[str] = (),
                 unset: Sequence[str] = (), **env: str) -> Iterator[ChatServer]:
    """Start `quorum chat ARGS` on a free port (`env` added to its environment, `unset` removed from it), wait for
    /health, stop it afterwards (by its own process group)."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    environ = {k: v for k, v in chat_env(database_url, data_dir, **env).items() if k not in unset}
    proc = quorum(["chat", "--host", "127.0.0.1", "--port", str(port), *args], environ, data_dir, popen=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"quorum chat exited with {proc.returncode}:\n{proc.stdout.read() if proc.stdout else ''}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"quorum chat did not answer /health within {timeout_s:.0f} s")
            time.sleep(0.1)
        yield ChatServer(url, database_url, proc)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def login_with_header(url: str, key: str = API_KEY) -> httpx.Response:
    return httpx.post(f"{url}/auth/header", headers={"x-api-key": key}, timeout=10)


def login_with_password(url: str, username: str, password: str) -> httpx.Response:
    return httpx.post(f"{url}/login", data={"username": username, "password": password}, timeout=10)


@dataclass
class ChatClient:
    """Chainlit's browser side over socket.io: connects with the auth cookie, sends messages, answers `ask`s.

    `on_ask` decides what an AskActionMessage gets back (the default picks nothing: the question times out).
    """

    url: str
    token: str
    thread_id: str | None = None
    on_ask: Callable[[dict[str, Any]], dict[str, Any] | None] = lambda spec: None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    asks: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        import socketio

        self.sio = socketio.AsyncClient(reconnection=False)
        self._changed = asyncio.Event()
        for name in ("new_message", "update_message", "resume_thread", "resume_thread_error", "first_interaction",
                     "task_end", "action"):
            self.sio.on(name, self._recorder(name))
        self.sio.on("ask", self._ask)

    def _recorder(self, name: str) -> Callable[[Any], Any]:
        async def record(data: Any) -> None:
            self.events.append((name, data))
            self._changed.set()

        return record

    async def _ask(self, data: dict[str, Any]) -> dict[str, Any] | None:
        self.asks.append(data)
        self._changed.set()
        return self.on_ask(data)

    async def connect(self) -> None:
        await self.sio.connect(self.url, socketio_path="/ws/socket.io", transports=["websocket"],
                               headers={"Cookie": f"access_token={self.token}"},
                               auth={"sessionId": str(uuid.uuid4()), "clientType": "webapp", "userEnv": "{}",
                                     "chatProfile": None, "threadId": self.thread_id}, wait_timeout=10)
        await self.sio.emit("connection_successful")

    async def send(self, text: str) -> None:
        message = {"id": str(uuid.uuid4()), "threadId": self.thread_id, "type": "user_message", "output": text,
                   "name": "admin", "createdAt": datetime.now(UTC).isoformat()}
        await self.sio.emit("client_message", {"message": message, "fileReferences": None})

    async def wait_for(self, found: Callable[[], Any], timeout_s: float = 30.0) -> Any:
        """Wait until `found()` answers something truthy (re-checked at each event received)."""
        async with asyncio.timeout(timeout_s):
            while not (value := found()):
                self._changed.clear()
                await self._changed.wait()
        return value

    def messages(self, kind: str) -> list[dict[str, Any]]:
        """Latest state of each step of `kind` (new_message and update_message merged by id)."""
        latest: dict[str, dict[str, Any]] = {}
        for name, data in self.events:
            if name in ("new_message", "update_message") and isinstance(data, dict) and data.get("type") == kind:
                latest[data["id"]] = {**latest.get(data["id"], {}), **data}
        return list(latest.values())

    async def close(self) -> None:
        await self.sio.disconnect()
