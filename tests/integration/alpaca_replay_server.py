"""A local HTTP server that replays recorded Alpaca responses and records what it received.

Routes are keyed by method and path, optionally narrowed by query parameters; a route replies
with its scripted responses in order and keeps repeating the last one. A reply can be any status
(401/403/422/429 with Retry-After/500), a non-JSON body, or a hang past the client's timeout.
With `api_key`/`secret_key` set, requests whose key headers differ get Alpaca's 401 answer.

Every request is recorded (method, path, query, headers with the key values removed, JSON body)
so tests can assert what the adapter sent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.ci_strict import require_or_skip

SECRET_HEADERS = frozenset({"apca-api-key-id", "apca-api-secret-key", "authorization"})
UNAUTHORIZED = {"code": 40110000, "message": "request is not authorized"}


@dataclass(frozen=True)
class Reply:
    """One scripted response. `delay` hangs that many seconds before answering."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server saw it, minus the key values."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any
    had_keys: bool

    def param(self, name: str) -> str | None:
        """The single value of query parameter `name`, or None."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class _Route:
    method: str
    path: str
    query: dict[str, str] | None
    replies: list[Reply]
    served: int = 0

    def matches(self, method: str, path: str, query: dict[str, list[str]]) -> bool:
        if method != self.method or path != self.path:
            return False
        return all(query.get(k) == [v] for k, v in (self.query or {}).items())

    def next_reply(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply


def _read_request(handler: BaseHTTPRequestHandler) -> tuple[RecordedRequest, dict[str, str]]:
    """The request `handler` is serving, as recorded (key values removed), and all its headers (lower-cased)."""
    parts = urlsplit(handler.path)
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    headers = {k.lower(): v for k, v in handler.headers.items()}
    try:
        body = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        body = raw.decode(errors="replace")
    request = RecordedRequest(
        method=handler.command,
        path=parts.path,
        query=parse_qs(parts.query, keep_blank_values=True),
        headers={k: v for k, v in headers.items() if k not in SECRET_HEADERS},
        json=body,
        had_keys=bool(headers.get("apca-api-key-id") and headers.get("apca-api-secret-key")),
    )
    return request, headers


def _encoded(reply: Reply) -> tuple[bytes, str]:
    """The payload of `reply` and its content type."""
    if reply.raw is not None:
        return reply.raw, "text/plain"
    if reply.body is None:
        return b"", "application/json"
    return json.dumps(reply.body).encode(), "application/json"


def load_fixture(file: Path) -> dict[str, Any]:
    """A recorded response file ({"method", "url", "status_code", "body", ...}); skips (fails in CI) if missing."""
    require_or_skip(file.is_file(), f"fixture missing: {file}")
    data: dict[str, Any] = json.loads(file.read_text())
    return data


class AlpacaReplayServer:
    """Serve recorded Alpaca bodies on 127.0.0.1 and record every request.

    Args:
        api_key: when set (with `secret_key`), the key headers every request must carry.
        secret_key: the matching secret.
    """

    def __init__(self, *, api_key: str | None = None, secret_key: str | None = None) -> None:
        self._keys = (api_key, secret_key) if api_key and secret_key else None
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[RecordedRequest] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="alpaca-replay", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL of the server."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> AlpacaReplayServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging replies, stop serving and close the socket."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> AlpacaReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def route(self, method: str, path: str, *replies: Reply, query: dict[str, str] | None = None) -> None:
        """Answer `method path` (and, if given, only requests carrying `query`) with `replies` in order."""
        if not replies:
            raise ValueError("a route needs at least one reply")
        with self._lock:
            self._routes.append(_Route(method.upper(), path, query, list(replies)))

    def reply_json(self, method: str, path: str, body: Any, *, status: int = 200,
                   query: dict[str, str] | None = None) -> None:
        """Shorthand for a route with a single JSON reply."""
        self.route(method, path, Reply(status=status, body=body), query=query)

    def fixture_reply(self, file: Path, *, status: int | None = None, headers: dict[str, str] | None = None,
                      delay: float = 0.0) -> Reply:
        """A reply built from a recorded response file (its body and, unless overridden, its status)."""
        data = load_fixture(file)
        recorded = data.get("status_code")
        code = status if status is not None else (recorded if isinstance(recorded, int) else 200)
        return Reply(status=code, body=data.get("body"), headers=headers or {}, delay=delay)

    def replay(self, file: Path, *, method: str | None = None, path: str | None = None,
               query: dict[str, str] | None = None, status: int | None = None) -> None:
        """Route a recorded response file; method and path come from the file unless given."""
        data = load_fixture(file)
        url = data.get("url_resolved") or data.get("url") or ""
        the_method = method or data.get("method")
        the_path = path or urlsplit(url.split("}", 1)[-1] if url.startswith("{") else url).path
        if not the_method or not the_path:
            raise ValueError(f"{file.name} has no method/url; pass method= and path=")
        self.route(the_method, the_path, self.fixture_reply(file, status=status), query=query)

    def received(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, optionally only those to `method` and/or `path`."""
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method.upper()) and (path is None or r.path == path)]

    def _pick(self, method: str, path: str, query: dict[str, list[str]]) -> Reply | None:
        with self._lock:
            candidates = [r for r in reversed(self._routes) if r.matches(method, path, query)]
            candidates.sort(key=lambda r: len(r.query or {}), reverse=True)
            return candidates[0].next_reply() if candidates else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self._keys is None:
            return True
        return (headers.get("apca-api-key-id"), headers.get("apca-api-secret-key")) == self._keys

    def _reply_to(self, request: RecordedRequest, headers: dict[str, str]) -> Reply:
        """Record `request` and choose its reply: 401 without the keys, 404 without a route."""
        self._record(request)
        if not self._authorised(headers):
            return Reply(status=401, body=UNAUTHORIZED)
        reply = self._pick(request.method, request.path, request.query)
        if reply is None:
            msg = f"no recorded response for {request.method} {request.path}"
            reply = Reply(status=404, body={"code": 40410000, "message": msg})
        return reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                reply = server._reply_to(*_read_request(self))
                if reply.delay and server._stopping.wait(reply.delay):
                    return
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                payload, ctype = _encoded(reply)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if payload:
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _handle

        return Handler
