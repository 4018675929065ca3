"""Agents: symbols batched per prompt, chunks concurrent under a bound, stages in order, HOLD on failure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from application.agents import Agents
from application.llm_gateway import LLMGateway
from domain.agents.schemas import (
    MarketConditions,
    RiskCandidate,
    SignalBatch,
    SignalContext,
    SignalProposal,
    SymbolFeatures,
)
from domain.errors import LLMError
from domain.ports.llm import Decision, LLMRequest, LLMUsage

AS_OF = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
MARKET = MarketConditions(vix=15.0, vix_is_proxy=False, spy_return_20d=0.01, spy_above_sma_50=True, spy_trend="up")


def feature(sym: str) -> SymbolFeatures:
    return SymbolFeatures(symbol=sym, price=10, return_1d=0, return_5d=0, return_20d=0.05, return_60d=0.1, sma_20=10,
                          sma_50=9, volatility_20d=0.3, atr_pct=0.02, avg_dollar_volume_20d=1e7, volume_ratio=1)


class RecordingLLM:
    """Holds each call until released, so the test can see how many run at once."""

    provider = "offline"

    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.log: list[tuple[str, str]] = []
        self.batches: list[int] = []

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.log.append(("start", request.agent))
        for _ in range(3):
            await asyncio.sleep(0)  # yield so other chunks can start
        self.in_flight -= 1
        self.log.append(("end", request.agent))
        ctx = request.context
        if isinstance(ctx, SignalContext):
            self.batches.append(len(ctx.symbols))
            out = SignalBatch(proposals=[SignalProposal(symbol=f.symbol, action="BUY", confidence=0.9,
                                                        reasoning="t") for f in ctx.symbols])
            return Decision(out, LLMUsage("offline", "rec"))
        return Decision(request.output_schema.model_validate({"assessments": []}), LLMUsage("offline", "rec"))


def gateway(llm: Any) -> LLMGateway:
    return LLMGateway({"default": llm}, 1.0, "test", ZoneInfo("America/New_York"))


async def test_chunks_run_concurrently_within_the_bound_and_stages_in_order() -> None:
    llm = RecordingLLM()
    agents = Agents(gateway(llm), chunk_size=2, concurrency=2)
    symbols = [feature(f"S{i}") for i in range(7)]
    signals = await agents.signals(symbols, MARKET, as_of=AS_OF, cycle_id="c")
    assert llm.batches == [2, 2, 2, 1]  # symbols batched, one prompt per chunk
    assert llm.max_in_flight == 2  # concurrent, but never more than the bound
    assert set(signals) == {f"S{i}" for i in range(7)}
    candidates = [RiskCandidate(symbol=s, action="BUY", confidence=0.9, price=10, volatility_20d=0.3, atr_pct=0.02,
                                held_qty=0) for s in signals]
    await agents.risk(candidates, equity=650, cash=650, gross_pct=0, max_position_pct=0.25, default_stop_pct=0.05,
                      as_of=AS_OF, cycle_id="c")
    last_signal_end = max(i for i, e in enumerate(llm.log) if e == ("end", "signal"))
    first_risk_start = min(i for i, e in enumerate(llm.log) if e == ("start", "risk"))
    assert last_signal_end < first_risk_start


class FailingLLM:
    provider = "anthropic"

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        raise LLMError("anthropic/claude gave up after 4 attempt(s); last error: 529 overloaded")


async def test_llm_failure_is_a_hold_with_the_error_recorded() -> None:
    gw = gateway(FailingLLM())
    agents = Agents(gw, chunk_size=5)
    signals = await agents.signals([feature("AAA"), feature("BBB")], MARKET, as_of=AS_OF, cycle_id="c")
    assert {s.action for s in signals.values()} == {"HOLD"}
    assert all("failed" in s.reasoning for s in signals.values())
    assert gw._events and "overloaded" in gw._events[0].message


class PricedLLM:
    provider = "openai"

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        ctx = request.context
        assert isinstance(ctx, SignalContext)
        out = SignalBatch(proposals=[SignalProposal(symbol=f.symbol, action="HOLD", confidence=0.5, reasoning="t")
                                     for f in ctx.symbols])
        return Decision(out, LLMUsage("openai", "openai/gpt-4o-mini", 1000, 100, cost_usd=0.30))


async def test_daily_cap_stops_paid_calls_and_says_so() -> None:
    gw = gateway(PricedLLM())
    gw.daily_cap_usd = 0.50
    agents = Agents(gw, chunk_size=1, concurrency=1)
    signals = await agents.signals([feature(f"S{i}") for i in range(4)], MARKET, as_of=AS_OF, cycle_id="c")
    assert {s.action for s in signals.values()} == {"HOLD"}
    paid = [r for r in gw._pending if r.ok]
    assert len(paid) == 2 and sum(r.cost_usd for r in paid) == 0.60  # the call that crossed the cap was already sent
    assert [e.type.value for e in gw._events] == ["llm_budget_exhausted"]


class ExitRules:
    """Stands in for the offline policy: SELL every held symbol, BUY the rest (the BUYs must be dropped)."""

    provider = "offline"

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        ctx = request.context
        assert isinstance(ctx, SignalContext)
        self.asked.append([f.symbol for f in ctx.symbols])
        out = SignalBatch(proposals=[SignalProposal(symbol=f.symbol, action="SELL" if f.held_qty else "BUY",
                                                    confidence=0.8, reasoning="trend broke") for f in ctx.symbols])
        return Decision(out, LLMUsage("offline", "rules"))


def held(sym: str) -> SymbolFeatures:
    return feature(sym).model_copy(update={"held_qty": 3.0})


async def test_an_llm_outage_still_lets_rule_exits_close_held_positions_but_makes_no_entry() -> None:
    rules = ExitRules()
    agents = Agents(gateway(FailingLLM()), chunk_size=5, exit_rules=rules)
    signals = await agents.signals([held("HELD"), feature("NEW")], MARKET, as_of=AS_OF, cycle_id="c")
    assert rules.asked == [["HELD"]]  # only held symbols go to the rules
    assert signals["HELD"].action == "SELL" and "signal agent unavailable" in signals["HELD"].reasoning
    assert signals["NEW"].action == "HOLD"


async def test_the_spend_cap_still_lets_rule_exits_close_held_positions() -> None:
    gw = gateway(PricedLLM())
    gw.daily_cap_usd = 0.0
    agents = Agents(gw, chunk_size=5, exit_rules=ExitRules())
    signals = await agents.signals([held("HELD"), feature("NEW")], MARKET, as_of=AS_OF, cycle_id="c")
    assert (signals["HELD"].action, signals["NEW"].action) == ("SELL", "HOLD")
    assert [e.type.value for e in gw._events] == ["llm_budget_exhausted"]


async def test_the_gateway_keeps_each_cycles_calls_for_its_llm_call_events_failed_ones_too() -> None:
    from domain.alerts import is_alert_worthy
    from domain.events import EventType, Severity
    from domain.stage_events import llm_call

    gw = gateway(PricedLLM())
    await Agents(gw, chunk_size=1).signals([feature("AAA"), feature("BBB")], MARKET, as_of=AS_OF, cycle_id="c1")
    gw.llms = {"default": FailingLLM()}
    await Agents(gw, chunk_size=5).signals([feature("CCC")], MARKET, as_of=AS_OF, cycle_id="c2")
    events = [llm_call(record=r) for r in gw.calls("c1") + gw.calls("c2")]
    assert [(e.type, e.cycle_id, e.payload["ok"], e.payload["provider"]) for e in events] == [
        (EventType.LLM_CALL, "c1", True, "openai"), (EventType.LLM_CALL, "c1", True, "openai"),
        (EventType.LLM_CALL, "c2", False, "anthropic")]
    first = events[0].payload
    assert (first["agent"], first["model"], first["prompt_tokens"], first["completion_tokens"], first["cost_usd"]) == (
        "signal", "openai/gpt-4o-mini", 1000, 100, 0.30)
    assert "latency_ms" in first and "(failed)" in events[2].message
    assert all(e.severity is Severity.DEBUG and not is_alert_worthy(e) for e in events)
    gw.discard("c1")
    assert gw.calls("c1") == () and len(gw.calls("c2")) == 1
