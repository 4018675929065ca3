"""Compact prompts: the output schema goes to the model once, numbers are rounded to what a decision needs, the
stable text comes first (marked for Anthropic's prompt cache), memory evidence only where it informs, and cached
prompt tokens are charged at their price."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from adapters.llm.json_output import ResponseFormatMode
from adapters.llm.litellm_adapter import LiteLLM
from application.agents import render
from application.discovery.llm_picker import render as render_picker
from application.prompts import LEGACY_STYLE, PromptStyle
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
from domain.ports.llm import AgentName, LLMRequest, Message

AS_OF = datetime(2016, 3, 14, 13, 35, tzinfo=UTC)
OPENAI = "openai/gpt-4o-mini"
CLAUDE = "anthropic/claude-3-5-haiku-20241022"
LONG_REASONING = "the setup looked constructive because " + "momentum and volume agreed " * 60
OPEN_TRADE = MemoryEvidence(text="BUY AAPL at 101.5: uptrend. Reasoning: still open", distance=0.0)
WON = MemoryEvidence(text=f"BUY MSFT at 50.25: uptrend. Reasoning: {LONG_REASONING}", distance=0.1234567,
                     outcome="WIN", return_pct=0.041234567)
LOST = MemoryEvidence(text="BUY XOM at 80: uptrend. Reasoning: breakout", distance=0.2, outcome="LOSS",
                      return_pct=-0.0312)
MARKET = MarketConditions(
    vix=16.123456, vix_is_proxy=False, spy_return_20d=0.010273661241931187, spy_above_sma_50=True, spy_trend="up",
    sector_returns_20d={"XLK": 0.0234567891, "XLE": -0.0123456789},
    text="Market on 2016-03-11: VIX 16.1 (calm); SPY in an uptrend, +1.0% over 20 days, above its 50-day average.",
    similar_conditions=(MemoryEvidence(text="Market on 2016-03-11: VIX 16.1 (calm)", distance=0.0),
                        MemoryEvidence(text="Market on 2015-11-02: VIX 15.0 (calm)", distance=0.08, outcome="RALLY",
                                       return_pct=0.0155)))


def features(symbol: str = "AAPL", evidence: tuple[MemoryEvidence, ...] = ()) -> SymbolFeatures:
    return SymbolFeatures(symbol=symbol, price=101.456789, return_1d=0.0012345678, return_5d=-0.010273661241931187,
                          return_20d=0.0543219876, return_60d=0.1111111111, sma_20=99.87654321, sma_50=95.1234567,
                          volatility_20d=0.2345678912, atr_pct=0.0187654321, avg_dollar_volume_20d=123456789.123,
                          volume_ratio=1.23456789, similar_trades=evidence)


def signal_context(evidence: tuple[MemoryEvidence, ...] = ()) -> SignalContext:
    return SignalContext(as_of=AS_OF.isoformat(), market=MARKET, symbols=(features("AAPL", evidence), features("MSFT")))


def validator_context(evidence: tuple[MemoryEvidence, ...] = ()) -> ValidatorContext:
    return ValidatorContext(as_of=AS_OF.isoformat(), market=MARKET, candidates=(ValidatorCandidate(
        symbol="AAPL", action="BUY", confidence=0.6123456, position_pct=0.0987654, stop_loss_pct=0.0456789,
        reasoning="uptrend with momentum", similar_trades=evidence),))


def risk_context() -> RiskContext:
    return RiskContext(as_of=AS_OF.isoformat(), equity=650.123456, cash=400.987654, gross_exposure_pct=0.3812345,
                       max_position_pct=0.1, default_stop_pct=0.05, candidates=(RiskCandidate(
                           symbol="AAPL", action="BUY", confidence=0.7, price=101.456789, volatility_20d=0.2345678,
                           atr_pct=0.0187654, held_qty=0),))


def picker_context() -> LLMPickerContext:
    return LLMPickerContext(as_of=AS_OF.isoformat(), portfolio=PortfolioSummary(equity=650.0), market=MARKET,
                            candidates=(PickerCandidate(symbol="AAPL", prescore=0.61234, features=features()),))


CASES: dict[str, tuple[AgentName, Callable[[], BaseModel], type[BaseModel]]] = {
    "signal": ("signal", signal_context, SignalBatch),
    "risk": ("risk", risk_context, RiskBatch),
    "validator": ("validator", validator_context, ValidatorBatch),
    "picker": ("picker", picker_context, LLMPickerOutput),
}
ANSWERS: dict[type[BaseModel], dict[str, list[Any]]] = {
    SignalBatch: {"proposals": []}, RiskBatch: {"assessments": []}, ValidatorBatch: {"verdicts": []},
    LLMPickerOutput: {"picks": []}}


def messages_of(agent: AgentName, context: BaseModel, schema: type[BaseModel],
                style: PromptStyle = PromptStyle()) -> tuple[Message, ...]:
    return render_picker(context, style) if agent == "picker" else render(agent, context, schema, style)  # type: ignore[arg-type]


def request_of(agent: AgentName, context: BaseModel, schema: type[BaseModel],
               style: PromptStyle = PromptStyle()) -> LLMRequest[Any]:
    return LLMRequest(agent=agent, messages=messages_of(agent, context, schema, style), output_schema=schema,
                      context=context, as_of=AS_OF, cycle_id="c1")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The arguments of every litellm.acompletion call (answered by litellm's mock_response)."""
    from adapters.llm.litellm_adapter import _litellm

    litellm = _litellm()
    real, calls = litellm.acompletion, []

    async def recording(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return await real(**kwargs)

    monkeypatch.setattr(litellm, "acompletion", recording)
    return calls


def lite(model: str, schema: type[BaseModel], mode: ResponseFormatMode, **kwargs: Any) -> LiteLLM:
    return LiteLLM({"default": model}, api_keys={"openai": "sk-test", "anthropic": "sk-ant-test"}, max_retries=0,
                   response_format=mode, prices={model: (1.0, 2.0)},
                   completion_kwargs={"mock_response": json.dumps(ANSWERS[schema])}, **kwargs)


def schema_copies(call: dict[str, Any], schema: type[BaseModel]) -> int:
    """How many times the output schema went to the model: its description is in every rendering of it."""
    marker = schema.model_json_schema()["description"]
    return (json.dumps(call["messages"]).count(marker) + json.dumps(call.get("response_format")).count(marker))


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "none"])
@pytest.mark.parametrize("case", list(CASES))
async def test_every_call_carries_the_output_schema_exactly_once(
        sent: list[dict[str, Any]], case: str, mode: ResponseFormatMode) -> None:
    agent, context, schema = CASES[case]
    await lite(OPENAI, schema, mode).complete(request_of(agent, context(), schema))
    [call] = sent
    assert schema_copies(call, schema) == 1
    assert (mode == "json_schema") == ("JSON schema of" not in call["messages"][0]["content"])


