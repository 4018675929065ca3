"""The daily LLM cap holds under concurrency and across callers: each paid call reserves its worst case before it
is made and settles its real cost after, on one ledger shared by the agents' gateway and the chat."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.chat.agent import ChatAssistant
from application.chat.contracts import NullStepSink
from application.llm_gateway import LLMGateway
from application.llm_spend import SpendLedger
from domain.chat import ChatTurn, ToolCall, ToolResult, ToolSpec
from domain.events import EventType
from domain.ports.chat import ChatReply
from domain.ports.llm import Decision, LLMRequest, LLMUsage, Message

NY = ZoneInfo("America/New_York")
AS_OF = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
SCOPE = "live"


class Ok(BaseModel):
    ok: bool


class SlowPaidLLM:
    """A paid model answering only when released, each answer costing `cost` (its worst case is `worst`)."""

    provider = "openai"

    def __init__(self, cost: float, worst: float) -> None:
        self.cost, self.worst = cost, worst
        self.release = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.answered = 0

    def worst_case_cost_usd(self, agent: str, prompt_chars: int) -> float | None:
        return self.worst

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await self.release.wait()
        self.in_flight -= 1
        self.answered += 1
        return Decision(Ok(ok=True), LLMUsage("openai", "openai/gpt-4o-mini", 900, 80, cost_usd=self.cost))

    async def chat(self, turns: Sequence[ChatTurn], tools: Sequence[ToolSpec], *, as_of: datetime) -> ChatReply:
        await self.complete(ask(None))
        return ChatReply("All good.", (), LLMUsage("openai", "openai/gpt-4o-mini", 900, 80, cost_usd=self.cost))


class NoTools:
    def specs(self) -> list[ToolSpec]:
        return []

    async def run(self, call: ToolCall, *, who: str, as_of: datetime) -> ToolResult:
        raise AssertionError("no tool is asked for")


def ask(cycle_id: str | None, agent: str = "signal") -> LLMRequest[Ok]:
    return LLMRequest(agent=agent, messages=(Message("user", "?"),), output_schema=Ok,  # type: ignore[arg-type]
                      context=Ok(ok=True), as_of=AS_OF, cycle_id=cycle_id)


async def answers_once_all_wait(llm: SlowPaidLLM, calls: list[Any]) -> list[Any]:
    tasks = [asyncio.create_task(c) for c in calls]
    for _ in range(20):
        await asyncio.sleep(0)  # let every call reach its reservation (or the model)
    llm.release.set()
    return await asyncio.gather(*tasks)


async def recorded_spend(db: InMemoryDatabase) -> float:
    async with InMemoryUnitOfWork(db) as uow:
        return await uow.llm_calls.spend(SCOPE, since=AS_OF.replace(hour=0), until=AS_OF.replace(hour=23))


@pytest.mark.parametrize(("cost", "worst"), [(0.0004, 0.0005), (0.0001, 0.0003), (0.0005, 0.0005)])
async def test_concurrent_calls_with_a_tiny_cap_never_spend_past_it(cost: float, worst: float) -> None:
    llm = SlowPaidLLM(cost, worst)
    gateway = LLMGateway({"default": llm}, 0.001, SCOPE, NY)
    db = InMemoryDatabase(HashingEmbedder())
    async with InMemoryUnitOfWork(db) as uow:
        await gateway.load_spend(uow, AS_OF)
    results = await answers_once_all_wait(llm, [gateway.ask(ask("cycle-1")) for _ in range(20)])
    async with InMemoryUnitOfWork(db) as uow:
        await gateway.flush(uow, "cycle-1")
        await uow.commit()
    spent = await recorded_spend(db)
    assert spent <= 0.001 + 1e-12                               # not one call over the cap
    assert llm.most_in_flight * worst <= 0.001 + 1e-12          # only what fits in its worst case is in flight
    assert sum(r is not None for r in results) == llm.answered == round(spent / cost)
    assert llm.answered >= int(0.001 // worst)                  # and the cap is used, not wasted
    async with InMemoryUnitOfWork(db) as uow:
        assert gateway.spend.reserved == 0 and round(await gateway.load_spend(uow, AS_OF), 6) == round(spent, 6)


async def test_a_call_whose_worst_case_exceeds_what_is_left_is_refused_and_alerted_once() -> None:
    llm = SlowPaidLLM(0.0001, 0.002)
    llm.release.set()
    gateway = LLMGateway({"default": llm}, 0.001, SCOPE, NY)
    assert await gateway.ask(ask("cycle-1")) is None and await gateway.ask(ask("cycle-1")) is None
    assert llm.answered == 0
    db = InMemoryDatabase(HashingEmbedder())
    async with InMemoryUnitOfWork(db) as uow:
        await gateway.flush(uow, "cycle-1")
        await uow.commit()
        assert [e.type for e in await uow.events.after(SCOPE, 0, limit=10)] == [EventType.LLM_BUDGET_EXHAUSTED]


async def test_the_chat_and_the_agents_reserve_on_one_ledger() -> None:
    db = InMemoryDatabase(HashingEmbedder())
    ledger = SpendLedger(0.001, (SCOPE,), NY)
    llm = SlowPaidLLM(0.0004, 0.0005)
    gateway = LLMGateway({"default": llm}, 0.001, SCOPE, NY, ledger=ledger)
    chat = ChatAssistant(NoTools(), uow_factory=lambda: InMemoryUnitOfWork(db), scope=SCOPE, daily_cap_usd=0.001,
                         tz=NY, llm=llm, ledger=ledger)  # type: ignore[arg-type]
    async with InMemoryUnitOfWork(db) as uow:
        await gateway.load_spend(uow, AS_OF)
    calls = [gateway.ask(ask("cycle-1")) for _ in range(3)] + \
        [chat.answer([], "how are we doing?", who="ana", as_of=AS_OF, steps=NullStepSink()) for _ in range(3)]
    await answers_once_all_wait(llm, calls)
    async with InMemoryUnitOfWork(db) as uow:
        await gateway.flush(uow, "cycle-1")
        await uow.commit()
    assert llm.answered == 2 and await recorded_spend(db) == pytest.approx(0.0008)


async def test_the_chats_spend_counts_in_the_agents_cap_and_the_agents_in_the_chats() -> None:
    db = InMemoryDatabase(HashingEmbedder())
    llm = SlowPaidLLM(0.0006, 0.0006)
    llm.release.set()
    chat = ChatAssistant(NoTools(), uow_factory=lambda: InMemoryUnitOfWork(db), scope=SCOPE, daily_cap_usd=0.001,
                         tz=NY, llm=llm)  # type: ignore[arg-type]   # another process: a ledger of its own
    answer = await chat.answer([], "how are we doing?", who="ana", as_of=AS_OF, steps=NullStepSink())
    assert answer.text == "All good."
    gateway = LLMGateway({"default": llm}, 0.001, SCOPE, NY)
    async with InMemoryUnitOfWork(db) as uow:
        assert await gateway.load_spend(uow, AS_OF) == pytest.approx(0.0006)
    assert await gateway.ask(ask("cycle-1")) is None           # 0.0006 + 0.0006 > 0.001: the chat's spend counts

    db2 = InMemoryDatabase(HashingEmbedder())
    agents = LLMGateway({"default": llm}, 0.001, SCOPE, NY)
    assert await agents.ask(ask("cycle-1")) is not None
    async with InMemoryUnitOfWork(db2) as uow:
        await agents.flush(uow, "cycle-1")
        await uow.commit()
    chat2 = ChatAssistant(NoTools(), uow_factory=lambda: InMemoryUnitOfWork(db2), scope=SCOPE, daily_cap_usd=0.001,
                          tz=NY, llm=llm)  # type: ignore[arg-type]
    refused = await chat2.answer([], "how are we doing?", who="ana", as_of=AS_OF, steps=NullStepSink())
    assert "daily budget is spent" in refused.text and llm.answered == 2
