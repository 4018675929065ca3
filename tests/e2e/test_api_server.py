"""The API as a real uvicorn server on 127.0.0.1, hit over TCP with httpx."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from tests.e2e.test_api import API_KEY, Api, build_api


@dataclass
class Server:
    """A running server and the API behind it."""

    url: str
    api: Api


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """uvicorn on a free loopback port in a background thread (its own event loop owns the whole API)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # proto TCP: asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    holder: dict[str, object] = {}

    async def serve() -> None:
        api = await build_api()
        config = uvicorn.Config(api.app, log_level="warning", lifespan="on", access_log=False)
        srv = uvicorn.Server(config)
        holder.update(api=api, server=srv)
        await srv.serve(sockets=[sock])

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name="api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (holder.get("server") and holder["server"].started):  # type: ignore[attr-defined]
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the API server did not start within 30 s")
        time.sleep(0.01)
    yield Server(f"http://127.0.0.1:{port}", holder["api"])  # type: ignore[arg-type]
    holder["server"].should_exit = True  # type: ignore[attr-defined]
    thread.join(timeout=10)
    sock.close()


def test_health_and_ready_over_tcp(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.get("/health").json() == {"status": "ok"}
        ready = c.get("/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["database"]["ok"] is True
        assert c.get("/schema/openapi.json").json()["info"]["title"] == "Quorum API"


def test_authenticated_mutation_then_open_read_from_loopback(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        refused = c.post("/api/cycles/run", params={"type": "event", "symbol": "AMD"})
        assert refused.status_code == 401 and refused.json()["error"] == "missing X-API-Key header"
        queued = c.post("/api/cycles/run", params={"type": "event", "symbol": "AMD"}, headers={"X-API-Key": API_KEY})
        assert queued.status_code == 202, queued.text
        cycle_id = queued.json()["cycle_id"]
        cycle = c.get(f"/api/cycles/{cycle_id}")
        assert cycle.status_code == 200 and cycle.json()["status"] == "queued"
    assert [j.cycle_id for j in server.api.queue.jobs] == [cycle_id]


def test_client_behind_a_trusted_local_proxy_is_not_loopback(server: Server) -> None:
    """uvicorn trusts X-Forwarded-For from 127.0.0.1, so a proxied remote client needs the key to read."""
    with httpx.Client(base_url=server.url, timeout=10, headers={"X-Forwarded-For": "203.0.113.9"}) as c:
        assert c.get("/api/portfolio").status_code == 401
        assert c.get("/api/portfolio", headers={"X-API-Key": API_KEY}).status_code == 200
        assert c.get("/health").status_code == 200
