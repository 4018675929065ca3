"""The chat's daily script and what a tool-calling model would answer to it, for the LLM-cost benchmark's server.

`DAILY_SCRIPT` is what an operator plausibly asks every trading day after the close, in one conversation (the chat
UI resends the history with every message). `chat_reply` answers an OpenAI tool-calling request the way a model
does: the first round after a question asks for the tool(s) the question needs, with valid arguments; once the
tool results are in, a short final answer quoting them (the figures and up to three cited events).
"""

from __future__ import annotations

import json
import re
from typing import Any

CHAT_MARK = "assistant of quorum"
"""Words of the chat's system prompt that tell its requests from the agents'."""
DAILY_SCRIPT: tuple[str, ...] = (
    "How did we do today?",
    "Show me the portfolio.",
    "Why did you buy {symbol}?",
    "Which validator concerns preceded losses?",
    "What happened this week?",
)
"""The questions of one trading day, in order; `{symbol}` is the stock bought last (else one held)."""
_NOW = re.compile(r"Now: (\S+) \(UTC\)")
_WHY_BUY = re.compile(r"why did you buy ([A-Za-z.\-]{1,10})", re.IGNORECASE)
ANSWER_CHARS = 420
"""How much of a tool's own summary a final answer quotes (a model's answer is a few sentences or a small table)."""


def is_chat(body: dict[str, Any]) -> bool:
    """Whether a request is the chat's: it offers tools, or its system prompt is the chat's."""
    if body.get("tools"):
        return True
    system = " ".join(str(m.get("content") or "") for m in body.get("messages") or [] if m.get("role") == "system")
    return CHAT_MARK in system.lower()


def chat_as_of(body: dict[str, Any]) -> str:
    """The conversation's "now" (ISO, UTC), read from the chat's system prompt ('' when absent)."""
    for m in body.get("messages") or []:
        if m.get("role") == "system":
            found = _NOW.search(str(m.get("content") or ""))
            if found:
                return found.group(1)
    return ""


def tool_calls_for(question: str, n: int) -> list[dict[str, Any]]:
    """The OpenAI tool calls a model makes for `question` (the `n`-th user message, for unique ids)."""
    q = question.lower()
    why = _WHY_BUY.search(question)
    calls: list[tuple[str, dict[str, Any]]]
    if why:
        symbol = why.group(1).upper()
        calls = [("search_events", {"query": f"decision to buy {symbol} and its reasoning", "symbol": symbol})]
    elif "portfolio" in q or "holding" in q:
        calls = [("portfolio", {})]
    elif "concern" in q or "loss" in q:
        calls = [("patterns", {"kind": "validator_concerns"})]
    elif "week" in q:
        calls = [("performance", {"window": "week"}),
                 ("search_events", {"query": "orders, fills, stops and notable decisions", "days": 7})]
    else:
        calls = [("performance", {"window": "today"})]
    return [{"id": f"call_{n}_{i}", "type": "function",
             "function": {"name": name, "arguments": json.dumps(args)}} for i, (name, args) in enumerate(calls)]


def _final_answer(results: list[dict[str, Any]]) -> str:
    """A short answer built from the tool results: each tool's summary (cut) and up to three cited events."""
    parts: list[str] = []
    for r in results:
        text = " ".join(str(r.get("text", "")).split())
        if not r.get("ok", True):
            parts.append(f"The tool could not answer: {text[:200]}")
            continue
        if r.get("citations"):
            cited = [f"- {c.get('at', '')[:16].replace('T', ' ')} UTC, {c.get('type')} {c.get('symbol') or ''} "
                     f"(cycle {c.get('cycle_id') or 'none'})" for c in r["citations"][:3]]
            head = text.split(":", 1)[0]
            parts.append(f"{head}. The most relevant:\n" + "\n".join(cited))
        else:
            parts.append(text[:ANSWER_CHARS] + ("…" if len(text) > ANSWER_CHARS else ""))
    return "Here is what the tools show.\n\n" + "\n\n".join(parts)


def chat_reply(body: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """The assistant message for a chat request: (content, tool calls). Tool calls when the last user message has
    not been answered by tools yet, else a final text answer from the tool results that followed it."""
    messages = list(body.get("messages") or [])
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        return "Ask me about the portfolio, performance or events.", []
    last = users[-1]
    results = []
    for m in messages[last + 1:]:
        if m.get("role") == "tool":
            try:
                results.append(json.loads(str(m.get("content") or "{}")))
            except ValueError:
                results.append({"ok": True, "text": str(m.get("content"))})
    if not results:
        return None, tool_calls_for(str(messages[last].get("content") or ""), len(users))
    return _final_answer(results), []
