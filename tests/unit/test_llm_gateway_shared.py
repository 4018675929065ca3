"""One LLM gateway per process: the trading cycle and discovery share it, so they share one spend ledger, and
each writes (or, on a rollback, forgets) only its own buffered calls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.llm_gateway import LLMGateway
from domain.ports.llm import Decision, LLMRequest, LLMUsage, Message

AS_OF = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
SCOPE = "live"


class Ok(BaseModel):
    ok: bool


class PaidLLM:
    """Every call costs 30 cents."""

    provider = "openai"

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        return Decision(Ok(ok=True), LLMUsage("openai", "openai/gpt-4o-mini", 1000, 100, cost_usd=0.30))


def request(agent: str, cycle_id: str | None) -> LLMRequest[Ok]:
    return LLMRequest(agent=agent, messages=(Message("user", "?"),), output_schema=Ok,  # type: ignore[arg-type]
                      context=Ok(ok=True), as_of=AS_OF, cycle_id=cycle_id)


def shared(cap: float = 1.0) -> tuple[LLMGateway, InMemoryDatabase]:
    return LLMGateway({"default": PaidLLM()}, cap, SCOPE, ZoneInfo("America/New_York")), \
        InMemoryDatabase(HashingEmbedder())


async def stored(db: InMemoryDatabase) -> list[tuple[str, str | None]]:
    async with InMemoryUnitOfWork(db) as uow:
        return [(r.agent, r.cycle_id) for r in await uow.llm_calls.list(SCOPE, limit=100)]


async def test_a_cycle_writes_its_own_calls_and_leaves_discoverys_for_discovery() -> None:
    gw, db = shared()
    await gw.ask(request("picker", None))            # discovery, running at the same time
    await gw.ask(request("signal", "cycle-1"))
    async with InMemoryUnitOfWork(db) as uow:
        await gw.flush(uow, "cycle-1")
        await uow.commit()
    assert await stored(db) == [("signal", "cycle-1")]
    async with InMemoryUnitOfWork(db) as uow:
        await gw.flush(uow, None)
        await uow.commit()
    assert sorted(await stored(db), key=str) == [("picker", None), ("signal", "cycle-1")]


async def test_a_rolled_back_cycle_forgets_only_its_own_calls() -> None:
    gw, db = shared()
    await gw.ask(request("picker", None))
    await gw.ask(request("signal", "cycle-1"))
    gw.discard("cycle-1")
    assert gw.calls("cycle-1") == ()
    async with InMemoryUnitOfWork(db) as uow:
        await gw.flush(uow, None)
        await uow.commit()
    assert await stored(db) == [("picker", None)]


async def test_one_ledger_counts_what_the_other_user_spent_and_has_not_written_yet() -> None:
    gw, db = shared(cap=0.50)
    await gw.ask(request("signal", "cycle-1"))
    async with InMemoryUnitOfWork(db) as uow:
        await gw.flush(uow, "cycle-1")
        await uow.commit()
    await gw.ask(request("picker", None))            # discovery spent 30 cents, still buffered
    async with InMemoryUnitOfWork(db) as uow:
        assert round(await gw.load_spend(uow, AS_OF), 2) == 0.60   # the next cycle's start
    assert await gw.ask(request("signal", "cycle-2")) is None      # over the one cap: refused
