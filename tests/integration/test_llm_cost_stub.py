"""The LLM-cost benchmark's local server: every agent's real prompt, sent by the real litellm adapter, gets a valid
answer about the symbols it asked, and the tokens it reports are litellm's count of what was sent."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from adapters.llm.litellm_adapter import LiteLLM
from application.agents import render
from application.discovery import llm_picker
from bench._llm_answers import answer
from bench._llm_cost_report import session_of, usd
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
from domain.discovery.llm_schema import LLMPickerContext, LLMPickerOutput, PickerCandidate, PortfolioSummary
from domain.ports.llm import LLMRequest

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
