"""A local OpenAI-compatible server that answers every agent validly and counts the tokens with litellm's tokenizer.

`POST /<profile>/v1/chat/completions` (several profiles share one server, each its own `api_base`) answers with
`bench._llm_answers` and reports in `usage` the prompt and completion tokens counted by `litellm.token_counter`
(the tokenizer of `TOKENIZER_MODEL`), so the application's own records agree with the benchmark's. Every request
is kept as a `CallRecord`: the profile, the agent, the exchange day of the context's `as_of`, the tokens and where
the prompt's tokens went (system text, the agent's context, memory evidence inside it, the `response_format`).
The chat's tool-calling requests (agent "chat") are answered by `bench._chat_answers` with tool calls, then a
final answer; their prompt counts the messages (tool results included) and the `tools` schema, recorded apart.
Runs a stdlib `ThreadingHTTPServer` in a daemon thread.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

from bench._chat_answers import chat_as_of, chat_reply, is_chat
from bench._llm_answers import agent_of, answer, context_of

TOKENIZER_MODEL = "gpt-4o-mini"
EXCHANGE_TZ = ZoneInfo("America/New_York")
MEMORY_KEYS = ("similar_trades", "similar_conditions", "similar_trades_summary")


@dataclass(frozen=True)
class CallRecord:
    """One request as answered: who asked, about which exchange day, and the tokens it was billed."""

    profile: str
    agent: str
    day: str
    as_of: str
    prompt_tokens: int
    completion_tokens: int
    system_tokens: int
    response_format_tokens: int
    memory_tokens: int
    symbols: int
    tools_tokens: int = 0
    tool_results_tokens: int = 0


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def text_tokens(text: str) -> int:
    """Tokens of a plain text with the benchmark's tokenizer."""
    return int(_litellm().token_counter(model=TOKENIZER_MODEL, text=text)) if text else 0


def message_tokens(messages: list[dict[str, Any]]) -> int:
    """Tokens of chat messages as the provider bills them (per-message overhead included)."""
    return int(_litellm().token_counter(model=TOKENIZER_MODEL, messages=messages))


def exchange_day(as_of: str) -> str:
    """The exchange-local date of an ISO timestamp ('' when it cannot be read)."""
    try:
        at = datetime.fromisoformat(as_of)
    except ValueError:
        return as_of[:10]
    return (at.astimezone(EXCHANGE_TZ) if at.tzinfo else at).date().isoformat()


def _memory_parts(node: Any) -> list[Any]:
    """Every memory-evidence list inside a context (similar trades of each symbol or candidate, similar
    market conditions)."""
    found: list[Any] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in MEMORY_KEYS and value:
                found.append(value)
            else:
                found.extend(_memory_parts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_memory_parts(item))
    return found


def _memory_tokens(ctx: dict[str, Any]) -> int:
    parts = _memory_parts(ctx)
    return sum(text_tokens(json.dumps(p, separators=(",", ":"))) for p in parts)


def _symbols(ctx: dict[str, Any]) -> int:
    for key in ("symbols", "candidates", "_symbols"):
        if isinstance(ctx.get(key), list):
            return len(ctx[key])
    return 0


@dataclass
class LLMStubServer:
    """The server; use as a context manager and give each profile `api_base(profile)`."""

    records: list[CallRecord] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def api_base(self, profile: str) -> str:
        """What litellm needs as `api_base` for requests counted under `profile`."""
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/{profile}/v1"

    def start(self) -> LLMStubServer:
        """Warm the tokenizer, then serve on 127.0.0.1 and a free port."""
        text_tokens("warm up")
        handler = type("Handler", (_Handler,), {"stub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="llm-cost-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LLMStubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reply(self, profile: str, body: dict[str, Any]) -> tuple[dict[str, Any], str, int, int]:
        """Answer one request, the chat's or an agent's: the assistant message, the finish reason, its prompt and
        completion tokens."""
        if is_chat(body):
            return self.handle_chat(profile, body)
        content, prompt, completion = self.handle(profile, body)
        return {"role": "assistant", "content": content}, "stop", prompt, completion

    def handle_chat(self, profile: str, body: dict[str, Any]) -> tuple[dict[str, Any], str, int, int]:
        """Answer one chat round (tool calls, or the final text once the tools answered) and record it."""
        content, calls = chat_reply(body)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        messages = list(body.get("messages") or [])
        tools_tokens = text_tokens(json.dumps(body["tools"])) if body.get("tools") else 0
        prompt = message_tokens(messages) + tools_tokens
        completion = message_tokens([message]) if calls else text_tokens(content or "")
        system = sum(message_tokens([m]) for m in messages if m.get("role") == "system")
        results = sum(message_tokens([m]) for m in messages if m.get("role") == "tool")
        as_of = chat_as_of(body)
        record = CallRecord(profile, "chat", exchange_day(as_of), as_of, prompt, completion, system, 0, 0, 0,
                            tools_tokens, results)
        with self._lock:
            self.records.append(record)
        return message, "tool_calls" if calls else "stop", prompt, completion

    def handle(self, profile: str, body: dict[str, Any]) -> tuple[str, int, int]:
        """Answer one chat completion request: the content, its prompt and completion tokens."""
        agent = agent_of(body)
        if agent is None:
            with self._lock:
                self.unknown.append(json.dumps(body)[:300])
            raise ValueError("cannot tell which agent asked")
        ctx = context_of(body)
        content = json.dumps(answer(agent, ctx))
        messages = list(body.get("messages") or [])
        fmt = body.get("response_format")
        fmt_tokens = text_tokens(json.dumps(fmt)) if fmt else 0
        tools_tokens = text_tokens(json.dumps(body["tools"])) if body.get("tools") else 0
        prompt = message_tokens(messages) + fmt_tokens + tools_tokens
        completion = text_tokens(content)
        system = sum(message_tokens([m]) for m in messages if m.get("role") == "system")
        as_of = str(ctx.get("as_of", ""))
        record = CallRecord(profile, agent, exchange_day(as_of), as_of, prompt, completion, system, fmt_tokens,
                            _memory_tokens(ctx), _symbols(ctx))
        with self._lock:
            self.records.append(record)
        return content, prompt, completion


class _Handler(BaseHTTPRequestHandler):
    stub: LLMStubServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        parts = self.path.strip("/").split("/")
        if len(parts) != 4 or parts[1:] != ["v1", "chat", "completions"]:
            self._send(404, {"error": {"message": f"unknown path {self.path}", "type": "invalid_request_error"}})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            message, finish, prompt, completion = self.stub.reply(parts[0], body)
        except ValueError as exc:
            self._send(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
            return
        self._send(200, {
            "id": "chatcmpl-bench", "object": "chat.completion", "created": 1_700_000_000,
            "model": str(body.get("model", "unknown")),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        })

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