async def test_the_legacy_prompts_send_the_schema_three_times(sent: list[dict[str, Any]]) -> None:
    """The baseline a benchmark measures against: system prompt, the adapter's instructions, response format."""
    llm = lite(OPENAI, SignalBatch, "json_schema", schema_once=False)
    await llm.complete(request_of("signal", signal_context(), SignalBatch, LEGACY_STYLE))
    assert schema_copies(sent[0], SignalBatch) == 3


def user_json(agent: AgentName, context: BaseModel, schema: type[BaseModel],
              style: PromptStyle = PromptStyle()) -> dict[str, Any]:
    system, user = messages_of(agent, context, schema, style)
    assert (system.role, user.role) == ("system", "user")
    data: dict[str, Any] = json.loads(user.content)
    return data


def test_numbers_are_rounded_to_what_a_decision_needs() -> None:
    data = user_json("signal", signal_context(), SignalBatch)
    f = data["symbols"][0]
    assert (f["price"], f["sma_20"], f["sma_50"]) == (101.46, 99.88, 95.12)
    assert (f["return_5d"], f["return_20d"], f["volatility_20d"], f["atr_pct"]) == (-0.0103, 0.0543, 0.2346, 0.0188)
    assert (f["avg_dollar_volume_20d"], f["volume_ratio"]) == (123000000, 1.23)
    assert data["market"]["spy_return_20d"] == 0.0103 and data["market"]["vix"] == 16.1
    assert data["market"]["sector_returns_20d"] == {"XLK": 0.0235, "XLE": -0.0123}
    risk = user_json("risk", risk_context(), RiskBatch)
    assert (risk["equity"], risk["cash"], risk["gross_exposure_pct"]) == (650.12, 400.99, 0.3812)
    assert "0.010273661241931187" not in render("signal", signal_context(), SignalBatch)[1].content


