"""How the chat's parts meet: the tool box an agent calls, the sink that shows each tool call as a step, and the
answer a user gets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.chat import ChatTurn, PendingAction, ToolCall, ToolResult, ToolSpec


class ToolBox(Protocol):
    """The tools the assistant can call (implemented by `application.chat.tools.ChatTools`)."""

    def specs(self) -> list[ToolSpec]:
        """Every tool, as a model sees it."""
        ...

    async def run(self, call: ToolCall, *, who: str, as_of: datetime) -> ToolResult:
        """Run one tool call for `who` at `as_of`; a refused or failed call answers `ok=False`, it never raises."""
        ...


class StepSink(Protocol):
    """Where the assistant reports each tool call (the UI shows one step per call, with input and output)."""

    async def tool_started(self, call: ToolCall) -> None:
        """A tool call is about to run."""
        ...

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        """A tool call answered."""
        ...


class NullStepSink:
    """Reports nothing (scripts and tests that only want the answer)."""

    async def tool_started(self, call: ToolCall) -> None:
        """Nothing to show."""

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        """Nothing to show."""


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """What the assistant answered to one user message.

    Attributes:
        text: the reply, in plain language (markdown).
        results: every tool result it used, in order.
        pending: a control action waiting for the user's confirmation, if one was proposed.
        turns: the turns to append to the conversation (the user's, the assistant's, tool turns).
        model: the model that answered, or "router" when the deterministic router did.
        cost_usd: what the model calls of this answer cost.
    """

    text: str
    results: tuple[ToolResult, ...]
    pending: PendingAction | None
    turns: tuple[ChatTurn, ...]
    model: str
    cost_usd: float = 0.0
