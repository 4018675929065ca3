"""LLMPicker: one batched prompt; works with the offline policy; garbage, exceptions and an exhausted budget
give an empty result with a logged reason; scores are clipped; unknown symbols are dropped."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.market_data import SyntheticMarket
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from adapters.llm.json_output import parse_output
from adapters.llm.offline_policy import OfflinePolicyLLM
from application.discovery.llm_picker import LLMPicker
from application.llm_gateway import LLMGateway
from domain.agents.schemas import MarketConditions, MemoryEvidence
from domain.discovery.llm_schema import LLMPick, LLMPickerContext, LLMPickerOutput, PickerCandidate, PortfolioSummary
from domain.events import EventType
from domain.features import compute_features
from domain.ports.llm import LLM, Decision, LLMRequest, LLMUsage, OutputT
from domain.ports.repositories import EventQuery

NY = ZoneInfo("America/New_York")
AS_OF = datetime(2024, 6, 3, 13, 30, tzinfo=UTC)
SCOPE = "live"


@pytest.fixture(scope="module")
def context() -> LLMPickerContext:
    cal = NyseCalendar()
    market = SyntheticMarket(seed=3, n_symbols=8, start=date(2023, 6, 1), end=date(2024, 6, 1), calendar=cal)
    candidates = []
    for i, symbol in enumerate(market.stock_symbols[:6]):
        series = market.series(symbol)
        assert series is not None
        features = compute_features(series.upto(date(2024, 5, 31)))
        assert features is not None
        if i == 0:  # a symbol whose similar past trades all lost
            losses = tuple(MemoryEvidence(text=f"BUY {symbol} breakout", distance=0.1, outcome="LOSS", return_pct=-0.05)
                           for _ in range(4))
            features = features.model_copy(update={"similar_trades": losses})
        candidates.append(PickerCandidate(symbol=symbol, sector="Energy", prescore=0.6, features=features))
    market_now = MarketConditions(vix=14.0, vix_is_proxy=False, spy_return_20d=0.02, spy_above_sma_50=True,
                                  spy_trend="up", similar_conditions=(MemoryEvidence(
                                      text="Market on 2019-05-01: VIX 13", distance=0.05, outcome="RALLY",
                                      return_pct=0.02),))
    return LLMPickerContext(as_of=AS_OF.isoformat(), portfolio=PortfolioSummary(equity=650.0, cash=400.0),
                            market=market_now, candidates=tuple(candidates))


class ScriptedLLM(LLM):
    """Answers every request with `answer(request)` (or raises what it raises) and counts calls."""

    def __init__(self, answer: object, provider: str = "offline") -> None:
        self.answer = answer
        self.provider = provider
        self.requests: list[LLMRequest[object]] = []  # type: ignore[type-var]

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        self.requests.append(request)  # type: ignore[arg-type]
        output = self.answer(request) if callable(self.answer) else self.answer
        return Decision(output=output, usage=LLMUsage(provider=self.provider, model="scripted"))  # type: ignore[arg-type]


def gateway(llm: LLM, cap: float = 0.5) -> LLMGateway:
    return LLMGateway({"default": llm}, cap, SCOPE, NY)


async def flushed_events(gw: LLMGateway) -> list[EventType]:
    db = InMemoryDatabase(HashingEmbedder())
    async with InMemoryUnitOfWork(db) as uow:
        await gw.flush(uow, None)
        return [e.type for e in await uow.events.query(EventQuery(SCOPE))]


async def test_the_offline_policy_rates_every_candidate_in_one_call(context: LLMPickerContext) -> None:
    offline = OfflinePolicyLLM()
    calls: list[LLMRequest[object]] = []  # type: ignore[type-var]

    class Counting(LLM):
        provider = "offline"

        async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
            calls.append(request)  # type: ignore[arg-type]
            return await offline.complete(request)

    picker = LLMPicker(gateway(Counting()), scope=SCOPE)
    run = await picker.pick(context, as_of=AS_OF)
    again = await LLMPicker(gateway(OfflinePolicyLLM()), scope=SCOPE).pick(context, as_of=AS_OF)
    assert len(calls) == 1 and calls[0].agent == "picker"
    assert [r.symbol for r in run.results] == [c.symbol for c in context.candidates]
    assert run.error is None and run.dropped == ()
    assert all(r.picker == "llm" and r.passed and 0.0 <= r.score <= 1.0 and r.reasons[0] for r in run.results)
    assert [r.score for r in run.results] == [r.score for r in again.results]  # deterministic
    assert "memory: 100% of 4 similar trades lost" in run.results[0].reasons[0]
    user = calls[0].messages[1].content
    assert all(c.symbol in user for c in context.candidates) and "RALLY" in user  # past conditions in the prompt


async def test_scores_are_clipped_and_unknown_or_repeated_symbols_dropped(context: LLMPickerContext) -> None:
    first, second = context.candidates[0].symbol, context.candidates[1].symbol
    answer = LLMPickerOutput(picks=[
        LLMPick(symbol=first.lower(), score=1.7, reason="very strong"),
        LLMPick(symbol=second, score=-0.2, reason="avoid"),
        LLMPick(symbol="ZZZZ", score=0.9, reason="invented"),
        LLMPick(symbol=first, score=0.1, reason="second opinion"),
    ])
    with capture_logs() as logs:
        run = await LLMPicker(gateway(ScriptedLLM(answer)), scope=SCOPE).pick(context, as_of=AS_OF)
    got = {r.symbol: r for r in run.results}
    assert set(got) == {first, second}
    assert got[first].score == 1.0 and got[second].score == 0.0
    assert got[first].reasons == ("very strong", "score 1.7 clipped to 1")
    assert run.dropped == ("ZZZZ", first)
    assert run.error is None
    dropped = [entry for entry in logs if entry["event"] == "llm_picker_dropped_pick"]
    assert [(e["symbol"], e["why"]) for e in dropped] == [("ZZZZ", "not a candidate"), (first, "repeated")]


def garbage(request: LLMRequest[OutputT]) -> OutputT:
    return parse_output("Sure! My favourite picks are AAPL and NVDA, both look great.", request.output_schema)


def wrong_shape(request: LLMRequest[OutputT]) -> OutputT:
    return request.output_schema.model_validate({"picks": [{"symbol": "AAPL", "score": "high"}]})


@pytest.mark.parametrize("answer", [garbage, wrong_shape], ids=["not-json", "wrong-schema"])
async def test_garbage_gives_an_empty_result_a_logged_reason_and_an_llm_failed_event(
    context: LLMPickerContext, answer: object
) -> None:
    gw = gateway(ScriptedLLM(answer))
    with capture_logs() as logs:
        run = await LLMPicker(gw, scope=SCOPE).pick(context, as_of=AS_OF)
    assert run.results == [] and run.error
    assert any(e["event"] == "llm_picker_failed" and e["reason"] == run.error for e in logs)
    assert await flushed_events(gw) == [EventType.LLM_FAILED]


async def test_an_unexpected_exception_never_escapes(context: LLMPickerContext) -> None:
    def boom(_request: object) -> object:
        raise RuntimeError("connection reset by peer")

    with capture_logs() as logs:
        run = await LLMPicker(gateway(ScriptedLLM(boom)), scope=SCOPE).pick(context, as_of=AS_OF)
    assert run.results == [] and run.error == "RuntimeError: connection reset by peer"
    assert [e.type for e in run.events] == [EventType.LLM_FAILED]
    assert "connection reset by peer" in run.events[0].message
    assert any(e["event"] == "llm_picker_failed" for e in logs)


async def test_an_exhausted_budget_makes_no_call_and_says_why(context: LLMPickerContext) -> None:
    paid = ScriptedLLM(LLMPickerOutput(picks=[]), provider="anthropic")
    run = await LLMPicker(gateway(paid, cap=0.0), scope=SCOPE).pick(context, as_of=AS_OF)
    assert paid.requests == [] and run.results == []
    assert run.error is not None and "budget" in run.error


async def test_picks_that_are_all_unknown_are_an_empty_result_with_a_reason(context: LLMPickerContext) -> None:
    answer = LLMPickerOutput(picks=[LLMPick(symbol="NOPE", score=0.9, reason="?")])
    run = await LLMPicker(gateway(ScriptedLLM(answer)), scope=SCOPE).pick(context, as_of=AS_OF)
    assert run.results == [] and run.error is not None and "not asked about" in run.error


async def test_no_candidates_means_no_call(context: LLMPickerContext) -> None:
    llm = ScriptedLLM(LLMPickerOutput(picks=[]))
    run = await LLMPicker(gateway(llm), scope=SCOPE).pick(context.model_copy(update={"candidates": ()}), as_of=AS_OF)
    assert llm.requests == [] and run.results == [] and run.error is None
