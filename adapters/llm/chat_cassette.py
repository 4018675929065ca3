"""ChatCassette: record a tool-calling model's answers once, replay them for free and identically.

Same conventions as `ReplayLLM`: one JSON file per request, `<dir>/<key>.json`, where the key is a hash of the
model, the turns (roles, texts, tool calls and the calls they answer) and the tools offered (names, descriptions,
parameter schemas). A changed prompt, tool or history is a different key, and a replay miss is an `LLMError`
that says to re-record. Files are written through a temporary file and a rename. A replayed answer costs 0.0
unless `report_original_cost`; its tokens and latency are the recorded ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.llm.replay import ReplayMode, _write_atomic
from domain.chat import ChatTurn, ToolCall, ToolSpec
from domain.errors import ConfigurationError, LLMError
from domain.ports.chat import ChatReply, ToolCallingLLM
from domain.ports.llm import LLMUsage

CHAT_CASSETTE_VERSION = 1


def chat_fingerprint(model: str, turns: Sequence[ChatTurn], tools: Sequence[ToolSpec]) -> str:
    """Stable hash of the model, the conversation and the tools offered (the cassette key)."""
    payload = {
        "model": model,
        "turns": [_turn_json(t) for t in turns],
        "tools": [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class ChatCassette(ToolCallingLLM):
    """Implements `ToolCallingLLM` by recording an inner model's answers, or replaying them from a directory.

    Args:
        cassette_dir: where the files live (created when recording).
        model: the model string, exactly as when recording (part of the key).
        mode: "record" (call `inner`, store every answer) or "replay" (the cassette only).
        inner: the real model; required to record.
        report_original_cost: in replay, report the recorded cost instead of 0.0.
    """

    def __init__(self, cassette_dir: Path | str, model: str, *, mode: ReplayMode = "replay",
                 inner: ToolCallingLLM | None = None, report_original_cost: bool = False) -> None:
        if mode not in ("record", "replay"):
            raise ConfigurationError(f"ChatCassette mode must be 'record' or 'replay', not {mode!r}")
        if mode == "record" and inner is None:
            raise ConfigurationError("ChatCassette in record mode needs the real model to record from")
        self.cassette_dir = Path(cassette_dir)
        self.model = model
        self.mode: ReplayMode = mode
        self.inner = inner
        self.report_original_cost = report_original_cost

    @property
    def provider(self) -> str:
        """The inner model's provider when recording; "replay" when replaying (a replay costs nothing)."""
        return self.inner.provider if self.mode == "record" and self.inner is not None else "replay"

    def path_for(self, turns: Sequence[ChatTurn], tools: Sequence[ToolSpec]) -> Path:
        """The cassette file of this request."""
        return self.cassette_dir / f"{chat_fingerprint(self.model, turns, tools)}.json"

    async def chat(self, turns: Sequence[ChatTurn], tools: Sequence[ToolSpec], *, as_of: datetime) -> ChatReply:
        """Record or replay the answer to `turns`.

        Raises:
            LLMError: replay: no recorded answer, or an unreadable one; record: the inner model failed.
        """
        path = self.path_for(turns, tools)
        if self.mode == "replay":
            return await asyncio.to_thread(self._replay, path)
        if self.inner is None:
            raise ConfigurationError("ChatCassette in record mode needs the model to record (inner)")
        reply = await self.inner.chat(turns, tools, as_of=as_of)
        entry = {
            "version": CHAT_CASSETTE_VERSION, "key": path.stem, "model": self.model, "as_of": as_of.isoformat(),
            "turns": [_turn_json(t) for t in turns], "tools": [t.name for t in tools],
            "reply": {"content": reply.content, "tool_calls": [_call_json(c) for c in reply.tool_calls]},
            "usage": asdict(reply.usage),
        }
        await asyncio.to_thread(_write_atomic, path, entry)
        return reply

    def _replay(self, path: Path) -> ChatReply:
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            reply = entry["reply"]
            calls = tuple(ToolCall(str(c["id"]), str(c["name"]), dict(c["arguments"])) for c in reply["tool_calls"])
            content = str(reply["content"])
        except FileNotFoundError:
            raise LLMError(f"no recorded chat answer {path.stem} in {self.cassette_dir} for model {self.model}: "
                           f"the conversation, the tools or the prompt changed; re-record with the model "
                           f"reachable") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LLMError(f"unreadable chat cassette {path}: {exc}: delete it and re-record") from None
        recorded = entry.get("usage") or {}
        usage = LLMUsage(
            provider=str(recorded.get("provider", "replay")), model=str(entry.get("model", self.model)),
            prompt_tokens=int(recorded.get("prompt_tokens", 0)),
            completion_tokens=int(recorded.get("completion_tokens", 0)),
            cost_usd=float(recorded.get("cost_usd", 0.0)) if self.report_original_cost else 0.0,
            latency_ms=float(recorded.get("latency_ms", 0.0)), attempts=int(recorded.get("attempts", 1)),
            replayed=True, cost_known=bool(recorded.get("cost_known", True)),
        )
        return ChatReply(content, calls, usage)


def _call_json(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "arguments": call.arguments}


def _turn_json(turn: ChatTurn) -> dict[str, Any]:
    return {"role": turn.role, "content": turn.content, "tool_calls": [_call_json(c) for c in turn.tool_calls],
            "tool_call_id": turn.tool_call_id}