def test_the_legacy_style_sends_the_context_as_it_is() -> None:
    _, user = render("signal", signal_context(), SignalBatch, LEGACY_STYLE)
    assert user.content == signal_context().model_dump_json()


def test_stable_text_first_the_cycle_time_last_and_nothing_empty() -> None:
    first, second = render("signal", signal_context(), SignalBatch), render("signal", SignalContext(
        as_of="2016-03-15T14:05:00+00:00", market=MARKET, symbols=(features("XOM"),)), SignalBatch)
    assert first[0] == second[0]
    assert "2016-03" not in first[0].content and "AAPL" not in first[0].content
    data = json.loads(first[1].content)
    assert list(data)[-1] == "as_of"
    assert "text" not in data["market"]  # the same numbers in words
    assert "unrealized_return" not in data["symbols"][0] and "similar_trades" not in data["symbols"][1]


def test_evidence_shows_only_known_outcomes_with_the_reasoning_trimmed() -> None:
    data = user_json("signal", signal_context((OPEN_TRADE, WON)), SignalBatch)
    [shown] = data["symbols"][0]["similar_trades"]
    assert shown["outcome"] == "WIN" and shown["distance"] == 0.123 and shown["return_pct"] == 0.0412
    assert len(shown["text"]) < 300 and shown["text"].startswith("BUY MSFT at 50.25: uptrend. Reasoning: the setup")
    conditions = data["market"]["similar_conditions"]
    assert [c["outcome"] for c in conditions] == ["RALLY"]  # yesterday's own record (no outcome yet) is not news
    legacy = user_json("signal", signal_context((OPEN_TRADE, WON)), SignalBatch, LEGACY_STYLE)
    assert len(legacy["symbols"][0]["similar_trades"]) == 2 and LONG_REASONING in json.dumps(legacy)


def test_the_validator_gets_a_summary_of_the_evidence_the_signal_agent_read() -> None:
    data = user_json("validator", validator_context((OPEN_TRADE, WON, LOST)), ValidatorBatch)
    [candidate] = data["candidates"]
    assert "similar_trades" not in candidate
    assert candidate["similar_trades_summary"] == {"n": 2, "wins": 1, "losses": 1, "mean_return": 0.0050,
                                                   "nearest_distance": 0.123}
    assert "similar_conditions" not in data["market"] and "Reasoning" not in json.dumps(data)


def system_content(call: dict[str, Any]) -> Any:
    return next(m["content"] for m in call["messages"] if m["role"] == "system")


async def test_the_system_prompt_of_anthropic_models_is_marked_for_prompt_caching(sent: list[dict[str, Any]]) -> None:
    await lite(CLAUDE, SignalBatch, "json_object").complete(request_of("signal", signal_context(), SignalBatch))
    await lite(OPENAI, SignalBatch, "json_object").complete(request_of("signal", signal_context(), SignalBatch))
    await lite(CLAUDE, SignalBatch, "json_object", prompt_caching=False).complete(
        request_of("signal", signal_context(), SignalBatch))
    [block] = system_content(sent[0])
    assert block["cache_control"] == {"type": "ephemeral"} and block["text"] == system_content(sent[1])
    assert isinstance(system_content(sent[1]), str)  # OpenAI caches long prefixes by itself
    assert system_content(sent[2]) == system_content(sent[1])
    assert sent[0]["messages"][-1]["role"] == "user"  # the per-call context comes last


