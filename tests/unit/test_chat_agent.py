"""ChatAssistant: the tool round trip with a scripted model, its limits, the shared daily cap and the fallbacks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from adapters.llm.chat_cassette import ChatCassette
from application.chat.agent import SYSTEM_PROMPT, ChatAssistant
from application.chat.contracts import ChatAnswer, NullStepSink
from application.llm_gateway import LLMGateway
from domain.chat import UNPARSED_ARGUMENTS, ChatTurn, ControlAction, EventCitation, ToolCall, ToolResult, ToolSpec
from domain.errors import LLMError
from domain.ports.chat import ChatReply, ToolCallingLLM
from domain.ports.llm import LLMUsage
from domain.ports.repositories import LLMCallRecord

NY = ZoneInfo("America/New_York")
AS_OF = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)  # 10:00 in New York
SCOPE = "live"
MODEL = "openai/gpt-4o-mini"
CASSETTES = Path(__file__).resolve().parents[1] / "fixtures" / "chat"  # recorded by tests/integration/test_litellm_chat
QUESTIONS = ("Why did you buy NVDA, and what do we hold now?", "Pause trading please.")
TOOL_NAMES = ("query_sql", "search_events", "portfolio", "performance", "control", "patterns")


class FakeToolBox:
    """Six tools with canned answers; records every call it runs."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, dict[str, Any], str]] = []

    def specs(self) -> list[ToolSpec]:
        return [ToolSpec(n, f"the {n} tool", {"type": "object", "properties": {}}) for n in TOOL_NAMES]

    async def run(self, call: ToolCall, *, who: str, as_of: datetime) -> ToolResult:
        self.ran.append((call.name, call.arguments, who))
        if call.name == "portfolio":
            return ToolResult("portfolio", call.arguments, True, "Cash 412.50 USD; 2 positions.",
                              columns=("symbol", "qty"), rows=(("AAPL", "1.5"), ("NVDA", "0.2")))
        if call.name == "control":
            pending = {"id": "act-123", "action": call.arguments["action"], "requested_by": who,
                       "requested_at": as_of.isoformat(), "expires_at": (as_of + timedelta(minutes=1)).isoformat(),
                       "reason": call.arguments.get("reason", "")}
            return ToolResult("control", call.arguments, True, "Waiting for your confirmation.", {"pending": pending})
        if call.name == "search_events":
            cited = EventCitation(41, datetime(2024, 3, 1, 15, 30, tzinfo=UTC), "cyc-9", "decision", "NVDA")
            return ToolResult(call.name, call.arguments, True, "1 event: BUY NVDA, 20d momentum +8 %",
                              citations=(cited,))
        return ToolResult(call.name, call.arguments, True, f"{call.name} answered")


class Steps:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool | None]] = []

    async def tool_started(self, call: ToolCall) -> None:
        self.seen.append(("start", call.name, None))

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        self.seen.append(("finish", call.name, result.ok))


def usage(cost: float = 0.01, provider: str = "openai") -> LLMUsage:
    return LLMUsage(provider, MODEL, prompt_tokens=500, completion_tokens=40, cost_usd=cost, latency_ms=12.0)


def calls(*items: tuple[str, str, dict[str, Any]], cost: float = 0.01) -> ChatReply:
    return ChatReply("", tuple(ToolCall(i, n, a) for i, n, a in items), usage(cost))


def text(content: str, cost: float = 0.01) -> ChatReply:
    return ChatReply(content, (), usage(cost))


class ScriptedLLM:
    """Answers from a script (a reply or an exception to raise per call); records the turns of every call."""

    def __init__(self, *script: ChatReply | Exception, provider: str = "openai") -> None:
        self.script = list(script)
        self.seen: list[list[ChatTurn]] = []
        self._provider = provider
        self.model = MODEL

    @property
    def provider(self) -> str:
        return self._provider

    async def chat(self, turns: Sequence[ChatTurn], tools: Sequence[ToolSpec], *, as_of: datetime) -> ChatReply:
        assert [t.name for t in tools] == list(TOOL_NAMES)
        self.seen.append(list(turns))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


class PaidFailure(LLMError):
    def __init__(self) -> None:
        super().__init__("gave up after 4 attempts; last error: RateLimitError")
        self.model = MODEL
        self.usage = usage(0.02)


def assistant(llm: ScriptedLLM | None, *, cap: float = 1.0, max_rounds: int = 6,
              db: InMemoryDatabase | None = None) -> tuple[ChatAssistant, FakeToolBox, InMemoryDatabase]:
    db = db or InMemoryDatabase(HashingEmbedder())
    tools = FakeToolBox()
    return ChatAssistant(tools, uow_factory=lambda: InMemoryUnitOfWork(db), scope=SCOPE, daily_cap_usd=cap, tz=NY,
                         llm=llm, max_rounds=max_rounds), tools, db


