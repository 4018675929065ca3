"""What the chat UI needs from the system, built in one place: `build_chat(container) -> ChatRuntime`.

The Chainlit app (entrypoints/chat/app.py) calls `build_chat` once, when Chainlit starts, and talks to the system
only through the `ChatRuntime` it returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from application.chat.contracts import ChatAnswer, StepSink
from application.queries import ReadModels
from domain.chat import ChatTurn, ToolResult
from domain.ports.chat import ToolCallingLLM
from domain.ports.clock import Clock
from entrypoints.container import Container, close_container
from entrypoints.settings import Settings


class Assistant(Protocol):
    """Answers one user message (`application.chat.agent.ChatAssistant`)."""

    async def answer(self, history: Sequence[ChatTurn], text: str, *, who: str, as_of: datetime,
                     steps: StepSink) -> ChatAnswer:
        """The answer to `text` after `history`, reporting each tool call to `steps`."""
        ...


class Controls(Protocol):
    """Carries out a proposed control action once confirmed (`application.chat.control_actions.ControlActions`)."""

    async def confirm(self, sent_id: str, returned_id: str, *, by: str, as_of: datetime) -> ToolResult:
        """Do the action sent as `sent_id` if `returned_id` is the same (raises ActionConfirmationError if not)."""
        ...

    async def cancel(self, action_id: str, *, by: str, as_of: datetime) -> ToolResult:
        """Drop the pending action `action_id` (recorded)."""
        ...


@dataclass(frozen=True)
class ChatRuntime:
    """Everything the chat UI uses.

    Attributes:
        settings: the settings (API key, chat users, confirmation timeout).
        assistant: answers messages.
        controls: confirms and cancels control actions.
        read_models: the progress of a queued cycle (`cycle(id)`).
        clock: "now" of every message.
        close: releases what was opened (database pools, queues).
    """

    settings: Settings
    assistant: Assistant
    controls: Controls
    read_models: ReadModels
    clock: Clock
    close: Callable[[], Awaitable[None]]


async def build_chat(container: Container) -> ChatRuntime:
    """The chat's runtime on the container's system (the one place the chat is wired).

    Cycles and eval runs asked for in the chat go to the Redis queue when REDIS_URL is set (the workers run them);
    without Redis they are refused with a message saying so, since the in-process queue belongs to `quorum serve`.
    """
    from adapters.queue import ArqCycleQueue
    from application.chat.agent import ChatAssistant
    from application.chat.control_actions import ControlActions
    from application.chat.tools import ChatTools
    from application.cycle_requests import CycleRequestService
    from domain.ports.queue import EvalRequests
    from entrypoints.wiring.chat_sql import build_sql_reader

    settings = container.settings()
    uow_factory, scope, broker, calendar = (container.uow_factory(), container.scope(), container.broker(),
                                            container.calendar())
    read_models = ReadModels(uow_factory, scope, broker, calendar, container.market())
    cycles: CycleRequestService | None = None
    evals: EvalRequests | None = None
    if settings.redis_url:
        arq: ArqCycleQueue = await container.redis_queue()
        cycles, evals = CycleRequestService(uow_factory, arq, scope=scope, tz=calendar.tz), arq
    controls = ControlActions(
        uow_factory, scope, broker=broker, calendar=calendar, cycles=cycles,
        evals=evals, confirm_timeout=timedelta(seconds=settings.chat.confirm_timeout_s))
    tools = ChatTools(read_models, build_sql_reader(settings), container.event_search(), controls)
    llm = None if settings.chat.model == "offline" else chat_model(settings)
    assistant = ChatAssistant(tools, uow_factory=uow_factory, scope=scope, daily_cap_usd=settings.llm.daily_cap_usd,
                              tz=calendar.tz, llm=llm, max_rounds=settings.chat.max_tool_rounds)

    async def close() -> None:
        await close_container(container)

    return ChatRuntime(settings, assistant, controls, read_models, container.clock(), close)


def chat_model(settings: Settings) -> ToolCallingLLM:
    """The configured chat model on litellm, with the provider keys and API base the agents use."""
    from adapters.llm.litellm_chat import LiteLLMChat

    s = settings.llm
    provider = settings.chat.model.split("/", 1)[0]
    keys = {"anthropic": s.anthropic_api_key, "openai": s.openai_api_key, "gemini": s.gemini_api_key}
    key = keys.get(provider)
    return LiteLLMChat(settings.chat.model, api_key=None if key is None else key.get_secret_value(),
                       api_base=s.api_base, timeout_s=s.timeout_seconds, max_retries=s.max_retries)
