"""LiteLLM through litellm against a local OpenAI-compatible server, and with litellm's mock_response.

The server is scripted per test (answers, slow answers, 429, 5xx, 401, bad JSON);
back-off sleeps go to a recorder, so no test waits for a delay. Only the timeout
tests wait for the (0.5 s) client timeout while the server sleeps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog
from pydantic import BaseModel

from adapters.llm.litellm_adapter import LiteLLM, LLMCallFailedError
from domain.agents.schemas import SignalBatch
from domain.errors import LLMError
from domain.ports.llm import LLMRequest, Message
from tests.integration.openai_stub_server import Behaviour, BehaviourKind, OpenAIStubServer, estimate_tokens

pytestmark = pytest.mark.integration

MODEL = "openai/gpt-4o-mini"
API_KEY = "sk-test-DO-NOT-LEAK-4f9a2c"
TIMEOUT_S = 0.5
BASE_S = 0.1
GOOD = {"proposals": [
    {"symbol": "AAPL", "action": "BUY", "confidence": 0.72, "reasoning": "20d momentum positive, above SMA50"},
    {"symbol": "MSFT", "action": "HOLD", "confidence": 0.55, "reasoning": "sideways, low volume"},
]}
GOOD_TEXT = json.dumps(GOOD)
VIOLATING = json.dumps({"proposals": [{"symbol": "AAPL", "action": "BUY", "confidence": 1.8, "reasoning": "x"}]})
TRANSIENT: list[BehaviourKind] = ["rate_limit", "server_error", "unavailable", "slow"]
UNUSABLE: list[BehaviourKind] = ["invalid_json", "truncated", "schema_violation"]


class Ctx(BaseModel):
    symbols: list[str]


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def behaviour(kind: BehaviourKind) -> Behaviour:
    if kind == "slow":
        return Behaviour("slow", delay_s=TIMEOUT_S * 6)
    if kind == "schema_violation":
        return Behaviour("schema_violation", content=VIOLATING)
    return Behaviour(kind)


def request() -> LLMRequest[SignalBatch]:
    return LLMRequest(
        agent="signal",
        messages=(Message("system", "You are the signal agent of a US equities fund."),
                  Message("user", "AAPL: return_20d=0.06 sma_50=182.1; MSFT: return_20d=0.00")),
        output_schema=SignalBatch, context=Ctx(symbols=["AAPL", "MSFT"]),
        as_of=datetime(2024, 3, 1, 15, 30, tzinfo=UTC), cycle_id="cycle-1")


@pytest.fixture(scope="module", autouse=True)
def litellm_imported() -> None:
    """Import and warm up litellm (several seconds) once, outside the tests' 0.5 s timeouts."""
    from adapters.llm.litellm_adapter import _litellm

    _litellm().completion(model=MODEL, messages=[{"role": "user", "content": "warm-up"}], mock_response="{}")


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIStubServer]:
    with OpenAIStubServer(GOOD_TEXT) as s:
        yield s


@pytest.fixture
def stub(server: OpenAIStubServer) -> OpenAIStubServer:
    server.reset()
    return server


@pytest.fixture
def sleep() -> SleepRecorder:
    return SleepRecorder()


def adapter(stub: OpenAIStubServer, sleep: SleepRecorder, **kwargs: object) -> LiteLLM:
    options: dict[str, object] = {"api_keys": {"openai": API_KEY}, "api_base": stub.api_base, "timeout_s": TIMEOUT_S,
                                  "max_retries": 2, "backoff_base_s": BASE_S, "backoff_cap_s": 2.0, "sleep": sleep}
    options.update(kwargs)
    return LiteLLM({"signal": MODEL}, **options)  # type: ignore[arg-type]


def prompt_tokens_sent(stub: OpenAIStubServer) -> int:
    return sum(estimate_tokens("".join(m["content"] for m in r.messages)) for r in stub.requests)


