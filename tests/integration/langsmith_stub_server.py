"""A local LangSmith ingestion endpoint that records the runs it is sent.

Answers what `langsmith.Client` calls while tracing: `GET /info` (the server's capabilities: `{}` by default),
`POST /runs/multipart` (batched creates and updates, multipart/form-data, zstd-compressed when the info says the
server accepts it), `POST /runs/batch`, `POST /runs` and `PATCH /runs/{id}` (unbatched). Every request is recorded
with its headers; `runs()` merges each run's create and updates into one dict, as LangSmith stores it. A refusing
server answers every write with 403 and a body that echoes the API key back (a careless server), to prove the key
never reaches a log. Stdlib `ThreadingHTTPServer` in a daemon thread.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Operation:
    """A run create ("post") or update ("patch") with its fields."""

    kind: str
    run_id: str
    fields: dict[str, Any]


def _decompress(body: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)).read()


def parse_multipart(content_type: str, body: bytes) -> list[Operation]:
    """The run operations of a `/runs/multipart` body: parts named `post.<id>` / `patch.<id>` hold the run, parts
    named `post.<id>.<field>` one of its fields (inputs, outputs, extra, events, error...)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    order: list[tuple[str, str]] = []
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        kind, run_id, *field = name.split(".")
        if kind not in ("post", "patch"):
            continue
        key = (kind, run_id)
        if key not in merged:
            merged[key] = {}
            order.append(key)
        payload = part.get_payload(decode=True)
        value = json.loads(payload if isinstance(payload, bytes) and payload else b"null")
        if field:
            merged[key][field[0]] = value
        else:
            merged[key].update(value)
    return [Operation(kind, run_id, merged[(kind, run_id)]) for kind, run_id in order]


class LangSmithStubServer:
    """Start with `with LangSmithStubServer() as server:`; point LANGSMITH_ENDPOINT at `server.url`."""

    def __init__(self, *, info: dict[str, Any] | None = None, refuse: bool = False) -> None:
        self.info = {} if info is None else info
        self.refuse = refuse
        self.requests: list[Received] = []
        self.operations: list[Operation] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"stub": self}))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> LangSmithStubServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def writes(self) -> list[Received]:
        """The requests that sent runs (everything but `GET /info`)."""
        return [r for r in self.requests if r.method != "GET"]

    def runs(self) -> dict[str, dict[str, Any]]:
        """run id -> the run as stored: its create with every update applied over it, in order."""
        out: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            run = out.setdefault(op.run_id, {"id": op.run_id})
            for key, value in op.fields.items():
                if key == "extra" and isinstance(value, dict) and isinstance(run.get("extra"), dict):
                    run["extra"] = {**run["extra"], **value,
                                    "metadata": {**run["extra"].get("metadata", {}), **value.get("metadata", {})}}
                elif value is not None or key not in run:
                    run[key] = value
        return out

    def _record(self, received: Received, operations: list[Operation]) -> None:
        with self._lock:
            self.requests.append(received)
            self.operations.extend(operations)


class _Handler(BaseHTTPRequestHandler):
    """The endpoints; `stub` is the server whose records and behaviour it uses."""

    stub: LangSmithStubServer

    def log_message(self, *_args: Any) -> None:
        return None

    def _body(self) -> bytes:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return _decompress(raw) if self.headers.get("Content-Encoding") == "zstd" else raw

    def _answer(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _received(self) -> Received:
        return Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})

    def do_GET(self) -> None:
        self.stub._record(self._received(), [])
        if self.path.rstrip("/").endswith("/info"):
            self._answer(200, self.stub.info)
        else:
            self._answer(404, {"detail": "not found"})

    def _write(self, operations: list[Operation]) -> None:
        self.stub._record(self._received(), [] if self.stub.refuse else operations)
        if self.stub.refuse:
            key = self.headers.get("x-api-key", "")
            self._answer(403, {"detail": f"API key {key} is not allowed to write to this workspace"})
        else:
            self._answer(200, {})

    def do_POST(self) -> None:
        body = self._body()
        path = self.path.split("?")[0].rstrip("/")
        if path.endswith("/runs/multipart"):
            self._write(parse_multipart(self.headers["Content-Type"], body))
        elif path.endswith("/runs/batch"):
            batch = json.loads(body or b"{}")
            self._write([Operation(kind, str(r["id"]), r) for kind in ("post", "patch") for r in batch.get(kind) or []])
        elif path.endswith("/runs"):
            run = json.loads(body)
            self._write([Operation("post", str(run["id"]), run)])
        else:
            self.stub._record(self._received(), [])
            self._answer(404, {"detail": "not found"})

    def do_PATCH(self) -> None:
        run_id = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        self._write([Operation("patch", run_id, json.loads(self._body() or b"{}"))])
