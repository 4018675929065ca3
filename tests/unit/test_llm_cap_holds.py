"""A cap that holds (issue 15): a paid call reserves the estimate of its own cost (its prompt's tokens counted with
litellm at the input price, its own completion limit at the output price), each retry reserves before it is made,
and calls from every gateway, the chat and another event loop (the nightly evals' thread) on the process's one
ledger never spend past the cap."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from adapters.llm.litellm_adapter import LiteLLM, _litellm
from application.llm_gateway import LLMGateway
from application.llm_spend import SpendLedger
from domain.ports.llm import LLMRequest, Message

NY = ZoneInfo("America/New_York")
AS_OF = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
SCOPE = "live"
MODEL = "openai/quorum-test-7b"
PRICE = (0.80, 4.00)  # USD per million input and output tokens
LIMIT = 214


class Ok(BaseModel):
    ok: bool


class ScriptedLiteLLM(LiteLLM):
    """The LiteLLM adapter with the provider scripted: each answer reports the prompt tokens litellm counts for what
    was sent and the whole completion limit as completion tokens (every attempt costs its worst case); the calls
    whose user message is in `garbage_first` get an unusable answer first."""

    def __init__(self, garbage_first: frozenset[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__({"default": MODEL}, api_keys={"openai": "sk-test"}, response_format="none",
                         prices={MODEL: PRICE}, max_tokens=4096, backoff_base_s=0, backoff_cap_s=0,
                         sleep=_no_sleep, **kwargs)
        self.garbage_first = garbage_first
        self.sent_max_tokens: list[int | None] = []
        self.attempts: dict[str, int] = {}

    async def _call(self, model: str, messages: list[dict[str, Any]], fmt: dict[str, Any] | None,
                    max_tokens: int | None = None) -> Any:
        self.sent_max_tokens.append(max_tokens)
        key = next(m["content"] for m in messages if m["role"] == "user")
        self.attempts[key] = self.attempts.get(key, 0) + 1
        await asyncio.sleep(0)
        text = "not json" if key in self.garbage_first and self.attempts[key] == 1 else '{"ok": true}'
        usage = SimpleNamespace(prompt_tokens=_litellm().token_counter(model=model, messages=messages),
                                completion_tokens=max_tokens or 4096)
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=text), finish_reason="stop")],
                               usage=usage)


async def _no_sleep(_: float) -> None:
    return None


def ask(text: str = "?", cycle_id: str | None = "cycle-1") -> LLMRequest[Ok]:
    return LLMRequest(agent="signal", messages=(Message("system", "Answer with one JSON object."),
                                                Message("user", text)), output_schema=Ok,
                      context=Ok(ok=True), as_of=AS_OF, cycle_id=cycle_id, max_output_tokens=LIMIT)


def gateway(llm: Any, cap: float, ledger: SpendLedger | None = None) -> LLMGateway:
    return LLMGateway({"default": llm}, cap, SCOPE, NY, ledger=ledger)


async def test_a_call_reserves_its_counted_prompt_at_the_input_price_and_its_own_output_limit() -> None:
    lite = ScriptedLiteLLM()
    request = ask('{"symbols": ["AAPL", "MSFT"], "price": 182.31}')
    sent = lite.messages_for(MODEL, request, "none")
    tokens = _litellm().token_counter(model=MODEL, messages=sent)
    assert lite.estimate_cost_usd(request) == pytest.approx(tokens * 0.8e-6 + LIMIT * 4e-6)
    unlimited = replace(request, max_output_tokens=None)
    assert lite.estimate_cost_usd(unlimited) == pytest.approx(tokens * 0.8e-6 + 4096 * 4e-6)
    await lite.complete(request)
    assert lite.sent_max_tokens == [LIMIT], "the provider is held to the limit the reservation assumed"


def test_an_anthropic_prompt_is_counted_with_a_margin_at_the_prompt_cache_write_price() -> None:
    claude = "anthropic/quorum-test-claude"
    lite = LiteLLM({"default": claude}, response_format="none", prices={claude: PRICE})
    request = ask('{"symbols": ["AAPL", "MSFT"], "price": 182.31}')
    sent = lite.messages_for(claude, request, "none")  # the schema in the system prompt, marked for caching
    assert any(isinstance(m["content"], list) for m in sent)
    counted = _litellm().token_counter(model=claude, messages=[
        {"role": m["role"], "content": m["content"] if isinstance(m["content"], str) else m["content"][0]["text"]}
        for m in sent])
    assert lite.estimate_cost_usd(request) == pytest.approx(
        math.ceil(counted * 1.25) * 0.8e-6 * 1.25 + LIMIT * 4e-6)


async def test_the_cap_admits_a_call_exactly_when_its_own_estimate_fits() -> None:
    lite = ScriptedLiteLLM()
    estimate = lite.estimate_cost_usd(ask())
    assert estimate is not None and estimate < 0.002
    assert await gateway(lite, estimate * 0.999).ask(ask()) is None
    answered = await gateway(lite, estimate * 1.001).ask(ask())
    assert answered is not None and answered.usage.cost_usd == pytest.approx(estimate)


async def test_a_retry_is_made_only_when_the_cap_covers_it_and_every_attempt_is_recorded_with_its_cost() -> None:
    lite = ScriptedLiteLLM(garbage_first=frozenset({"retry me"}))
    first = lite.estimate_cost_usd(ask("retry me"))
    assert first is not None
    tight = gateway(lite, first * 1.5)
    assert await tight.ask(ask("retry me")) is None
    assert lite.attempts["retry me"] == 1, "the re-ask did not fit under the cap: not sent"
    [record] = tight.calls("cycle-1")
    assert not record.ok and "daily LLM cap" in (record.error or "")
    assert record.cost_usd == pytest.approx(first) and tight.spend.spent <= first * 1.5

    lite = ScriptedLiteLLM(garbage_first=frozenset({"retry me"}))
    roomy = gateway(lite, 1.0)
    decision = await roomy.ask(ask("retry me"))
    assert decision is not None and decision.usage.attempts == 2
    [record] = roomy.calls("cycle-1")
    assert record.ok and record.cost_usd == pytest.approx(roomy.spend.spent) and record.cost_usd > 2 * first * 0.99
    assert record.prompt_tokens > 0 and record.completion_tokens == 2 * LIMIT


async def test_many_concurrent_calls_from_every_caller_and_another_event_loop_never_spend_past_the_cap() -> None:
    texts = [f"question {i}" for i in range(90)]
    lite = ScriptedLiteLLM(garbage_first=frozenset(texts[::3]))  # a third of the calls need a re-ask
    estimate = lite.estimate_cost_usd(ask(texts[0]))
    assert estimate is not None
    cap = 12.5 * estimate
    ledger = SpendLedger(cap, (SCOPE, "evals"), NY)
    agents, discovery = gateway(lite, cap, ledger), gateway(lite, cap, ledger)
    evals = LLMGateway({"default": lite}, cap, "evals", UTC, ledger=ledger)

    async def in_another_loop() -> list[Any]:
        return list(await asyncio.gather(*(evals.ask(ask(t, f"eval-{t}")) for t in texts[60:])))

    answers = await asyncio.gather(
        *(agents.ask(ask(t)) for t in texts[:30]), *(discovery.ask(ask(t, None)) for t in texts[30:60]),
        asyncio.to_thread(asyncio.run, in_another_loop()))
    answered = sum(a is not None for a in answers[:60]) + sum(a is not None for a in answers[60])
    records = [*agents.calls("cycle-1"), *discovery.calls(None), *(r for t in texts[60:]
                                                                   for r in evals.calls(f"eval-{t}"))]
    spent = sum(r.cost_usd for r in records)
    assert spent <= cap + 1e-12, f"spent {spent:.6f} over the cap {cap:.6f}"
    assert ledger.spent == pytest.approx(spent) and ledger.reserved == 0
    assert answered >= 6, "the cap is used, not wasted"
    assert sum(lite.attempts.values()) > answered, "re-asks happened and were paid for within the cap"


async def test_a_cycles_hold_keeps_other_callers_waiting_until_it_is_released() -> None:
    ledger = SpendLedger(1.0, (SCOPE,), NY)
    covered, held = await ledger.reserve_most([0.3, 0.6, 0.9, 1.2])
    assert covered == 3 and held is not None and ledger.reserved == pytest.approx(0.9)
    call = ledger.draw(held, 0.25)
    assert call is not None and ledger.reserved == pytest.approx(0.9)
    other = asyncio.create_task(ledger.reserve(0.2))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not other.done(), "the hold's money is not for other callers"
    await ledger.settle(call, 0.1)
    ledger.release(held)
    assert await other is not None and ledger.spent == pytest.approx(0.1)


async def test_recorded_retries_count_against_the_next_load() -> None:
    lite = ScriptedLiteLLM(garbage_first=frozenset({"retry me"}))
    db = InMemoryDatabase(HashingEmbedder())
    gw = gateway(lite, 1.0)
    await gw.ask(ask("retry me"))
    async with InMemoryUnitOfWork(db) as uow:
        await gw.flush(uow, "cycle-1")
        await uow.commit()
    async with InMemoryUnitOfWork(db) as uow:
        [stored] = await uow.llm_calls.list(SCOPE, limit=10)
        assert stored.ok and stored.cost_usd == pytest.approx(gw.spend.spent)
        assert await gw.load_spend(uow, AS_OF) == pytest.approx(stored.cost_usd)