async def records(db: InMemoryDatabase) -> list[LLMCallRecord]:
    async with InMemoryUnitOfWork(db) as uow:
        return list(reversed(await uow.llm_calls.list(SCOPE)))


async def spend(db: InMemoryDatabase, cost: float, at: datetime = AS_OF, agent: str = "signal") -> None:
    async with InMemoryUnitOfWork(db) as uow:
        await uow.llm_calls.add(LLMCallRecord(at=at, scope=SCOPE, agent=agent, provider="openai", model=MODEL,
                                              prompt_tokens=1, completion_tokens=1, cost_usd=cost, latency_ms=1.0,
                                              ok=True))
        await uow.commit()


def well_formed(turns: Sequence[ChatTurn]) -> bool:
    """Every assistant tool call is answered by a tool turn right after it, and the last turn is the answer."""
    for i, turn in enumerate(turns):
        if turn.tool_calls:
            answered = [t.tool_call_id for t in turns[i + 1: i + 1 + len(turn.tool_calls)] if t.role == "tool"]
            if answered != [c.id for c in turn.tool_calls]:
                return False
    return turns[-1].role == "assistant" and not turns[-1].tool_calls


async def test_a_tool_round_trip_reaches_the_model_and_every_call_is_a_step_in_order() -> None:
    llm = ScriptedLLM(calls(("c1", "portfolio", {}), ("c2", "performance", {"window": "week"})),
                      text("You hold AAPL and NVDA; cash is 412.50 USD."))
    chat, tools, _ = assistant(llm)
    steps = Steps()

    answer = await chat.answer([], "what do we hold and how was the week?", who="ann", as_of=AS_OF, steps=steps)

    assert answer.text == "You hold AAPL and NVDA; cash is 412.50 USD."
    assert steps.seen == [("start", "portfolio", None), ("finish", "portfolio", True),
                          ("start", "performance", None), ("finish", "performance", True)]
    assert tools.ran == [("portfolio", {}, "ann"), ("performance", {"window": "week"}, "ann")]
    second = llm.seen[1]
    assert second[0].role == "system" and "confirm" in second[0].content and "ann" in second[0].content
    assert [t.role for t in second] == ["system", "user", "assistant", "tool", "tool"]
    assert [t.tool_call_id for t in second[3:]] == ["c1", "c2"]
    assert json.loads(second[3].content)["rows"] == [["AAPL", "1.5"], ["NVDA", "0.2"]]
    assert answer.model == MODEL and answer.cost_usd == pytest.approx(0.02) and answer.pending is None
    assert [r.name for r in answer.results] == ["portfolio", "performance"]
    assert well_formed(answer.turns) and answer.turns[0] == ChatTurn("user", "what do we hold and how was the week?")


async def test_each_model_call_is_recorded_under_agent_chat_so_the_gateway_counts_it() -> None:
    chat, _, db = assistant(ScriptedLLM(calls(("c1", "portfolio", {})), text("done", cost=0.03)))
    await chat.answer([], "portfolio?", who="ann", as_of=AS_OF, steps=NullStepSink())

    stored = await records(db)
    assert [(r.agent, r.model, r.ok, r.cost_usd, r.prompt_tokens) for r in stored] == [
        ("chat", MODEL, True, 0.01, 500), ("chat", MODEL, True, 0.03, 500)]
    gateway = LLMGateway({}, 1.0, SCOPE, NY)
    async with InMemoryUnitOfWork(db) as uow:
        assert await gateway.load_spend(uow, AS_OF) == pytest.approx(0.04)


async def test_history_is_sent_after_the_system_prompt() -> None:
    llm = ScriptedLLM(text("Still 412.50 USD."))
    chat, _, _ = assistant(llm)
    history = [ChatTurn("user", "cash?"), ChatTurn("assistant", "412.50 USD")]
    answer = await chat.answer(history, "and now?", who="ann", as_of=AS_OF, steps=NullStepSink())
    assert [t.content for t in llm.seen[0][1:]] == ["cash?", "412.50 USD", "and now?"]
    assert [t.role for t in answer.turns] == ["user", "assistant"]


async def test_the_model_gets_at_most_max_rounds_calls_and_the_tool_results_are_shown() -> None:
    again = [calls((f"c{i}", "portfolio", {})) for i in range(5)]
    llm = ScriptedLLM(*again)
    chat, tools, _ = assistant(llm, max_rounds=2)
    answer = await chat.answer([], "loop", who="ann", as_of=AS_OF, steps=NullStepSink())
    assert len(llm.seen) == 2
    assert len(tools.ran) == 1  # the last round's calls are not run: no model would read them
    assert "after 2 rounds" in answer.text and "Cash 412.50 USD" in answer.text
    assert well_formed(answer.turns)


