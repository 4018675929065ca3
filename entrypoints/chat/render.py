"""What the chat shows and stores, as plain data (no Chainlit here, so it is tested without a server).

- A tool call becomes a step: its input is the call's arguments as JSON, its output the tool's answer as markdown
  (`application.chat.markdown.result_markdown`: summary, table, SQL, the events it cites).
- The conversation a model sees (`ChatTurn`s) is stored in the metadata of the assistant messages that produced it,
  and rebuilt from a thread's steps when the thread is resumed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from application.chat.control_actions import DESCRIPTIONS
from domain.chat import ChatTurn, PendingAction, ToolCall

TURNS_KEY = "quorum_turns"


def step_input(call: ToolCall) -> str:
    """A tool call's arguments, as indented JSON."""
    return json.dumps(call.arguments, indent=2, sort_keys=True, default=str)


def confirmation_text(pending: PendingAction) -> str:
    """The question a control action asks before it is done."""
    reason = f" Reason: {pending.reason}." if pending.reason else ""
    return (f"**Confirm:** {DESCRIPTIONS[pending.action]}?{reason} Asked by {pending.requested_by}; "
            f"this offer expires at {pending.expires_at.isoformat(timespec='seconds')}.")


def turn_to_dict(turn: ChatTurn) -> dict[str, Any]:
    """A turn as JSON-serialisable data (the metadata of a message step)."""
    return {"role": turn.role, "content": turn.content, "tool_call_id": turn.tool_call_id,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in turn.tool_calls]}


def turn_from_dict(data: Mapping[str, Any]) -> ChatTurn:
    """The inverse of `turn_to_dict`.

    Raises:
        KeyError, TypeError, ValueError: `data` is not a stored turn.
    """
    role = data["role"]
    if role not in ("system", "user", "assistant", "tool"):
        raise ValueError(f"unknown role {role!r}")
    calls = tuple(ToolCall(str(c["id"]), str(c["name"]), dict(c["arguments"])) for c in data.get("tool_calls") or ())
    call_id = data.get("tool_call_id")
    return ChatTurn(role, str(data["content"]), calls, None if call_id is None else str(call_id))


def turns_metadata(turns: Iterable[ChatTurn]) -> dict[str, Any]:
    """The metadata that carries `turns` on a message step."""
    return {TURNS_KEY: [turn_to_dict(t) for t in turns]}


def _metadata(step: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = step.get("metadata") or {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            return {}
    return meta if isinstance(meta, Mapping) else {}


def turns_from_steps(steps: Iterable[Mapping[str, Any]]) -> list[ChatTurn]:
    """The conversation stored in a thread's steps (in the order given), skipping what cannot be read.

    A user message whose answer stored no turns (the answer failed) is kept as a plain user turn, so the model
    still sees what was asked.
    """
    turns: list[ChatTurn] = []
    pending_user: str | None = None
    for step in steps:
        stored = _metadata(step).get(TURNS_KEY)
        if step.get("type") == "user_message":
            if pending_user is not None:
                turns.append(ChatTurn("user", pending_user))
            pending_user = str(step.get("output") or "")
            continue
        if not isinstance(stored, list):
            continue
        read = []
        for item in stored:
            try:
                read.append(turn_from_dict(item))
            except (KeyError, TypeError, ValueError):
                continue
        if pending_user is not None and not any(t.role == "user" for t in read):
            turns.append(ChatTurn("user", pending_user))
        pending_user = None
        turns.extend(read)
    if pending_user is not None:
        turns.append(ChatTurn("user", pending_user))
    return turns

