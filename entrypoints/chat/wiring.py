"""What the chat UI needs from the system, built in one place: `build_chat(container) -> ChatRuntime`.

The Chainlit app (entrypoints/chat/app.py) calls `build_chat` once, when Chainlit starts, and talks to the system
only through the `ChatRuntime` it returns. With `settings.chat.backtest_run` set (`quorum chat --backtest`), the
runtime reads that recorded backtest run instead of the live account (`build_recorded_chat`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from application.chat.contracts import ChatAnswer, StepSink
from application.chat.recorded_portfolio import RecordedRun
from application.queries import ReadModels
from domain.chat import ChatTurn, ToolResult
from domain.errors import QuorumError
from domain.ports.chat import EventMemory, ToolCallingLLM
from domain.ports.clock import Clock
from domain.ports.uow import UnitOfWorkFactory
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
        recorded: the recorded backtest run the chat reads, or None for the live account.
    """

    settings: Settings
    assistant: Assistant
    controls: Controls
    read_models: ReadModels
    clock: Clock
    close: Callable[[], Awaitable[None]]
    recorded: RecordedRun | None = None


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
    from entrypoints.wiring.system import daily_cap_usd

    settings = container.settings()
    if settings.chat.backtest_run:
        return await build_recorded_chat(container, settings.chat.backtest_run)
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
    tools = ChatTools(read_models, build_sql_reader(settings), container.event_search(), controls,
                      currency=container.currency_display())
    llm = None if settings.chat.model == "offline" else chat_model(settings)
    assistant = ChatAssistant(tools, uow_factory=uow_factory, scope=scope, daily_cap_usd=daily_cap_usd(settings),
                              tz=calendar.tz, llm=llm, max_rounds=settings.chat.max_tool_rounds,
                              ledger=container.spend_ledger(), call_estimate_usd=settings.llm.call_estimate_usd)

    async def close() -> None:
        await close_container(container)

    return ChatRuntime(settings, assistant, controls, read_models, container.clock(), close)


class RunNotFoundError(QuorumError):
    """The recorded backtest run asked for is not in the database."""


async def build_recorded_chat(container: Container, which: str) -> ChatRuntime:
    """The chat's runtime over the recorded backtest run `which` ("latest" or a run id), its events indexed first.

    Every tool reads the run's scope as of its end, the portfolio comes from its records, control actions are
    refused; the assistant's model spend is still counted under the live scope (the daily cap is the system's).

    Raises:
        RunNotFoundError: there is no such finished run.
    """
    from application.chat.agent import ChatAssistant
    from application.chat.control_actions import ControlActions
    from application.chat.event_index import EventSearch
    from application.chat.recorded_portfolio import find_run
    from application.chat.recorded_run import RecordedRunControls, RecordedRunTools
    from application.chat.tools import ChatTools
    from entrypoints.wiring.chat_sql import build_sql_reader
    from entrypoints.wiring.system import daily_cap_usd

    settings = container.settings()
    uow_factory, calendar, broker = container.uow_factory(), container.calendar(), container.broker()
    run = await find_run(uow_factory, which, tz=calendar.tz)
    if run is None:
        raise RunNotFoundError(f"no finished backtest run {which!r} in the database: run `make demo` or "
                               "`quorum backtest` first")
    memory = container.event_memory()
    await index_run_events(uow_factory, memory, run)
    read_models = ReadModels(uow_factory, run.scope, broker, calendar, None)
    unused = ControlActions(uow_factory, run.scope, broker=broker, calendar=calendar, cycles=None, evals=None,
                            confirm_timeout=timedelta(seconds=settings.chat.confirm_timeout_s))
    inner = ChatTools(read_models, build_sql_reader(settings), EventSearch(memory, uow_factory, run.scope), unused)
    tools = RecordedRunTools(inner, run, uow_factory)
    llm = None if settings.chat.model == "offline" else chat_model(settings)
    assistant = ChatAssistant(tools, uow_factory=uow_factory, scope=container.scope(),
                              daily_cap_usd=daily_cap_usd(settings), tz=calendar.tz, llm=llm,
                              max_rounds=settings.chat.max_tool_rounds, ledger=container.spend_ledger(),
                              call_estimate_usd=settings.llm.call_estimate_usd)

    async def close() -> None:
        await close_container(container)

    return ChatRuntime(settings, assistant, RecordedRunControls(run), read_models, container.clock(), close, run)


async def index_run_events(uow_factory: UnitOfWorkFactory, memory: EventMemory, run: RecordedRun) -> int:
    """Index every event of `run` not indexed yet (a backtest does not index as it goes), with a running count
    on stderr; returns how many were stored."""
    from rich.console import Console

    from application.chat.event_index import index_new_events
    from entrypoints.commands.progress import count_progress

    with count_progress(Console(stderr=True), f"indexing the events of backtest {run.run_id}") as progress:
        return await index_new_events(uow_factory, memory, run.scope, progress=progress)


def chat_model(settings: Settings) -> ToolCallingLLM:
    """The configured chat model on litellm, with the provider keys, API base, prices and completion limit the
    agents use.

    Raises:
        ConfigurationError: a paid chat model with no price (litellm's or QUORUM_LLM__PRICES).
    """
    from adapters.llm.litellm_chat import LiteLLMChat
    from adapters.llm.price_table import require_prices
    from entrypoints.wiring.system import model_prices

    s = settings.llm
    require_prices([settings.chat.model], model_prices(settings), setting="QUORUM_CHAT__MODEL")
    provider = settings.chat.model.split("/", 1)[0]
    keys = {"anthropic": s.anthropic_api_key, "openai": s.openai_api_key, "gemini": s.gemini_api_key}
    key = keys.get(provider)
    return LiteLLMChat(settings.chat.model, api_key=None if key is None else key.get_secret_value(),
                       api_base=s.api_base, timeout_s=s.timeout_seconds, max_retries=s.max_retries,
                       max_tokens=s.max_output_tokens, prices=model_prices(settings))
