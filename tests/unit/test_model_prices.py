"""A paid model with no known price is refused at start-up (its spend could not be held to the cap) unless its
price is configured; a configured price is what its calls are charged and what the cap reserves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from adapters.llm.litellm_adapter import LiteLLM
from adapters.llm.price_table import token_prices
from domain.errors import ConfigurationError
from domain.ports.llm import LLMRequest, Message
from entrypoints.chat.wiring import chat_model
from entrypoints.settings import LLMSettings, ModelPrice
from entrypoints.wiring.system import llms
from tests.support.explicit_settings import explicit_settings

UNPRICED = "openai/quorum-local-7b"
PRICE = ModelPrice(input_per_million=0.80, output_per_million=4.00)


class Ok(BaseModel):
    ok: bool


def test_an_agent_on_a_model_nobody_prices_is_refused_naming_the_settings() -> None:
    settings = explicit_settings(llm=LLMSettings(risk_model=UNPRICED))
    with pytest.raises(ConfigurationError) as info:
        llms(settings)
    assert "QUORUM_LLM__RISK_MODEL" in str(info.value) and "QUORUM_LLM__PRICES" in str(info.value)
    assert UNPRICED in str(info.value)


def test_the_chat_model_is_refused_too() -> None:
    with pytest.raises(ConfigurationError, match=r"QUORUM_CHAT__MODEL.*QUORUM_LLM__PRICES"):
        chat_model(explicit_settings(chat={"model": UNPRICED}))


def test_a_configured_price_admits_the_model_and_prices_its_calls() -> None:
    settings = explicit_settings(llm=LLMSettings(signal_model=UNPRICED, prices={UNPRICED: PRICE}),
                                 chat={"model": UNPRICED})
    lite = llms(settings)["signal"]
    assert isinstance(lite, LiteLLM) and lite.max_tokens == settings.llm.max_output_tokens
    # a prompt of 3,000 characters (1,000 tokens at worst, plus overhead) and the 4,096-token completion limit
    assert lite.worst_case_cost_usd("signal", 3000) == pytest.approx((1000 + 64) * 0.8e-6 + 4096 * 4e-6)
    assert chat_model(settings).worst_case_cost_usd("chat", 0) == pytest.approx(64 * 0.8e-6 + 4096 * 4e-6)


async def test_a_call_is_charged_at_the_configured_price() -> None:
    lite = LiteLLM({"signal": UNPRICED}, api_keys={"openai": "sk-test"}, max_retries=0, response_format="none",
                   prices={UNPRICED: (0.80, 4.00)}, completion_kwargs={"mock_response": '{"ok": true}'})
    request = LLMRequest(agent="signal", messages=(Message("user", "?"),), output_schema=Ok, context=Ok(ok=True),
                         as_of=datetime(2024, 3, 4, tzinfo=UTC))
    usage = (await lite.complete(request)).usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0 and usage.cost_known
    assert usage.cost_usd == pytest.approx(usage.prompt_tokens * 0.8e-6 + usage.completion_tokens * 4e-6)


def test_mapped_and_local_models_need_no_configured_price() -> None:
    settings = explicit_settings(llm=LLMSettings(signal_model="openai/gpt-4o-mini", picker_model="ollama/my-llama"),
                                 chat={"model": "openai/gpt-4o"})
    assert set(llms(settings)) == {"default", "signal", "picker"}
    chat_model(settings)
    assert token_prices("ollama/my-llama") == (0.0, 0.0)
    assert token_prices("anthropic/claude-sonnet-4-20250514") is None   # mapped at 0 and 0: not a price
    assert token_prices("openai/gpt-4o-mini", {"openai/gpt-4o-mini": (1.0, 2.0)}) == (1e-6, 2e-6)  # configured wins
