"""ReplayLLM: what was recorded replays identically, without the real LLM, and never as a corrupt file."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import BaseModel

from adapters.llm.replay import ReplayLLM
from domain.agents.schemas import RiskBatch, SignalBatch, SignalProposal
from domain.errors import ConfigurationError, LLMError
from domain.ports.llm import Decision, LLMRequest, LLMUsage, Message, OutputT

MODELS = {"signal": "openai/gpt-4o-mini", "risk": "anthropic/claude-sonnet-4-5"}
AS_OF = datetime(2024, 3, 1, 15, 30, tzinfo=UTC)


class Ctx(BaseModel):
    symbols: list[str]


def signal_request(symbol: str = "AAPL", *, user: str | None = None) -> LLMRequest[SignalBatch]:
    return LLMRequest(
        agent="signal",
        messages=(Message("system", "You are the signal agent."), Message("user", user or f"features of {symbol}")),
        output_schema=SignalBatch, context=Ctx(symbols=[symbol]), as_of=AS_OF, cycle_id="c1")


class FakeLLM:
    """Answers BUY on the symbol named in the last message, with a cost that grows per call."""

    provider = "openai"

    def __init__(self, *, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.fail:
            raise LLMError("provider down")
        symbol = request.messages[-1].content.split()[-1]
        output = SignalBatch(proposals=[SignalProposal(symbol=symbol, action="BUY", confidence=0.6,
                                                       reasoning=f"call {self.calls}")])
        usage = LLMUsage(provider="openai", model=MODELS["signal"], prompt_tokens=100 + self.calls,
                         completion_tokens=20, cost_usd=0.0001 * self.calls, latency_ms=250.0, attempts=1)
        return Decision(output, usage, raw=output.model_dump_json())  # type: ignore[arg-type]


async def test_record_then_replay_gives_the_same_decision_without_the_inner_llm(tmp_path: Path) -> None:
    inner = FakeLLM()
    recorder = ReplayLLM(tmp_path, MODELS, mode="record", inner=inner)
    recorded = [await recorder.complete(signal_request(s)) for s in ("AAPL", "MSFT")]
    assert inner.calls == 2

    player = ReplayLLM(tmp_path, MODELS, mode="replay")
    replayed = [await player.complete(signal_request(s)) for s in ("AAPL", "MSFT")]
    again = await player.complete(signal_request("AAPL"))

    for original, replay in zip(recorded, replayed, strict=True):
        assert replay.output == original.output
        assert replay.raw == original.raw
        assert replay.usage.replayed is True
        assert replay.usage.cost_usd == 0.0
        assert replay.usage.prompt_tokens == original.usage.prompt_tokens
        assert replay.usage.model == original.usage.model
    assert again == replayed[0]
    assert inner.calls == 2


async def test_replay_can_report_the_original_cost(tmp_path: Path) -> None:
    await ReplayLLM(tmp_path, MODELS, mode="record", inner=FakeLLM()).complete(signal_request())
    decision = await ReplayLLM(tmp_path, MODELS, report_original_cost=True).complete(signal_request())
    assert decision.usage.cost_usd == pytest.approx(0.0001)
    assert decision.usage.replayed


async def test_the_cassette_keeps_the_original_usage_and_is_keyed_by_the_fingerprint(tmp_path: Path) -> None:
    request = signal_request()
    await ReplayLLM(tmp_path, MODELS, mode="record", inner=FakeLLM()).complete(request)
    key = request.fingerprint(MODELS["signal"])
    entry = json.loads((tmp_path / "signal" / f"{key}.json").read_text())
    assert entry["key"] == key
    assert entry["usage"]["cost_usd"] == pytest.approx(0.0001)
    assert entry["usage"]["replayed"] is False
    assert entry["model"] == "openai/gpt-4o-mini"
    assert entry["schema"] == "SignalBatch"


async def test_a_missing_recording_names_agent_hash_and_directory(tmp_path: Path) -> None:
    request = signal_request("NVDA")
    with pytest.raises(LLMError) as info:
        await ReplayLLM(tmp_path, MODELS).complete(request)
    message = str(info.value)
    assert f"no recorded response for signal request {request.fingerprint(MODELS['signal'])}" in message
    assert str(tmp_path) in message
    assert "re-record with keys set" in message


async def test_a_changed_prompt_or_model_is_not_served_an_old_answer(tmp_path: Path) -> None:
    await ReplayLLM(tmp_path, MODELS, mode="record", inner=FakeLLM()).complete(signal_request())
    with pytest.raises(LLMError, match="no recorded response"):
        await ReplayLLM(tmp_path, MODELS).complete(signal_request(user="features of AAPL, now with news"))
    with pytest.raises(LLMError, match="no recorded response"):
        await ReplayLLM(tmp_path, {"signal": "openai/gpt-4o"}).complete(signal_request())


def test_fingerprint_changes_with_messages_model_and_schema_but_not_context_or_time() -> None:
    base = signal_request()
    key = base.fingerprint("openai/gpt-4o-mini")
    assert key == signal_request().fingerprint("openai/gpt-4o-mini")
    assert key != base.fingerprint("openai/gpt-4o")
    assert key != signal_request(user="features of AAPL ").fingerprint("openai/gpt-4o-mini")
    as_risk = LLMRequest(agent="signal", messages=base.messages, output_schema=RiskBatch, context=base.context,
                         as_of=AS_OF)
    assert key != as_risk.fingerprint("openai/gpt-4o-mini")
    later = LLMRequest(agent="signal", messages=base.messages, output_schema=SignalBatch,
                       context=Ctx(symbols=["other"]), as_of=datetime(2025, 1, 1, tzinfo=UTC))
    assert key == later.fingerprint("openai/gpt-4o-mini")


async def test_a_recording_that_no_longer_validates_asks_for_a_re_record(tmp_path: Path) -> None:
    request = signal_request()
    recorder = ReplayLLM(tmp_path, MODELS, mode="record", inner=FakeLLM())
    await recorder.complete(request)
    path = recorder.path_for(request)
    entry = json.loads(path.read_text())
    entry["output"]["proposals"][0]["confidence"] = 3.0
    path.write_text(json.dumps(entry))
    with pytest.raises(LLMError, match="no longer validates against SignalBatch"):
        await ReplayLLM(tmp_path, MODELS).complete(request)


async def test_failures_of_the_inner_llm_are_not_recorded(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="provider down"):
        await ReplayLLM(tmp_path, MODELS, mode="record", inner=FakeLLM(fail=True)).complete(signal_request())
    assert not (tmp_path / "signal").exists()


async def test_concurrent_recordings_leave_only_complete_files(tmp_path: Path) -> None:
    recorder = ReplayLLM(tmp_path, MODELS, mode="record", inner=FakeLLM())
    symbols = [f"S{i % 10}" for i in range(60)]  # every key recorded six times concurrently
    await asyncio.gather(*(recorder.complete(signal_request(s)) for s in symbols))
    files = sorted((tmp_path / "signal").iterdir())
    assert len(files) == 10
    assert all(f.suffix == ".json" for f in files), "temporary files left behind"
    player = ReplayLLM(tmp_path, MODELS)
    for s in set(symbols):
        decision = await player.complete(signal_request(s))
        assert decision.output.proposals[0].symbol == s


async def test_a_write_that_fails_midway_leaves_the_previous_recording_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request = signal_request()
    recorder = ReplayLLM(tmp_path, MODELS, mode="record", inner=FakeLLM())
    first = await recorder.complete(request)
    before = recorder.path_for(request).read_bytes()

    def broken_dump(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("adapters.llm.replay.json.dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        await recorder.complete(request)
    monkeypatch.undo()
    assert recorder.path_for(request).read_bytes() == before
    assert [p.name for p in (tmp_path / "signal").iterdir()] == [recorder.path_for(request).name]
    assert (await ReplayLLM(tmp_path, MODELS).complete(request)).output == first.output


def test_recording_needs_an_inner_llm(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        ReplayLLM(tmp_path, MODELS, mode="record")


async def test_an_agent_without_a_model_is_a_configuration_error(tmp_path: Path) -> None:
    request = LLMRequest(agent="validator", messages=(Message("user", "x"),), output_schema=SignalBatch,
                         context=Ctx(symbols=[]), as_of=AS_OF)
    with pytest.raises(ConfigurationError, match="validator"):
        await ReplayLLM(tmp_path, MODELS).complete(request)
