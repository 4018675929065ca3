"""LiteLLMChat through litellm against a local OpenAI-compatible server, litellm's mock responses, and ChatCassette
recorded against the server and replayed without it.

Back-off sleeps go to a recorder, so no test waits for a delay (only the timeout test waits for its 0.5 s).
`QUORUM_RECORD_CHAT_CASSETTES=1` re-records the committed cassettes under tests/fixtures/chat/.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.llm.chat_cassette import ChatCassette
from adapters.llm.litellm_adapter import LLMCallFailedError
from adapters.llm.litellm_chat import LiteLLMChat
from domain.chat import UNPARSED_ARGUMENTS, ChatTurn, ToolCall, ToolSpec
from domain.errors import LLMError
from tests.integration.openai_stub_server import Behaviour, OpenAIStubServer
from tests.unit.test_chat_agent import CASSETTES as FIXTURES
from tests.unit.test_chat_agent import converse, same

pytestmark = pytest.mark.integration

MODEL = "openai/gpt-4o-mini"
API_KEY = "sk-test-DO-NOT-LEAK-77c1"
AS_OF = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
TOOLS = [ToolSpec("portfolio", "holdings and cash", {"type": "object", "properties": {}}),
         ToolSpec("performance", "returns over a window", {"type": "object", "properties": {
             "window": {"type": "string", "enum": ["today", "week", "month", "all"]}}, "required": ["window"]})]


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture(scope="module", autouse=True)
def litellm_imported() -> None:
    """Import and warm up litellm (seconds) once, outside the tests' timeouts."""
    from adapters.llm.litellm_adapter import _litellm

    _litellm().completion(model=MODEL, messages=[{"role": "user", "content": "warm-up"}], mock_response="ok")


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIStubServer]:
    with OpenAIStubServer("Nothing to add.") as s:
        yield s


@pytest.fixture
def stub(server: OpenAIStubServer) -> OpenAIStubServer:
    server.reset()
    return server


@pytest.fixture
def sleep() -> SleepRecorder:
    return SleepRecorder()


def chat_model(stub: OpenAIStubServer, sleep: SleepRecorder, model: str = MODEL, **kwargs: object) -> LiteLLMChat:
    options: dict[str, object] = {"api_key": API_KEY, "api_base": stub.api_base, "timeout_s": 0.5, "max_retries": 2,
                                  "backoff_base_s": 0.1, "backoff_cap_s": 2.0, "sleep": sleep}
    return LiteLLMChat(model, **(options | kwargs))  # type: ignore[arg-type]


def asks(*calls: tuple[str, str, str]) -> Behaviour:
    return Behaviour("ok", tool_calls=calls)


async def test_tools_are_offered_and_tool_calls_are_parsed(stub: OpenAIStubServer, sleep: SleepRecorder) -> None:
    stub.script(asks(("call_a", "portfolio", "{}"), ("call_b", "performance", '{"window": "week"}')))
    reply = await chat_model(stub, sleep).chat([ChatTurn("system", "be brief"), ChatTurn("user", "how are we?")],
                                               TOOLS, as_of=AS_OF)
    assert reply.tool_calls == (ToolCall("call_a", "portfolio", {}), ToolCall("call_b", "performance",
                                                                              {"window": "week"}))
    assert reply.content == ""
    [sent] = stub.requests
    assert sent.model == "gpt-4o-mini" and sent.body["tool_choice"] == "auto"
    assert sent.body["tools"] == [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                                    "parameters": t.parameters}} for t in TOOLS]
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    usage = reply.usage
    assert (usage.provider, usage.model, usage.attempts, usage.cost_known) == ("openai", MODEL, 1, True)
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0 and usage.cost_usd > 0