async def test_unreadable_arguments_are_answered_as_bad_arguments_and_not_run() -> None:
    llm = ScriptedLLM(calls(("c1", "performance", {UNPARSED_ARGUMENTS: '{"window": "week"'})),
                      calls(("c2", "performance", {"window": "week"})), text("Up 1.2 % this week."))
    chat, tools, _ = assistant(llm)
    steps = Steps()
    answer = await chat.answer([], "week?", who="ann", as_of=AS_OF, steps=steps)
    assert tools.ran == [("performance", {"window": "week"}, "ann")]
    assert steps.seen[:2] == [("start", "performance", None), ("finish", "performance", False)]
    told = llm.seen[1][-1]
    assert told.role == "tool" and told.tool_call_id == "c1" and "bad arguments" in json.loads(told.content)["text"]
    assert answer.text == "Up 1.2 % this week."


async def test_an_unknown_tool_is_refused_without_running_anything() -> None:
    llm = ScriptedLLM(calls(("c1", "place_order", {"symbol": "AAPL"})), text("I cannot place orders."))
    chat, tools, _ = assistant(llm)
    answer = await chat.answer([], "buy AAPL", who="ann", as_of=AS_OF, steps=NullStepSink())
    assert tools.ran == [] and not answer.results[0].ok and "no tool named 'place_order'" in answer.results[0].text


async def test_over_the_daily_cap_the_router_answers_and_no_model_call_is_made() -> None:
    llm = ScriptedLLM(text("never"))
    chat, tools, db = assistant(llm, cap=0.50)
    await spend(db, 0.50)  # the trading agents spent the day's budget
    answer = await chat.answer([], "what do we hold?", who="ann", as_of=AS_OF, steps=NullStepSink())
    assert llm.seen == []
    assert answer.model == "router" and "daily budget is spent" in answer.text and "$0.50" in answer.text
    assert tools.ran == [("portfolio", {}, "ann")] and "Cash 412.50 USD" in answer.text
    assert [r.agent for r in await records(db)] == ["signal"]


async def test_the_budget_day_starts_at_midnight_in_the_exchange_timezone() -> None:
    llm = ScriptedLLM(text("fine"))
    chat, _, db = assistant(llm, cap=0.50)
    await spend(db, 0.50, at=datetime(2024, 3, 4, 4, 30, tzinfo=UTC))  # 23:30 on the 3rd in New York
    answer = await chat.answer([], "hi", who="ann", as_of=AS_OF, steps=NullStepSink())
    assert answer.text == "fine"


async def test_a_zero_cap_allows_no_paid_call_but_a_replay_is_free() -> None:
    paid = ScriptedLLM(text("never"))
    chat, _, _ = assistant(paid, cap=0.0)
    answer = await chat.answer([], "what is the meaning of life?", who="ann", as_of=AS_OF, steps=NullStepSink())
    assert paid.seen == [] and "daily budget is spent" in answer.text and "needs the model" in answer.text
    replay = ScriptedLLM(text("from the cassette"), provider="replay")
    chat, _, _ = assistant(replay, cap=0.0)
    assert (await chat.answer([], "hi", who="ann", as_of=AS_OF, steps=NullStepSink())).text == "from the cassette"


async def test_the_cap_counts_the_chats_own_calls_between_messages_and_rounds() -> None:
    llm = ScriptedLLM(calls(("c1", "portfolio", {}), cost=0.03), text("two calls", cost=0.03), text("never"))
    chat, _, _ = assistant(llm, cap=0.05)
    first = await chat.answer([], "portfolio?", who="ann", as_of=AS_OF, steps=NullStepSink())
    assert first.text == "two calls"  # 0.03 spent before the second call: still under 0.05
    second = await chat.answer(first.turns, "and cash?", who="ann", as_of=AS_OF, steps=NullStepSink())
    assert len(llm.seen) == 2 and second.model == "router" and "$0.06 of the $0.05" in second.text


async def test_a_failing_model_falls_back_to_the_router_and_the_failed_call_is_recorded() -> None:
    chat, tools, db = assistant(ScriptedLLM(PaidFailure()))
    answer = await chat.answer([], "how did we do this week?", who="ann", as_of=AS_OF, steps=NullStepSink())
    assert answer.model == "router" and answer.text.startswith("The chat model failed (PaidFailure)")
    assert tools.ran == [("performance", {"window": "week"}, "ann")]
    assert answer.cost_usd == pytest.approx(0.02)
    (record,) = await records(db)
    assert (record.agent, record.ok, record.cost_usd, record.model) == ("chat", False, 0.02, MODEL)
    assert record.error is not None and "RateLimitError" in record.error


