"""Ports of the chat assistant: a tool-calling model, the read-only SQL executor and the event search store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from domain.chat import ChatTurn, EventDocument, EventHit, SqlResult, ToolCall, ToolSpec
from domain.ports.llm import LLMUsage


@dataclass(frozen=True, slots=True)
class ChatReply:
    """A tool-calling model's answer: text, tool calls, or both, and what it cost."""

    content: str
    tool_calls: tuple[ToolCall, ...]
    usage: LLMUsage


@runtime_checkable
class ToolCallingLLM(Protocol):
    """A chat model that can ask for tools to be run (litellm tool calling)."""

    @property
    def provider(self) -> str:
        """Who serves the model ("litellm", "replay", ...)."""
        ...

    async def chat(self, turns: Sequence[ChatTurn], tools: Sequence[ToolSpec], *, as_of: datetime) -> ChatReply:
        """One completion of the conversation `turns` with `tools` offered.

        Raises:
            LLMError: the call failed after retries, or the answer could not be read.
        """
        ...


@runtime_checkable
class SqlReader(Protocol):
    """Runs one read-only SELECT over the documented chat views, guarded by a parser and by the database."""

    def views(self) -> dict[str, str]:
        """The views a query may read, each with its documentation (columns and meaning), for the model."""
        ...

    async def run(self, sql: str) -> SqlResult:
        """Run `sql` if the guard accepts it.

        Raises:
            UnsafeQueryError: the parser guard refused the statement (the message says why).
            QueryFailedError: the database refused or cancelled it (timeout, permission, bad column).
        """
        ...


@runtime_checkable
class EventMemory(Protocol):
    """Embedded event-log entries searchable by meaning (pgvector in production)."""

    async def add(self, documents: Sequence[EventDocument]) -> int:
        """Embed and store documents; an event already stored is skipped.

        Returns:
            How many were stored.
        """
        ...

    async def last_event_id(self, scope: str) -> int:
        """The highest event id stored for `scope` (0 when none): where indexing resumes."""
        ...

    async def search(self, query: str, *, scope: str, k: int, as_of: datetime, since: datetime | None = None,
                     symbol: str | None = None) -> list[EventHit]:
        """The `k` stored events of `scope` nearest to `query`, closest first, none after `as_of`."""
        ...
