"""A local OpenAI-compatible chat server that a test scripts answer by answer.

`POST /v1/chat/completions` pops the next `Behaviour` from a queue (or answers
with the default content when the queue is empty) and records every request it
received, headers included, so tests can assert the model, the messages and
where the API key went. Runs stdlib `ThreadingHTTPServer` in a daemon thread;
slow answers sleep on the server side only and are cut short by `stop()`.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

BehaviourKind = Literal[
    "ok", "slow", "rate_limit", "server_error", "unavailable", "unauthorized", "bad_request",
    "invalid_json", "truncated", "fenced", "schema_violation",
]


@dataclass(frozen=True)
class Behaviour:
    """What the server does with one request.

    Attributes:
        kind: the behaviour; content-bearing kinds answer 200 with a chat completion.
        content: the assistant content for "ok", "slow", "fenced" (wrapped in ```json fences),
            "truncated" (cut in half); the server default when None. For "invalid_json" and
            "schema_violation", the bad text to send (a generic one when None).
        delay_s: server-side sleep before answering ("slow").
        retry_after_s: Retry-After header of a 429.
        tool_calls: for "ok", tool calls to answer with, each `(id, name, arguments as sent)`; the content is
            then `content` (None: no content) and the finish reason "tool_calls".
    """

    kind: BehaviourKind
    content: str | None = None
    delay_s: float = 0.0
    retry_after_s: float | None = None
    tool_calls: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.body.get("model"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))


@dataclass
class OpenAIStubServer:
    """Scriptable OpenAI-compatible server on 127.0.0.1 and a free port.

    Use as a context manager; `api_base` is what litellm needs (`http://127.0.0.1:<port>/v1`).
    """

    default_content: str
    requests: list[RecordedRequest] = field(default_factory=list)
    _queue: deque[Behaviour] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def api_base(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests, in order."""
        with self._lock:
            self._queue.extend(behaviours)

    def reset(self) -> None:
        """Forget queued behaviours and recorded requests."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    def start(self) -> OpenAIStubServer:
        handler = type("Handler", (_Handler,), {"stub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="openai-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next(self, request: RecordedRequest) -> Behaviour:
        with self._lock:
            self.requests.append(request)
            return self._queue.popleft() if self._queue else Behaviour("ok")


def estimate_tokens(text: str) -> int:
    """About four characters per token, as OpenAI's rule of thumb; at least one."""
    return max(1, len(text) // 4)


def completion_body(model: str, content: str | None, *, prompt_tokens: int, finish_reason: str = "stop",
                    tool_calls: tuple[tuple[str, str, str], ...] = ()) -> dict[str, Any]:
    """An OpenAI `chat.completion` object with realistic usage counts (and tool calls, when given)."""
    completion_tokens = estimate_tokens((content or "") + "".join(a for _, _, a in tool_calls))
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [{"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                                 for i, n, a in tool_calls]
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "system_fingerprint": "fp_stub",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _error(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


# Error answers that do not depend on the request: behaviour kind -> (status, body).
_FIXED_ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "server_error": (500, _error("The server had an error while processing your request.", "server_error")),
    "unavailable": (503, _error("The engine is currently overloaded, please try again later.", "server_error")),
    "bad_request": (400, _error("Invalid value for 'messages'.", "invalid_request_error")),
}


def _completion_text(b: Behaviour, default_content: str) -> tuple[str, str]:
    """The assistant content and finish reason of a content-bearing behaviour ("ok", "slow", ...)."""
    content = b.content if b.content is not None else default_content
    if b.kind == "invalid_json":
        return b.content or "Sure! Here is my analysis: {symbol: AAPL, action: BUY, confidence: high}", "stop"
    if b.kind == "schema_violation":
        return b.content or '{"unexpected_field": true}', "stop"
    if b.kind == "truncated":
        return content[: len(content) // 2], "length"
    if b.kind == "fenced":
        return f"Here you go:\n```json\n{content}\n```\n", "stop"
    return content, "stop"


class _Handler(BaseHTTPRequestHandler):
    stub: OpenAIStubServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, _error("request body is not JSON", "invalid_request_error"))
            return
        recorded = RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        behaviour = self.stub._next(recorded)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, _error(f"unknown path {self.path}", "invalid_request_error"))
            return
        self._answer(behaviour, body)

    def _answer(self, b: Behaviour, body: dict[str, Any]) -> None:
        if b.kind in _FIXED_ERRORS:
            self._send(*_FIXED_ERRORS[b.kind])
        elif b.kind == "rate_limit":
            headers = {"Retry-After": f"{b.retry_after_s:g}"} if b.retry_after_s is not None else {}
            self._send(429, _error("Rate limit reached for requests", "requests", "rate_limit_exceeded"), headers)
        elif b.kind == "unauthorized":
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            # A careless provider echoing the key: the adapter must not pass it on.
            self._send(401, _error(f"Incorrect API key provided: {key}.", "invalid_request_error", "invalid_api_key"))
        elif b.kind == "slow" and self.stub._stopping.wait(b.delay_s):
            return
        else:
            model = str(body.get("model", "unknown"))
            prompt_tokens = estimate_tokens("".join(str(m.get("content", "")) for m in body.get("messages", [])))
            if b.tool_calls:
                self._send(200, completion_body(model, b.content, prompt_tokens=prompt_tokens,
                                                finish_reason="tool_calls", tool_calls=b.tool_calls))
                return
            text, finish_reason = _completion_text(b, self.stub.default_content)
            self._send(200, completion_body(model, text, prompt_tokens=prompt_tokens, finish_reason=finish_reason))

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing to answer to
