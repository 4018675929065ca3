"""Tracing on the Tracer port: the null tracer costs nothing; each gateway call is an "agent" span with its LLM's
"llm" span under it (also when chunks run concurrently); failures and refusals are in the trace and change nothing
else; a cycle is one root span with its stages as children, a failing stage marked failed."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dependency_injector import providers

from adapters.calendar.nyse import NyseCalendar
from adapters.llm.offline_policy import OfflinePolicyLLM
from adapters.tracing import TracedLLM
from application.agents import Agents, render
from application.llm_gateway import LLMGateway
from application.tracing import NULL_TRACER
from domain.agents.schemas import MarketConditions, SignalBatch, SignalContext, SignalProposal, SymbolFeatures
from domain.errors import ConfigurationError, LLMError
from domain.ports.llm import LLM, Decision, LLMRequest, LLMUsage
from entrypoints.container import build_container, close_container
from entrypoints.settings import load_settings
from tests.support.recording_tracer import RecordedSpan, RecordingTracer

AS_OF = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
NY = ZoneInfo("America/New_York")
MARKET = MarketConditions(vix=15.0, vix_is_proxy=False, spy_return_20d=0.01, spy_above_sma_50=True, spy_trend="up")
CALENDAR = NyseCalendar()


def feature(sym: str) -> SymbolFeatures:
    return SymbolFeatures(symbol=sym, price=10, return_1d=0, return_5d=0, return_20d=0.05, return_60d=0.1, sma_20=10,
                          sma_50=9, volatility_20d=0.3, atr_pct=0.02, avg_dollar_volume_20d=1e7, volume_ratio=1)


def signal_request(symbols: list[str], cycle_id: str | None = "c-1") -> LLMRequest[SignalBatch]:
    context = SignalContext(as_of=AS_OF.isoformat(), market=MARKET, symbols=tuple(feature(s) for s in symbols))
    return LLMRequest(agent="signal", messages=render("signal", context, SignalBatch), output_schema=SignalBatch,
                      context=context, as_of=AS_OF, cycle_id=cycle_id)


class PaidLLM:
    """Answers HOLD for every symbol, reporting tokens and a cost; yields between start and answer so that
    concurrent calls interleave."""

    provider = "openai"

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        for _ in range(3):
            await asyncio.sleep(0)
        symbols = [f.symbol for f in request.context.symbols]  # type: ignore[attr-defined]
        out = SignalBatch(proposals=[SignalProposal(symbol=s, action="HOLD", confidence=0.5, reasoning="t")
                                     for s in symbols])
        return Decision(out, LLMUsage("openai", "openai/gpt-4o-mini", prompt_tokens=100 * len(symbols),
                                      completion_tokens=20, cost_usd=0.001, latency_ms=12.5))


class FailingLLM:
    provider = "openai"

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        error = LLMError("the provider answered garbage three times")
        error.usage = LLMUsage("openai", "openai/gpt-4o-mini", prompt_tokens=300, completion_tokens=9,  # type: ignore[attr-defined]
                               cost_usd=0.002)
        error.model = "openai/gpt-4o-mini"  # type: ignore[attr-defined]
        raise error


def traced_gateway(llm: LLM, tracer: RecordingTracer, cap: float = 1.0) -> LLMGateway:
    return LLMGateway({"default": TracedLLM(llm, tracer)}, cap, "test", NY, tracer=tracer)


async def test_the_null_tracer_records_nothing_and_lets_errors_through() -> None:
    assert NULL_TRACER.enabled is False
    assert NULL_TRACER.span("a") is NULL_TRACER.span("b", run_type="llm", metadata={"x": 1})  # nothing allocated
    async with NULL_TRACER.span("cycle") as span:
        span.add_metadata({"k": 1})
        span.set_outputs({"o": 2})
        span.set_error("e")
    with pytest.raises(RuntimeError, match="boom"):
        async with NULL_TRACER.span("cycle"):
            raise RuntimeError("boom")


async def test_a_gateway_call_is_an_agent_span_with_its_llm_span_under_it() -> None:
    tracer = RecordingTracer()
    decision = await traced_gateway(PaidLLM(), tracer).ask(signal_request(["AAPL", "MSFT"]))
    assert decision is not None and len(decision.output.proposals) == 2
    agent, llm = tracer.spans
    assert (agent.name, agent.run_type, agent.parent) == ("agent signal", "chain", None)
    assert agent.metadata == {"agent": "signal", "cycle_id": "c-1", "n_symbols": 2, "scope": "test"}
    assert agent.inputs == {"symbols": ["AAPL", "MSFT"]}
    assert agent.outputs["answered"] is True and agent.error is None
    assert (llm.name, llm.run_type, llm.parent) == ("llm openai", "llm", agent.id)
    assert {k: llm.metadata[k] for k in ("agent", "cycle_id", "provider", "model", "prompt_tokens",
                                         "completion_tokens", "cost_usd", "provider_latency_ms")} == {
        "agent": "signal", "cycle_id": "c-1", "provider": "openai", "model": "openai/gpt-4o-mini",
        "prompt_tokens": 200, "completion_tokens": 20, "cost_usd": 0.001, "provider_latency_ms": 12.5}
    assert llm.metadata["latency_ms"] >= 0
    assert [m["role"] for m in llm.inputs["messages"]] == ["system", "user"]
    assert llm.outputs["usage_metadata"] == {"input_tokens": 200, "output_tokens": 20, "total_tokens": 220,
                                             "total_cost": 0.001}
    assert [p["symbol"] for p in llm.outputs["output"]["proposals"]] == ["AAPL", "MSFT"]


async def test_concurrent_chunks_each_nest_their_llm_span_under_their_own_agent_span() -> None:
    tracer = RecordingTracer()
    agents = Agents(traced_gateway(PaidLLM(), tracer), chunk_size=2, concurrency=3)
    async with tracer.span("decide") as decide:
        await agents.signals([feature(f"S{i}") for i in range(7)], MARKET, as_of=AS_OF, cycle_id="c-7")
    agent_spans, llm_spans = tracer.named("agent "), tracer.named("llm ")
    assert [s.metadata["n_symbols"] for s in agent_spans] == [2, 2, 2, 1]
    assert all(s.parent == decide.id for s in agent_spans)  # type: ignore[attr-defined]
    by_id = {s.id: s for s in agent_spans}
    assert sorted(by_id) == sorted(s.parent for s in llm_spans if s.parent is not None)  # one LLM call per agent call
    for llm in llm_spans:
        parent = by_id[llm.parent]  # type: ignore[index]
        assert llm.metadata["prompt_tokens"] == 100 * parent.metadata["n_symbols"]  # its own call, not a sibling's
        assert llm.metadata["cycle_id"] == "c-7"


async def test_a_failed_call_is_a_failed_span_and_still_a_hold() -> None:
    tracer = RecordingTracer()
    gw = traced_gateway(FailingLLM(), tracer)
    assert await gw.ask(signal_request(["AAPL"])) is None
    agent, llm = tracer.spans
    assert agent.error is not None and agent.error.startswith("LLMError: the provider answered garbage")
    assert llm.error is not None and "LLMError" in llm.error
    assert (llm.metadata["model"], llm.metadata["prompt_tokens"], llm.metadata["cost_usd"]) == (
        "openai/gpt-4o-mini", 300, 0.002)
    (record,) = gw.calls("c-1")
    assert (record.ok, record.cost_usd) == (False, 0.002)  # booked as without tracing


async def test_a_call_over_the_spend_cap_is_an_agent_span_that_says_so_and_no_llm_span() -> None:
    tracer = RecordingTracer()
    assert await traced_gateway(PaidLLM(), tracer, cap=0.0).ask(signal_request(["AAPL"])) is None
    (agent,) = tracer.spans
    assert agent.outputs["answered"] is False and "spend cap" in str(agent.outputs["refused"])


async def test_a_traced_offline_policy_is_still_free_and_answers_the_same() -> None:
    tracer = RecordingTracer()
    request = signal_request(["AAPL", "MSFT"])
    traced = await traced_gateway(OfflinePolicyLLM(), tracer, cap=0.0).ask(request)
    plain = await LLMGateway({"default": OfflinePolicyLLM()}, 0.0, "test", NY).ask(request)
    assert traced is not None and plain is not None
    assert traced.output == plain.output
    assert [s.name for s in tracer.spans] == ["agent signal", "llm offline"]
    assert tracer.spans[1].metadata["model"] == "offline-policy-v1"


def traced_container(tracer: RecordingTracer) -> Any:
    container = build_container(load_settings(env="test", _env_file=None), "test", start=date(2024, 3, 1),
                                end=date(2024, 3, 29), seed=5)
    container.tracer.override(providers.Object(tracer))
    return container


def only(spans: list[RecordedSpan]) -> RecordedSpan:
    (span,) = spans
    return span


async def test_a_cycle_is_one_root_span_with_its_six_stages_and_the_agents_under_decide() -> None:
    tracer = RecordingTracer()
    container = traced_container(tracer)
    try:
        result = await container.runner().run_cycle(as_of=CALENDAR.session_open(date(2024, 3, 4)))
    finally:
        await close_container(container)
    root = only([s for s in tracer.spans if s.parent is None])
    assert root.name == "cycle scheduled"
    assert root.metadata == {"cycle_id": result.cycle_id, "scope": container.scope(), "kind": "scheduled",
                             "as_of": "2024-03-04T14:30:00+00:00", "symbol": None}
    assert root.outputs["status"] == "completed" and root.outputs["orders"] == result.orders > 0
    stages = tracer.children(root)
    assert [s.name for s in stages] == ["gate", "snapshot", "send_exits", "decide", "execute", "book_keeping"]
    assert all(s.metadata["cycle_id"] == result.cycle_id and s.closed and s.error is None for s in stages)
    decide = stages[3]
    agents = tracer.named("agent ")
    assert {s.name for s in agents} == {"agent signal", "agent risk", "agent validator"}
    assert all(s.parent == decide.id for s in agents)
    assert all(only(tracer.children(a)).run_type == "llm" for a in agents)
    assert len(tracer.named("llm ")) == len(agents)
    assert decide.outputs["verdicts"] == root.outputs["verdicts"]


async def test_a_failing_stage_is_marked_failed_in_the_trace_and_the_cycle_fails_as_before() -> None:
    tracer = RecordingTracer()
    container = traced_container(tracer)
    broker = container.broker()

    async def down(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("broker down")

    broker.open_orders = down
    try:
        result = await container.runner().run_cycle(as_of=CALENDAR.session_open(date(2024, 3, 4)))
    finally:
        await close_container(container)
    assert result.status == "failed"
    root = only([s for s in tracer.spans if s.parent is None])
    gate, snapshot = tracer.children(root)  # the stages after the failing one never ran
    assert (gate.name, gate.error) == ("gate", None)
    assert snapshot.name == "snapshot" and snapshot.error == "RuntimeError: broker down"
    assert root.error == result.error and root.outputs["status"] == "failed"


def test_tracing_is_off_by_default_and_read_from_the_langsmith_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith(("LANGSMITH_", "QUORUM_LANGSMITH_"))]:
        monkeypatch.delenv(key)
    off = load_settings(_env_file=None).tracing
    assert (off.enabled, off.endpoint, off.api_key, off.project) == (False, None, None, "quorum")
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", "http://127.0.0.1:1984")
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2_pt_settings-test-key")
    monkeypatch.setenv("LANGSMITH_PROJECT", "quorum-paper")
    on = load_settings(_env_file=None).tracing
    assert (on.enabled, on.endpoint, on.project) == (True, "http://127.0.0.1:1984", "quorum-paper")
    assert on.api_key is not None and on.api_key.get_secret_value() == "lsv2_pt_settings-test-key"
    assert "settings-test-key" not in repr(on)
    monkeypatch.setenv("LANGSMITH_TRACING", "sometimes")
    with pytest.raises(ConfigurationError, match="LANGSMITH_TRACING"):
        load_settings(_env_file=None)
