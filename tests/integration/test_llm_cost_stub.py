"""The LLM-cost benchmark's local server: every agent's real prompt, sent by the real litellm adapter, gets a valid
answer about the symbols it asked, and the tokens it reports are litellm's count of what was sent; the real chat
(assistant, litellm tool calling, the six tools) gets the tool calls its questions need, then an answer."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from adapters.llm.litellm_adapter import LiteLLM
from adapters.llm.litellm_chat import LiteLLMChat
from application.agents import render
from application.chat.agent import ChatAssistant
from application.chat.contracts import NullStepSink
from application.discovery import llm_picker
from bench._chat_answers import DAILY_SCRIPT
from bench._llm_answers import answer
from bench._llm_cost_report import ProfileRun, profile_figures, session_of, usd
from bench._llm_stub import LLMStubServer, message_tokens
from domain.agents.schemas import (
    MarketConditions,
    MemoryEvidence,
    RiskBatch,
    RiskCandidate,
    RiskContext,
    SignalBatch,
    SignalContext,
    SymbolFeatures,
    ValidatorBatch,
    ValidatorCandidate,
    ValidatorContext,
)
from domain.chat import ChatTurn
from domain.discovery.llm_schema import LLMPickerContext, LLMPickerOutput, PickerCandidate, PortfolioSummary
from domain.ports.llm import LLMRequest
from tests.support.chat_fakes import make_chat_world

pytestmark = pytest.mark.integration

AS_OF = datetime(2016, 3, 14, 14, 5, tzinfo=UTC)  # 10:05 ET
MARKET = MarketConditions(vix=17.0, vix_is_proxy=False, spy_return_20d=0.04, spy_above_sma_50=True, spy_trend="up",
                          similar_conditions=(MemoryEvidence(text="calm uptrend", distance=0.1, outcome="UP"),))


def features(symbol: str, held: float = 0.0) -> SymbolFeatures:
    return SymbolFeatures(symbol=symbol, price=100.0, return_1d=0.01, return_5d=0.02, return_20d=0.05,
                          return_60d=0.08, sma_20=98.0, sma_50=95.0, volatility_20d=0.25, atr_pct=0.018,
                          avg_dollar_volume_20d=5e8, volume_ratio=1.2, held_qty=held,
                          unrealized_return=0.03 if held else None,
                          similar_trades=(MemoryEvidence(text=f"Bought {symbol} on a breakout", distance=0.2),))


@pytest.fixture(scope="module")
def server() -> Iterator[LLMStubServer]:
    with LLMStubServer() as s:
        yield s


def requests() -> list[LLMRequest[Any]]:
    signal = SignalContext(as_of=AS_OF.isoformat(), market=MARKET, symbols=(features("AAPL"), features("MSFT", 3)))
    risk = RiskContext(as_of=AS_OF.isoformat(), equity=650, cash=400, gross_exposure_pct=0.3, max_position_pct=0.1,
                       default_stop_pct=0.05, candidates=(RiskCandidate(
                           symbol="AAPL", action="BUY", confidence=0.7, price=100, volatility_20d=0.25, atr_pct=0.018,
                           held_qty=0),))
    validator = ValidatorContext(as_of=AS_OF.isoformat(), market=MARKET, candidates=(ValidatorCandidate(
        symbol="AAPL", action="BUY", confidence=0.7, position_pct=0.08, stop_loss_pct=0.04, reasoning="breakout"),))
    picker = LLMPickerContext(as_of=AS_OF.isoformat(), portfolio=PortfolioSummary(equity=650), market=MARKET,
                              candidates=(PickerCandidate(symbol="NFLX", prescore=0.6, features=features("NFLX")),
                                          PickerCandidate(symbol="XOM", prescore=0.3, features=features("XOM"))))
    return [
        LLMRequest(agent="signal", messages=render("signal", signal, SignalBatch), output_schema=SignalBatch,
                   context=signal, as_of=AS_OF),
        LLMRequest(agent="risk", messages=render("risk", risk, RiskBatch), output_schema=RiskBatch, context=risk,
                   as_of=AS_OF),
        LLMRequest(agent="validator", messages=render("validator", validator, ValidatorBatch),
                   output_schema=ValidatorBatch, context=validator, as_of=AS_OF),
        LLMRequest(agent="picker", messages=llm_picker.render(picker), output_schema=LLMPickerOutput, context=picker,
                   as_of=AS_OF),
    ]


async def test_every_agent_gets_a_valid_answer_about_what_it_asked_with_counted_tokens(server: LLMStubServer) -> None:
    models = dict.fromkeys(("signal", "risk", "validator", "picker"), "openai/gpt-4o-mini")
    llm = LiteLLM(models, api_keys={"openai": "sk-local"}, api_base=server.api_base("t1"), max_retries=0)
    asked = {"signal": {"AAPL", "MSFT"}, "risk": {"AAPL"}, "validator": {"AAPL"}, "picker": {"NFLX", "XOM"}}
    for request in requests():
        decision = await llm.complete(request)  # validated against the agent's schema, or it raises
        items = next(iter(decision.output.model_dump().values()))
        assert {i["symbol"] for i in items} == asked[request.agent]
        record = server.records[-1]
        assert (record.profile, record.agent, record.day) == ("t1", request.agent, "2016-03-14")
        assert decision.usage.prompt_tokens == record.prompt_tokens > record.system_tokens > 0
        assert decision.usage.completion_tokens == record.completion_tokens > 10
        assert record.response_format_tokens > 0
        assert record.memory_tokens > 0 or request.agent in ("risk", "validator")
    sent = [m for m in server.records if m.profile == "t1"]
    assert [r.agent for r in sent] == ["signal", "risk", "validator", "picker"]


async def test_prompt_tokens_are_the_tokenizers_count_of_the_messages_and_the_response_format(
        server: LLMStubServer) -> None:
    messages = [{"role": "system", "content": "You are the risk agent."},
                {"role": "user", "content": json.dumps({"as_of": AS_OF.isoformat(), "equity": 650, "candidates": []})}]
    _, prompt, completion = server.handle("t2", {"messages": messages})
    assert prompt == message_tokens(messages) and completion > 0
    fmt = {"type": "json_schema", "json_schema": {"name": "RiskBatch", "schema": RiskBatch.model_json_schema()}}
    _, with_format, _ = server.handle("t2", {"messages": messages, "response_format": fmt})
    assert with_format > prompt + 50


def signal_answers(day: int, hour: int, move: float = 0.01, *, price_digits: int = 6) -> list[dict[str, Any]]:
    rows = [{**features(f"S{i:02d}", held=1 if i % 5 == 0 else 0).model_dump(), "return_1d": move + i / 1000,
             "price": round(100.123456, price_digits)} for i in range(20)]
    ctx = {"as_of": datetime(2016, 3, day, hour, 35, tzinfo=UTC).isoformat(), "symbols": rows}
    return list(SignalBatch.model_validate(answer("signal", ctx)).model_dump()["proposals"])


def test_answers_vary_across_symbols_and_days_and_stay_put_while_nothing_moves() -> None:
    actions: Counter[str] = Counter()
    reasons: set[str] = set()
    for day in range(1, 31):
        proposals = signal_answers(day, 14)
        actions.update(p["action"] for p in proposals)
        reasons.update(p["reasoning"] for p in proposals)
    assert {"BUY", "SELL", "HOLD"} <= set(actions) and actions["HOLD"] > actions["BUY"]
    assert len(reasons) > 100
    assert signal_answers(14, 19) == signal_answers(14, 14), "a later cycle, the same inputs: the same answers"
    assert signal_answers(14, 19, price_digits=2) == signal_answers(14, 14), "the wording does not matter"
    assert signal_answers(14, 19, move=-0.04) != signal_answers(14, 14), "a move changes the answers"


def test_a_call_belongs_to_its_session_or_the_next_one_and_costs_list_price() -> None:
    sessions = [date(2016, 3, 11), date(2016, 3, 14)]
    assert session_of("2016-03-11", sessions) == date(2016, 3, 11)
    assert session_of("2016-03-13", sessions) == date(2016, 3, 14), "Sunday's discovery prepares Monday"
    assert session_of("2016-03-15", sessions) is None
    assert usd(1_000_000, 100_000, (0.80, 4.00)) == pytest.approx(1.20)


async def test_the_chats_daily_script_runs_through_the_real_chat_with_tool_calls_then_answers(
        server: LLMStubServer) -> None:
    world = make_chat_world()
    as_of = world.clock.now()
    llm = LiteLLMChat("openai/gpt-4o-mini", api_key="sk-local", api_base=server.api_base("chat"), max_retries=0)
    assistant = ChatAssistant(world.tools, uow_factory=world.read_models.uow_factory, scope="live",
                              daily_cap_usd=1000.0, tz=world.read_models.calendar.tz, llm=llm)
    history: list[ChatTurn] = []
    tools: list[list[str]] = []
    for question in DAILY_SCRIPT:
        reply = await assistant.answer(history, question.format(symbol="NVDA"), who="op", as_of=as_of,
                                       steps=NullStepSink())
        history.extend(reply.turns)
        assert reply.model == "openai/gpt-4o-mini", reply.text  # the model answered, not the router
        assert all(r.ok for r in reply.results) and reply.text.startswith("Here is what the tools show")
        tools.append([r.name for r in reply.results])
    assert tools == [["performance"], ["portfolio"], ["search_events"], ["patterns"], ["performance", "search_events"]]
    sent = [r for r in server.records if r.profile == "chat"]
    assert len(sent) == 2 * len(DAILY_SCRIPT) and {r.agent for r in sent} == {"chat"}
    assert {r.day for r in sent} == {as_of.date().isoformat()}
    assert all(r.tools_tokens > 500 for r in sent), "the six tools' schemas go with every round"
    assert [r.tool_results_tokens > 0 for r in sent[:2]] == [False, True]
    assert sent[-1].prompt_tokens > sent[0].prompt_tokens, "the conversation is resent with each message"
    async with world.read_models.uow_factory() as uow:
        recorded = await uow.llm_calls.list("live", limit=100)
    assert sorted(c.prompt_tokens for c in recorded) == sorted(r.prompt_tokens for r in sent)

    run = ProfileRun("chat", {"cycles_by_day": {}}, sent)
    day = [date.fromisoformat(as_of.date().isoformat())]
    figures = profile_figures(run, day, day, {"p": (1.0, 1.0)})
    chat = figures["tokens_per_day"]["chat"]
    assert figures["usd_per_day"]["p"] == 0.0, "the chat is not in the schedule's figure"
    assert figures["usd_per_day_with_chat"]["p"] == pytest.approx((chat["prompt"] + chat["completion"]) / 1e6, abs=1e-5)
    assert figures["tokens_per_day"]["total"]["calls"] == 0 and figures["tokens_per_day"]["total_with_chat"] == chat