def response_with_usage(**usage: Any) -> Any:
    from adapters.llm.litellm_adapter import _litellm

    litellm = _litellm()
    return litellm.ModelResponse(choices=[{"message": {"role": "assistant", "content": '{"proposals": []}'},
                                           "finish_reason": "stop"}], usage=litellm.Usage(**usage))


@pytest.mark.parametrize(("usage", "expected"), [
    ({"prompt_tokens": 1000, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 800}},
     200 * 1.0 + 800 * 0.1 + 100 * 2.0),
    ({"prompt_tokens": 1000, "completion_tokens": 100, "cache_read_input_tokens": 600,
      "cache_creation_input_tokens": 300}, 100 * 1.0 + 600 * 0.1 + 300 * 1.25 + 100 * 2.0),
    ({"prompt_tokens": 1000, "completion_tokens": 100}, 1000 * 1.0 + 100 * 2.0),
])
async def test_cached_prompt_tokens_are_charged_at_the_cached_price(
        monkeypatch: pytest.MonkeyPatch, usage: dict[str, Any], expected: float) -> None:
    from adapters.llm.litellm_adapter import _litellm

    response = response_with_usage(**usage)

    async def answer(**_: Any) -> Any:
        return response

    monkeypatch.setattr(_litellm(), "acompletion", answer)
    llm = LiteLLM({"default": CLAUDE}, api_keys={"anthropic": "k"}, max_retries=0, response_format="none",
                  prices={CLAUDE: (1.0, 2.0)}, cache_prices={CLAUDE: (0.1, None)})
    decision = await llm.complete(request_of("signal", signal_context(), SignalBatch))
    assert decision.usage.cost_usd == pytest.approx(expected / 1e6)
    assert decision.usage.prompt_tokens == 1000
    assert decision.usage.cached_prompt_tokens == usage.get("cache_read_input_tokens",
                                                            usage.get("prompt_tokens_details", {}).get(
                                                                "cached_tokens", 0))


async def test_litellm_prices_cached_tokens_of_a_mapped_model_at_its_cached_rate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.llm.litellm_adapter import _litellm

    cached = response_with_usage(prompt_tokens=1000, completion_tokens=100,
                                 prompt_tokens_details={"cached_tokens": 800})

    async def answer(**_: Any) -> Any:
        return cached

    monkeypatch.setattr(_litellm(), "acompletion", answer)
    llm = LiteLLM({"default": OPENAI}, api_keys={"openai": "k"}, max_retries=0, response_format="none")
    decision = await llm.complete(request_of("signal", signal_context(), SignalBatch))
    rates = _litellm().model_cost["gpt-4o-mini"]
    assert decision.usage.cost_usd == pytest.approx(200 * rates["input_cost_per_token"] + 800 * rates[
        "cache_read_input_token_cost"] + 100 * rates["output_cost_per_token"])


def test_each_saving_is_switched_by_its_setting() -> None:
    from entrypoints.container import _cycle_settings
    from entrypoints.settings import LLMSettings
    from entrypoints.wiring.system import llms, prompt_style
    from tests.support.explicit_settings import explicit_settings

    old = explicit_settings(llm=LLMSettings(signal_model=OPENAI, compact_prompts=False, compact_evidence=False,
                                            prompt_caching=False))
    new = explicit_settings(llm=LLMSettings(signal_model=OPENAI, evidence_max_distance=0.3, evidence_trades=4))
    old_llm, new_llm = llms(old)["signal"], llms(new)["signal"]
    assert isinstance(old_llm, LiteLLM) and isinstance(new_llm, LiteLLM)
    assert (old_llm.schema_once, old_llm.prompt_caching, new_llm.schema_once, new_llm.prompt_caching) == (
        False, False, True, True)
    assert prompt_style(old) == LEGACY_STYLE and prompt_style(new) == PromptStyle(evidence_max_distance=0.3)
    assert not _cycle_settings(old, "live", {}).evidence.compact
    assert _cycle_settings(old, "live", {}).evidence.max_distance == old.risk.validator.max_distance
    cycle = _cycle_settings(new, "live", {})
    assert (cycle.evidence.compact, cycle.evidence.max_distance, cycle.recall_k) == (True, 0.3, 4)