async def test_a_model_failing_after_a_tool_round_shows_what_the_tools_returned() -> None:
    llm = ScriptedLLM(calls(("c1", "portfolio", {})), LLMError("timeout"))
    chat, tools, _ = assistant(llm)
    answer = await chat.answer([], "anything clever", who="ann", as_of=AS_OF, steps=NullStepSink())
    assert len(tools.ran) == 1 and "The chat model failed" in answer.text and "Cash 412.50 USD" in answer.text
    assert well_formed(answer.turns)


async def test_a_control_proposal_is_surfaced_as_pending_and_not_acted_on() -> None:
    llm = ScriptedLLM(calls(("c1", "control", {"action": "pause", "reason": "vacation"})),
                      text("I proposed pausing; please confirm."))
    chat, _, _ = assistant(llm)
    answer = await chat.answer([], "pause, I'm on vacation", who="ann", as_of=AS_OF, steps=NullStepSink())
    assert answer.pending is not None
    assert (answer.pending.id, answer.pending.action, answer.pending.requested_by) == ("act-123", ControlAction.PAUSE,
                                                                                       "ann")
    assert answer.pending.expires_at == AS_OF + timedelta(minutes=1) and answer.pending.reason == "vacation"


async def test_without_a_model_the_router_answers_with_tool_steps() -> None:
    chat, tools, db = assistant(None)
    steps = Steps()
    answer = await chat.answer([], "Please pause trading", who="bob", as_of=AS_OF, steps=steps)
    assert tools.ran == [("control", {"action": "pause", "reason": "Please pause trading"}, "bob")]
    assert steps.seen == [("start", "control", None), ("finish", "control", True)]
    assert answer.model == "router" and answer.pending is not None and answer.pending.id == "act-123"
    assert "confirm" in answer.text and well_formed(answer.turns) and await records(db) == []


async def test_without_a_model_a_negation_proposes_nothing() -> None:
    chat, tools, _ = assistant(None)
    answer = await chat.answer([], "don't pause trading", who="bob", as_of=AS_OF, steps=NullStepSink())
    assert tools.ran == [] and answer.pending is None and "proposed nothing" in answer.text


async def test_without_a_model_an_open_question_says_it_needs_one() -> None:
    chat, tools, _ = assistant(None)
    answer = await chat.answer([], "What would Buffett think of our book?", who="bob", as_of=AS_OF,
                               steps=NullStepSink())
    assert tools.ran == [] and "QUORUM_CHAT__MODEL" in answer.text and "pause trading" in answer.text


async def test_router_call_ids_stay_unique_across_a_conversation() -> None:
    chat, _, _ = assistant(None)
    first = await chat.answer([], "portfolio", who="bob", as_of=AS_OF, steps=NullStepSink())
    second = await chat.answer(first.turns, "portfolio", who="bob", as_of=AS_OF, steps=NullStepSink())
    ids = [c.id for t in (*first.turns, *second.turns) for c in t.tool_calls]
    assert len(ids) == len(set(ids)) == 2


def test_the_system_prompt_says_numbers_come_from_tools_and_actions_need_confirmation() -> None:
    prompt = SYSTEM_PROMPT.lower()
    assert "must come from a tool result" in prompt and "confirms" in prompt and "cycle id" in prompt


async def converse(llm: ToolCallingLLM) -> list[ChatAnswer]:
    """A two-message conversation (a question, then an order) through the assistant and the fake tool box."""
    db = InMemoryDatabase(HashingEmbedder())
    chat = ChatAssistant(FakeToolBox(), uow_factory=lambda: InMemoryUnitOfWork(db), scope=SCOPE, daily_cap_usd=1.0,
                         tz=NY, llm=llm)
    answers: list[ChatAnswer] = []
    history: list[ChatTurn] = []
    for question in QUESTIONS:
        answer = await chat.answer(history, question, who="ann", as_of=AS_OF, steps=NullStepSink())
        answers.append(answer)
        history += answer.turns
    return answers


def same(a: ChatAnswer, b: ChatAnswer) -> bool:
    return (a.text, a.results, a.pending, a.turns) == (b.text, b.results, b.pending, b.turns)


async def test_recorded_cassettes_replay_the_conversation_for_free() -> None:
    first, second = await converse(ChatCassette(CASSETTES, MODEL))
    assert first.text.startswith("NVDA was bought on 20-day momentum (event #41")
    assert [r.name for r in first.results] == ["search_events", "portfolio"]
    assert second.pending is not None and second.pending.action is ControlAction.PAUSE
    assert "confirm" in second.text and first.cost_usd == second.cost_usd == 0.0
    assert first.model == MODEL