async def test_assistant_tool_calls_and_tool_turns_are_sent_in_openai_form(
        stub: OpenAIStubServer, sleep: SleepRecorder) -> None:
    stub.script(Behaviour("ok", content="Cash is 412.50 USD."))
    turns = [ChatTurn("user", "cash?"),
             ChatTurn("assistant", "", tool_calls=(ToolCall("call_a", "portfolio", {}),
                                                   ToolCall("call_b", "performance", {"window": "week"}))),
             ChatTurn("tool", '{"ok": true, "text": "Cash 412.50 USD"}', tool_call_id="call_a"),
             ChatTurn("tool", '{"ok": true, "text": "+1.2 %"}', tool_call_id="call_b")]
    reply = await chat_model(stub, sleep).chat(turns, TOOLS, as_of=AS_OF)
    assert reply.content == "Cash is 412.50 USD." and reply.tool_calls == ()
    messages = stub.requests[0].messages
    assert messages[1]["role"] == "assistant" and not messages[1].get("content")
    assert [(c["id"], c["type"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in messages[1]["tool_calls"]] == [("call_a", "function", "portfolio", {}),
                                                    ("call_b", "function", "performance", {"window": "week"})]
    assert [(m["role"], m["tool_call_id"], m["content"]) for m in messages[2:]] == [
        ("tool", "call_a", '{"ok": true, "text": "Cash 412.50 USD"}'), ("tool", "call_b", '{"ok": true, "text": '
                                                                                          '"+1.2 %"}')]


@pytest.mark.parametrize("raw", ['{"window": "week"', "[1, 2]", "window=week"])
async def test_arguments_that_are_not_a_json_object_come_back_unparsed(
        stub: OpenAIStubServer, sleep: SleepRecorder, raw: str) -> None:
    stub.script(asks(("call_a", "performance", raw)))
    reply = await chat_model(stub, sleep).chat([ChatTurn("user", "week?")], TOOLS, as_of=AS_OF)
    assert reply.tool_calls == (ToolCall("call_a", "performance", {UNPARSED_ARGUMENTS: raw}),)
    stub.script(Behaviour("ok", content="sorry"))
    await chat_model(stub, sleep).chat([ChatTurn("user", "week?"), ChatTurn("assistant", "", reply.tool_calls),
                                        ChatTurn("tool", "bad arguments", tool_call_id="call_a")], TOOLS, as_of=AS_OF)
    assert stub.requests[-1].messages[1]["tool_calls"][0]["function"]["arguments"] == raw  # sent back as it came


@pytest.mark.parametrize("failure", [Behaviour("rate_limit", retry_after_s=1.5), Behaviour("server_error"),
                                     Behaviour("unavailable"), Behaviour("ok", content="")])
async def test_transient_failures_and_empty_answers_are_retried(
        stub: OpenAIStubServer, sleep: SleepRecorder, failure: Behaviour) -> None:
    stub.script(failure, asks(("call_a", "portfolio", "{}")))
    reply = await chat_model(stub, sleep).chat([ChatTurn("user", "hold?")], TOOLS, as_of=AS_OF)
    assert reply.tool_calls[0].name == "portfolio" and reply.usage.attempts == 2 and len(stub.requests) == 2
    assert sleep.delays == [1.5 if failure.kind == "rate_limit" else 0.1]


async def test_a_slow_server_times_out_and_is_retried(stub: OpenAIStubServer, sleep: SleepRecorder) -> None:
    stub.script(Behaviour("slow", delay_s=3.0), Behaviour("ok", content="fine"))
    reply = await chat_model(stub, sleep).chat([ChatTurn("user", "hi")], TOOLS, as_of=AS_OF)
    assert reply.content == "fine" and reply.usage.attempts == 2


async def test_it_gives_up_after_its_retries(stub: OpenAIStubServer, sleep: SleepRecorder) -> None:
    stub.script(*[Behaviour("server_error")] * 3)
    with pytest.raises(LLMCallFailedError) as failed:
        await chat_model(stub, sleep).chat([ChatTurn("user", "hi")], TOOLS, as_of=AS_OF)
    assert failed.value.attempts == 3 and failed.value.retryable and failed.value.agent == "chat"
    assert sleep.delays == [0.1, 0.2]


async def test_a_401_is_not_retried_and_the_key_is_masked(stub: OpenAIStubServer, sleep: SleepRecorder) -> None:
    stub.script(Behaviour("unauthorized"))
    with pytest.raises(LLMCallFailedError) as failed:
        await chat_model(stub, sleep).chat([ChatTurn("user", "hi")], TOOLS, as_of=AS_OF)
    assert not failed.value.retryable and len(stub.requests) == 1 and sleep.delays == []
    assert API_KEY not in str(failed.value)


async def test_a_model_litellm_cannot_price_costs_zero_and_says_so(
        stub: OpenAIStubServer, sleep: SleepRecorder) -> None:
    stub.script(Behaviour("ok", content="hi"))
    reply = await chat_model(stub, sleep, model="openai/quorum-local-7b").chat([ChatTurn("user", "hi")], TOOLS,
                                                                               as_of=AS_OF)
    assert reply.usage.cost_usd == 0.0 and reply.usage.cost_known is False and reply.usage.prompt_tokens > 0


async def test_litellm_mock_responses_need_no_server() -> None:
    text = LiteLLMChat(MODEL, api_key="sk-none", completion_kwargs={"mock_response": "Cash is 412.50 USD."})
    assert (await text.chat([ChatTurn("user", "cash?")], TOOLS, as_of=AS_OF)).content == "Cash is 412.50 USD."
    tool = LiteLLMChat(MODEL, api_key="sk-none", completion_kwargs={"mock_response": "", "mock_tool_calls": [
        {"id": "call_m", "type": "function", "function": {"name": "performance", "arguments": '{"window": "all"}'}}]})
    reply = await tool.chat([ChatTurn("user", "overall?")], TOOLS, as_of=AS_OF)
    assert reply.tool_calls == (ToolCall("call_m", "performance", {"window": "all"}),)


# -- cassettes: the unit tests' two-message conversation through the assistant, recorded against the server ---------

SCRIPT = (
    asks(("call_1", "search_events", '{"query": "why NVDA", "symbol": "NVDA"}'), ("call_2", "portfolio", "{}")),
    Behaviour("ok", content="NVDA was bought on 20-day momentum (event #41, 2024-03-01 15:30 UTC, cycle cyc-9). "
              "You hold AAPL and NVDA; cash is 412.50 USD."),
    asks(("call_3", "control", '{"action": "pause", "reason": "operator asked"}')),
    Behaviour("ok", content="I proposed pausing trading. Nothing happens until you confirm below."),
)
async def test_a_cassette_records_against_the_server_and_replays_identically_without_it(
        tmp_path: Path, sleep: SleepRecorder) -> None:
    with OpenAIStubServer("unused") as live:
        live.script(*SCRIPT)
        recorder = ChatCassette(tmp_path, MODEL, mode="record", inner=chat_model(live, sleep))
        recorded = await converse(recorder)
        assert len(live.requests) == 4
    assert recorded[0].text.startswith("NVDA was bought") and recorded[1].pending is not None
    assert len(cassette_names(tmp_path)) == 4

    replayed = await converse(ChatCassette(tmp_path, MODEL))  # the server is gone
    assert all(same(a, b) for a, b in zip(recorded, replayed, strict=True))
    assert replayed[0].model == MODEL and replayed[0].cost_usd == 0.0

    if os.environ.get("QUORUM_RECORD_CHAT_CASSETTES") == "1":
        shutil.rmtree(FIXTURES, ignore_errors=True)
        shutil.copytree(tmp_path, FIXTURES)
    assert cassette_names(FIXTURES) == cassette_names(tmp_path), \
        "tests/fixtures/chat is stale: re-record with QUORUM_RECORD_CHAT_CASSETTES=1"


def cassette_names(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("*.json")}


async def test_a_replay_miss_is_a_clear_error(tmp_path: Path) -> None:
    cassette = ChatCassette(tmp_path, MODEL)
    with pytest.raises(LLMError, match=r"no recorded chat answer .* re-record"):
        await cassette.chat([ChatTurn("user", "never recorded")], TOOLS, as_of=AS_OF)
