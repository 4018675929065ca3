"""The HTTP side of the emulator: a stdlib HTTP/1.1 (keep-alive) handler with Alpaca's key check and faults."""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from adapters.inmemory.alpaca_emulator.faults import Fault, RecordedRequest
from adapters.inmemory.alpaca_emulator.state import Query, Reply

SECRET_HEADERS = frozenset({"apca-api-key-id", "apca-api-secret-key", "authorization"})
UNAUTHORIZED = {"code": 40110000, "message": "request is not authorized"}
BAD_BODY = {"code": 40010000, "message": "request body format is invalid"}
_STATUS_BODIES = {429: {"code": 42910000, "message": "rate limit exceeded"}}
_INVALID = object()


class EmulatorHooks(Protocol):
    """What the handler needs from the emulator."""

    def authorised(self, key: str | None, secret: str | None) -> bool:
        """Whether these key headers open the account."""
        ...

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The injected fault this request meets, if any."""
        ...

    def dispatch(self, method: str, path: str, query: Query, body: Any) -> Reply:
        """The answer to an authorised request (under the emulator's lock)."""
        ...

    def record(self, request: RecordedRequest) -> None:
        """Keep a request for `AlpacaEmulator.requests`."""
        ...

    def hang(self, seconds: float | None = None) -> None:
        """Wait like a server that does not answer (released early when the emulator stops)."""
        ...

    def now_for_record(self) -> Any:
        """The emulator's time."""
        ...


def _encode(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def make_handler(hooks: EmulatorHooks) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to `hooks`."""

    class Handler(_EmulatorHandler):
        emulator = hooks

    return Handler


@dataclass(frozen=True)
class _Request:
    """What the handler read of one request."""

    method: str
    path: str
    query: Query
    headers: dict[str, str]
    body: Any

    @property
    def key(self) -> str | None:
        return self.headers.get("apca-api-key-id")

    @property
    def secret(self) -> str | None:
        return self.headers.get("apca-api-secret-key")

    def recorded(self, status: int | None, fault: Fault | None, at: Any) -> RecordedRequest:
        """The request as the emulator keeps it (secret headers left out)."""
        return RecordedRequest(
            method=self.method, path=self.path, query=self.query,
            headers={k: v for k, v in self.headers.items() if k not in SECRET_HEADERS},
            json=None if self.body is _INVALID else self.body, had_keys=bool(self.key and self.secret),
            at=at, status=status, fault=fault.kind if fault else None)


def _read_request(handler: BaseHTTPRequestHandler) -> _Request:
    parts = urlsplit(handler.path)
    path = unquote(parts.path)
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    headers = {k.lower(): v for k, v in handler.headers.items()}
    body: Any = None
    if raw:
        try:
            body = json.loads(raw, parse_float=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = _INVALID
    query = parse_qs(parts.query, keep_blank_values=True)
    return _Request(handler.command, path, query, headers, body)


def _unprocessed_reply(fault: Fault | None, body: Any) -> Reply | None:
    """The answer given without processing: a "status" fault's, or 400 for a body that is not JSON."""
    if fault is not None and fault.kind == "status":
        extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        payload = _STATUS_BODIES.get(fault.status, {"code": fault.status * 100000,
                                                    "message": "emulated server failure"})
        return fault.status, payload, extra
    if body is _INVALID:
        return 400, BAD_BODY, {}
    return None


class _EmulatorHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler answering through `emulator` (set by `make_handler`)."""

    emulator: ClassVar[EmulatorHooks]
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # keep-alive replies written in pieces would wait 40 ms for delayed ACKs

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _handle(self) -> None:
        hooks = self.emulator
        request = _read_request(self)
        allowed = hooks.authorised(request.key, request.secret)
        fault = hooks.take_fault(self.command, request.path) if allowed else None

        def record(status: int | None) -> None:
            hooks.record(request.recorded(status, fault, hooks.now_for_record()))

        if not allowed:
            record(401)
            self._send(401, UNAUTHORIZED, {})
            return
        if fault is not None and fault.kind == "timeout":
            record(None)
            hooks.hang()
            self._drop()
            return
        unprocessed = _unprocessed_reply(fault, request.body)
        if unprocessed is not None:
            record(unprocessed[0])
            self._send(*unprocessed)
            return
        status, payload, extra = hooks.dispatch(self.command, request.path, request.query, request.body)
        if fault is not None and fault.kind == "drop_after_accept":
            record(None)
            self._drop()
            return
        record(status)
        self._send(status, payload, extra)

    def _send(self, status: int, payload: Any, extra: dict[str, str]) -> None:
        data = b"" if payload is None else json.dumps(payload, default=_encode).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            if data:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _handle