async def test_happy_path_validates_and_records_tokens_cost_latency_and_provider(
        stub: OpenAIStubServer, sleep: SleepRecorder) -> None:
    import litellm

    decision = await adapter(stub, sleep).complete(request())

    assert decision.output == SignalBatch.model_validate(GOOD)
    assert decision.raw == GOOD_TEXT
    usage = decision.usage
    assert (usage.provider, usage.model, usage.attempts, usage.replayed) == ("openai", MODEL, 1, False)
    assert usage.prompt_tokens == prompt_tokens_sent(stub)
    assert usage.completion_tokens == estimate_tokens(GOOD_TEXT)
    rates = litellm.model_cost["gpt-4o-mini"]
    expected = usage.prompt_tokens * rates["input_cost_per_token"] + usage.completion_tokens * rates[
        "output_cost_per_token"]
    assert usage.cost_usd == pytest.approx(expected) and usage.cost_usd > 0
    assert usage.latency_ms > 0
    assert sleep.delays == []

    [sent] = stub.requests
    assert sent.model == "gpt-4o-mini"
    assert sent.body["temperature"] == 0
    assert sent.body["response_format"]["type"] == "json_schema"
    assert sent.body["response_format"]["json_schema"]["schema"] == SignalBatch.model_json_schema()
    assert sent.messages[0]["role"] == "system"
    assert sent.messages[0]["content"] == request().messages[0].content  # the schema goes once: as the format
    assert sent.messages[1]["content"] == request().messages[1].content
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in json.dumps(sent.body)


async def test_answer_in_markdown_fences_is_accepted_first_time(stub: OpenAIStubServer, sleep: SleepRecorder) -> None:
    stub.script(Behaviour("fenced"))
    decision = await adapter(stub, sleep).complete(request())
    assert decision.output.proposals[0].symbol == "AAPL"
    assert decision.usage.attempts == 1


@pytest.mark.parametrize("kind", TRANSIENT)
async def test_transient_failure_is_retried_then_succeeds(
        stub: OpenAIStubServer, sleep: SleepRecorder, kind: BehaviourKind) -> None:
    stub.script(behaviour(kind))
    decision = await adapter(stub, sleep).complete(request())
    assert decision.output == SignalBatch.model_validate(GOOD)
    assert decision.usage.attempts == 2
    assert len(stub.requests) == 2
    assert stub.requests[1].messages == stub.requests[0].messages
    assert sleep.delays == [BASE_S]
    if kind == "slow":
        assert decision.usage.latency_ms >= TIMEOUT_S * 1000


@pytest.mark.parametrize("kind", UNUSABLE)
async def test_unusable_answer_is_re_asked_with_the_error_and_all_attempts_are_paid_for(
        stub: OpenAIStubServer, sleep: SleepRecorder, kind: BehaviourKind) -> None:
    stub.script(behaviour(kind))
    decision = await adapter(stub, sleep).complete(request())

    assert decision.output == SignalBatch.model_validate(GOOD)
    assert decision.usage.attempts == 2
    first, second = stub.requests
    assert second.messages[: len(first.messages)] == first.messages
    assistant, follow_up = second.messages[len(first.messages):]
    assert assistant["role"] == "assistant"
    assert follow_up["role"] == "user" and "rejected" in follow_up["content"]
    expected_hint = {"invalid_json": "not valid JSON", "truncated": "token limit",
                     "schema_violation": "proposals.0.confidence"}[kind]
    assert expected_hint in follow_up["content"]
    assert decision.usage.prompt_tokens == prompt_tokens_sent(stub)
    assert decision.usage.completion_tokens > estimate_tokens(GOOD_TEXT)


@pytest.mark.parametrize("kind", [*TRANSIENT, *UNUSABLE])
async def test_failure_that_persists_raises_llm_error_after_every_attempt(
        stub: OpenAIStubServer, sleep: SleepRecorder, kind: BehaviourKind) -> None:
    stub.script(*(behaviour(kind) for _ in range(3)))
    with pytest.raises(LLMCallFailedError) as info:
        await adapter(stub, sleep).complete(request())

    error = info.value
    assert isinstance(error, LLMError)
    assert len(stub.requests) == 3
    assert error.attempts == 3 and error.retryable
    message = str(error)
    assert MODEL in message and "gave up after 3 attempt(s)" in message and "signal agent" in message
    expected = {"rate_limit": "RateLimitError", "server_error": "InternalServerError",
                "unavailable": "ServiceUnavailableError", "slow": "Timeout", "invalid_json": "invalid_json",
                "truncated": "truncated", "schema_violation": "schema"}[kind]
    assert expected in message
    assert sleep.delays == [BASE_S, BASE_S * 2]
    if kind in UNUSABLE:
        assert error.usage.prompt_tokens == prompt_tokens_sent(stub)
        assert error.usage.cost_usd > 0


@pytest.mark.parametrize(("kind", "name"), [("unauthorized", "AuthenticationError"),
                                            ("bad_request", "BadRequestError")])
