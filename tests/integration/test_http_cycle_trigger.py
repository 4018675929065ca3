"""HttpCycleTrigger against a local HTTP server standing in for Quorum's API."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from structlog.testing import capture_logs

from adapters.http import HttpCycleTrigger
from domain.errors import CycleTriggerError

pytestmark = pytest.mark.integration
AT = datetime(2022, 10, 27, 13, 31, tzinfo=UTC)
KEY = "k3y-never-logged"


class ApiServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[tuple[int, Any]] = []
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        self.server.requests.append({"path": parts.path, "query": parse_qs(parts.query),
                                     "key": self.headers.get("X-API-Key")})
        status, body = self.server.script.pop(0) if self.server.script else (202, {"cycle_id": "c-1"})
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[ApiServer]:
    server = ApiServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


async def test_an_event_cycle_is_requested_with_the_api_key_and_its_id_returned(api: ApiServer,
                                                                                 client: httpx.AsyncClient) -> None:
    api.script = [(202, {"cycle_id": "live:event:META:202210271331", "deduplicated": False})]
    got = await HttpCycleTrigger(api.url + "/", KEY, client=client).trigger("META", -0.2369, AT)
    assert got == "live:event:META:202210271331"
    [req] = api.requests
    assert req == {"path": "/api/cycles/run", "query": {"type": ["event"], "symbol": ["META"]}, "key": KEY}


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (500, True), (503, True), (401, False),
                                                   (400, False), (422, False)])
async def test_errors_say_whether_a_retry_may_help(api: ApiServer, client: httpx.AsyncClient, status: int,
                                                   retryable: bool) -> None:
    api.script = [(status, {"detail": "no"})]
    with capture_logs() as logs, pytest.raises(CycleTriggerError) as caught:
        await HttpCycleTrigger(api.url, KEY, client=client).trigger("AAPL", 0.05, AT)
    assert caught.value.retryable is retryable and str(status) in str(caught.value)
    assert KEY not in str(caught.value) and KEY not in json.dumps(logs, default=str)


async def test_an_unreachable_api_is_retryable_and_the_key_stays_secret(client: httpx.AsyncClient) -> None:
    trigger = HttpCycleTrigger("http://127.0.0.1:9", KEY, client=client, timeout=2)
    with pytest.raises(CycleTriggerError) as caught:
        await trigger.trigger("AAPL", 0.05, AT)
    assert caught.value.retryable and KEY not in str(caught.value) and KEY not in repr(trigger)


async def test_a_2xx_without_a_cycle_id_returns_none(api: ApiServer, client: httpx.AsyncClient) -> None:
    api.script = [(200, ["unexpected"])]
    assert await HttpCycleTrigger(api.url, None, client=client).trigger("AAPL", 0.05, AT) is None
    assert api.requests[0]["key"] is None
