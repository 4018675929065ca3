"""The discovery picker's prompt shows memory evidence only where it informs: past trades with a known outcome,
within the distance, one copy of a trade however many candidates (or records) recall it, and the market
conditions without yesterday's own record; the typed context the offline picker reads is left as recalled."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from adapters.llm.offline_policy import OfflinePolicyLLM
from application.discovery.llm_picker import render
from application.prompts import LEGACY_STYLE, PromptStyle
from domain.agents.schemas import MarketConditions, MemoryEvidence, SymbolFeatures
from domain.discovery.llm_schema import LLMPickerContext, LLMPickerOutput, PickerCandidate, PortfolioSummary
from domain.ports.llm import LLMRequest

AS_OF = datetime(2016, 3, 14, 17, 30, tzinfo=UTC)
REASONING = ("XOM is +2.9% over 20 days, above its 50-day average, volume 0.9x normal and ATR 2.1% of price; the "
             "breakout is confirmed by volume and the market backdrop is supportive.")
SETUP = ("BUY XOM at 82.4612: BUY XOM: uptrend, price 82.40 vs 50-day average 78.92; 20-day return +2.9%, 5-day "
         "-0.4%; volatility 20% annualised, ATR 2.1%; volume 0.9x average")
XOM_LOSS = f"{SETUP}. Reasoning: {REASONING}"
OPEN_TRADE = "BUY MSFT at 50.25: uptrend. Reasoning: still open"
FAR_WIN = "BUY KO at 40.5: flat. Reasoning: defensive"
SYMBOLS = ("AAPL", "AMZN", "BAC", "C", "CVX", "DIS", "FB", "GE", "GILD", "GOOG", "GOOGL", "JNJ", "JPM", "MSFT",
           "NFLX", "PCLN", "PFE", "T", "WFC", "XOM")


def evidence(distance: float) -> tuple[MemoryEvidence, ...]:
    """What the store recalls for a candidate: one closed trade recorded three times (same symbol, same day), an
    open trade, a closed trade too far away to be similar."""
    loss = MemoryEvidence(text=XOM_LOSS, distance=distance, outcome="LOSS", return_pct=-0.001)
    return (loss, loss, MemoryEvidence(text=XOM_LOSS.replace(REASONING, "a re-ask"), distance=distance,
                                       outcome="LOSS", return_pct=-0.001),
            MemoryEvidence(text=OPEN_TRADE, distance=distance + 0.01),
            MemoryEvidence(text=FAR_WIN, distance=0.9, outcome="WIN", return_pct=0.02))


def features(symbol: str, distance: float) -> SymbolFeatures:
    return SymbolFeatures(symbol=symbol, price=101.26, return_1d=0.0108, return_5d=-0.0073, return_20d=0.0914,
                          return_60d=-0.0909, sma_20=98.62, sma_50=98.22, volatility_20d=0.2283, atr_pct=0.0188,
                          avg_dollar_volume_20d=3.57e9, volume_ratio=0.76, similar_trades=evidence(distance))


MARKET = MarketConditions(
    vix=16.5, vix_is_proxy=False, spy_return_20d=0.1088, spy_above_sma_50=True, spy_trend="up",
    text="Market on 2016-03-11: VIX 16.5 (calm)",
    similar_conditions=(MemoryEvidence(text="Market on 2016-03-11: VIX 16.5 (calm)", distance=0.0),
                        MemoryEvidence(text="Market on 2015-11-02: VIX 15.0 (calm)", distance=0.08, outcome="RALLY",
                                       return_pct=0.0155),
                        MemoryEvidence(text="Market on 2015-08-24: VIX 40.7 (panic)", distance=0.95,
                                       outcome="DECLINE", return_pct=-0.03)))


def context() -> LLMPickerContext:
    return LLMPickerContext(
        as_of=AS_OF.isoformat(), portfolio=PortfolioSummary(equity=649.48, cash=649.48), market=MARKET,
        candidates=tuple(PickerCandidate(symbol=s, prescore=0.6, features=features(s, 0.4 + i / 100))
                         for i, s in enumerate(SYMBOLS)))


def user(style: PromptStyle = PromptStyle()) -> str:
    return render(context(), style)[1].content


def shown_trades(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """symbol -> the past trades shown for it, resolved to their text, outcome, return and distance."""
    by_id = {t["id"]: t for t in data.get("similar_trades", [])}
    return {c["symbol"]: [{**by_id[ref["id"]], "distance": ref["distance"]}
                          for ref in c["features"].get("similar_trades", [])] for c in data["candidates"]}


def test_the_picker_prompt_shows_each_informative_past_trade_once() -> None:
    content = user()
    data = json.loads(content)
    trades = shown_trades(data)
    assert set(trades) == set(SYMBOLS)
    for i, symbol in enumerate(SYMBOLS):
        [only] = trades[symbol]  # the triplicate counted once; the open and the far trade are not evidence
        assert (only["outcome"], only["return_pct"], only["distance"]) == ("LOSS", -0.001, round(0.4 + i / 100, 3))
        assert only["text"].startswith("BUY XOM at 82.4612: BUY XOM: uptrend")
    assert content.count("BUY XOM at 82.4612") == 1  # one copy for twenty candidates
    assert "still open" not in content and "BUY KO" not in content


def test_the_picker_sees_no_market_condition_without_outcome_or_beyond_the_distance() -> None:
    data = json.loads(user())
    assert [c["outcome"] for c in data["market"]["similar_conditions"]] == ["RALLY"]


def test_the_distance_threshold_is_the_styles() -> None:
    data = json.loads(user(PromptStyle(evidence_max_distance=0.95)))
    assert all(len(t) == 2 for t in shown_trades(data).values())  # the far win is now similar enough
    assert [c["outcome"] for c in data["market"]["similar_conditions"]] == ["RALLY", "DECLINE"]


def test_the_picker_prompt_of_twenty_candidates_stays_small() -> None:
    """Twenty candidates' rounded features, each citing one shared past trade: under 400 characters a candidate
    (about 110 tokens), where the evidence as recalled made it about 1,500."""
    compact = user()
    assert len(compact) < 20 * 400
    assert len(user(PromptStyle(compact_evidence=False))) > 20 * 1_500


def test_without_compact_evidence_the_evidence_is_shown_as_recalled() -> None:
    data = json.loads(user(PromptStyle(compact_evidence=False)))
    assert "similar_trades" not in data
    assert all(len(c["features"]["similar_trades"]) == 5 for c in data["candidates"])
    assert user(LEGACY_STYLE) == context().model_dump_json()


async def test_the_offline_picker_reads_the_evidence_as_recalled() -> None:
    """The typed context is not changed by the prompt's rules: the offline picker still counts the recalled
    trades (three closed losses within the distance lower every score) as before."""
    ctx = context()
    decision = await OfflinePolicyLLM().complete(LLMRequest(agent="picker", messages=render(ctx),
                                                            output_schema=LLMPickerOutput, context=ctx, as_of=AS_OF))
    assert all("memory: 100% of 3 similar trades lost" in p.reason for p in decision.output.picks)