async def test_auth_and_bad_request_errors_are_not_retried(
        stub: OpenAIStubServer, sleep: SleepRecorder, kind: BehaviourKind, name: str) -> None:
    stub.script(Behaviour(kind))
    with pytest.raises(LLMCallFailedError) as info:
        await adapter(stub, sleep).complete(request())
    assert len(stub.requests) == 1
    assert sleep.delays == []
    assert info.value.attempts == 1 and not info.value.retryable
    assert name in str(info.value) and "not retryable" in str(info.value)


async def test_backoff_doubles_up_to_the_cap(stub: OpenAIStubServer, sleep: SleepRecorder) -> None:
    stub.script(*(Behaviour("server_error") for _ in range(6)))
    with pytest.raises(LLMCallFailedError, match="6 attempt"):
        await adapter(stub, sleep, max_retries=5, backoff_cap_s=1.0).complete(request())
    assert sleep.delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0])


async def test_retry_after_of_a_429_lengthens_the_delay(stub: OpenAIStubServer, sleep: SleepRecorder) -> None:
    stub.script(Behaviour("rate_limit", retry_after_s=0.75), Behaviour("rate_limit", retry_after_s=60))
    decision = await adapter(stub, sleep).complete(request())
    assert decision.usage.attempts == 3
    assert sleep.delays == pytest.approx([0.75, 2.0])  # the second Retry-After is capped


async def test_api_key_never_reaches_logs_or_errors(
        stub: OpenAIStubServer, sleep: SleepRecorder, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    stub.script(Behaviour("server_error"), Behaviour("invalid_json"), Behaviour("ok"), Behaviour("unauthorized"))
    llm = adapter(stub, sleep)
    with structlog.testing.capture_logs() as events:
        await llm.complete(request())
        with pytest.raises(LLMError) as info:
            await llm.complete(request())

    assert stub.requests[-1].headers["authorization"] == f"Bearer {API_KEY}"  # the key did go to the server
    assert API_KEY not in str(info.value) and "***" in str(info.value)
    assert [e["event"] for e in events].count("llm.attempt_failed") == 3
    assert any(e["event"] == "llm.attempt_ok" and e["attempt"] == 3 for e in events)
    captured = capsys.readouterr()
    for text in (json.dumps(events, default=str), caplog.text, captured.out, captured.err, repr(llm)):
        assert API_KEY not in text
    assert request().messages[1].content not in json.dumps(events, default=str)


async def test_unpriced_model_costs_zero_instead_of_failing(stub: OpenAIStubServer, sleep: SleepRecorder) -> None:
    llm = LiteLLM({"signal": "openai/my-local-finetune"}, api_keys={"openai": "local"}, api_base=stub.api_base,
                  sleep=sleep, timeout_s=TIMEOUT_S)
    decision = await llm.complete(request())
    assert decision.usage.cost_usd == 0.0
    assert decision.usage.prompt_tokens > 0
    assert stub.requests[0].model == "my-local-finetune"


async def test_a_missing_api_key_is_not_retried(
        stub: OpenAIStubServer, sleep: SleepRecorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm = LiteLLM({"signal": MODEL}, api_keys={"openai": None}, api_base=stub.api_base, sleep=sleep)
    with pytest.raises(LLMCallFailedError) as info:
        await llm.complete(request())
    assert info.value.attempts == 1 and not info.value.retryable
    assert sleep.delays == [] and stub.requests == []


async def test_mock_response_json_is_validated() -> None:
    sleep = SleepRecorder()
    llm = LiteLLM({"signal": MODEL}, api_keys={"openai": API_KEY}, sleep=sleep,
                  completion_kwargs={"mock_response": f"```json\n{GOOD_TEXT}\n```"})
    decision = await llm.complete(request())
    assert decision.output == SignalBatch.model_validate(GOOD)
    assert decision.usage.provider == "openai"
    assert decision.usage.prompt_tokens > 0 and decision.usage.cost_usd > 0
    assert sleep.delays == []


async def test_mock_response_garbage_is_rejected_after_the_retries() -> None:
    sleep = SleepRecorder()
    llm = LiteLLM({"signal": MODEL}, api_keys={"openai": API_KEY}, max_retries=3, backoff_base_s=0.5,
                  sleep=sleep, completion_kwargs={"mock_response": "I think AAPL looks great, buy it!"})
    with pytest.raises(LLMCallFailedError) as info:
        await llm.complete(request())
    assert info.value.attempts == 4
    assert "no_json" in str(info.value)
    assert sleep.delays == [0.5, 1.0, 2.0]
