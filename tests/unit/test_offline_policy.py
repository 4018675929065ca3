"""The offline policy behind the LLM port: deterministic, trend-following entries, trend-break exits,
memory-aware confidence, volatility-scaled sizes with bounded stops, and a validator that rejects setups
whose similar past trades mostly lost."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from adapters.llm.offline_policy import OfflinePolicyLLM
from domain.agents.schemas import (
    MarketConditions,
    MemoryEvidence,
    RiskBatch,
    RiskCandidate,
    RiskContext,
    SignalBatch,
    SignalContext,
    SignalProposal,
    SymbolFeatures,
    ValidatorBatch,
    ValidatorCandidate,
    ValidatorContext,
    ValidatorVerdict,
)
from domain.errors import LLMError
from domain.ports.llm import LLMRequest

AS_OF = datetime(2024, 5, 1, 13, 30, tzinfo=UTC)
CALM_UP = MarketConditions(vix=14.0, vix_is_proxy=False, spy_return_20d=0.03, spy_above_sma_50=True, spy_trend="up")


def features(symbol: str = "AAA", **changes: Any) -> SymbolFeatures:
    """A clean entry setup: uptrend, momentum, calm volatility (override any field)."""
    base: dict[str, Any] = {
        "symbol": symbol, "price": 110.0, "return_1d": 0.004, "return_5d": 0.01, "return_20d": 0.06,
        "return_60d": 0.12, "sma_20": 106.0, "sma_50": 100.0, "volatility_20d": 0.25, "atr_pct": 0.02,
        "avg_dollar_volume_20d": 5e7, "volume_ratio": 1.0,
    }
    return SymbolFeatures(**{**base, **changes})


def evidence(*outcomes: str | None, distance: float = 0.2) -> tuple[MemoryEvidence, ...]:
    return tuple(MemoryEvidence(text=f"past trade {i}", distance=distance, outcome=o,
                                return_pct=None if o is None else (-0.05 if o == "LOSS" else 0.05))
                 for i, o in enumerate(outcomes))


def _request(agent: Any, schema: type[BaseModel], context: BaseModel) -> LLMRequest[Any]:
    return LLMRequest(agent=agent, messages=(), output_schema=schema, context=context, as_of=AS_OF)


async def signals(*symbols: SymbolFeatures, market: MarketConditions = CALM_UP,
                  llm: OfflinePolicyLLM | None = None) -> dict[str, SignalProposal]:
    ctx = SignalContext(as_of=AS_OF.isoformat(), market=market, symbols=symbols)
    decision = await (llm or OfflinePolicyLLM()).complete(_request("signal", SignalBatch, ctx))
    assert isinstance(decision.output, SignalBatch)
    return {p.symbol: p for p in decision.output.proposals}


async def signal(f: SymbolFeatures, market: MarketConditions = CALM_UP) -> SignalProposal:
    return (await signals(f, market=market))[f.symbol]


def _mixed_context() -> SignalContext:
    return SignalContext(as_of=AS_OF.isoformat(), market=CALM_UP, symbols=(
        features("AAA"),
        features("BBB", similar_trades=evidence("LOSS", "LOSS", "WIN", "LOSS")),
        features("CCC", price=95.0, held_qty=3.0),
        features("DDD", volatility_20d=0.9),
        features("EEE", held_qty=2.0, unrealized_return=0.3),
    ))


async def test_same_context_gives_identical_output_twice_and_across_instances() -> None:
    request = _request("signal", SignalBatch, _mixed_context())
    first, second = OfflinePolicyLLM(), OfflinePolicyLLM()
    a, b = await first.complete(request), await first.complete(request)
    c = await second.complete(_request("signal", SignalBatch, _mixed_context()))
    assert a.output.model_dump() == b.output.model_dump() == c.output.model_dump()
    assert [p.action for p in a.output.proposals] == ["BUY", "BUY", "SELL", "HOLD", "SELL"]
    assert a.usage.cost_usd == 0 and a.usage.provider == "offline"


async def test_enters_on_uptrend_momentum_calm_and_a_healthy_market() -> None:
    p = await signal(features())
    assert p.action == "BUY"
    assert 0.5 < p.confidence <= 0.95


@pytest.mark.parametrize(("missing", "changes", "market"), [
    ("uptrend", {"price": 99.0}, CALM_UP),
    ("uptrend", {"sma_20": 99.0}, CALM_UP),
    ("momentum", {"return_20d": 0.015}, CALM_UP),
    ("momentum", {"return_60d": -0.01}, CALM_UP),
    ("calm", {"volatility_20d": 0.65}, CALM_UP),
    ("market", {}, CALM_UP.model_copy(update={"spy_trend": "down"})),
    ("market", {}, CALM_UP.model_copy(update={"vix": 31.0})),
])
async def test_no_entry_when_one_condition_is_missing(missing: str, changes: dict[str, Any],
                                                      market: MarketConditions) -> None:
    p = await signal(features(**changes), market)
    assert p.action == "HOLD"
    assert f"missing {missing}" in p.reasoning


async def test_a_held_position_is_exited_when_its_trend_breaks() -> None:
    below_average = await signal(features(price=97.0, held_qty=5.0))  # more than 2% under the 50-day average
    crash = await signal(features(return_20d=-0.09, held_qty=5.0))
    still_trending = await signal(features(held_qty=5.0))
    slight_dip = await signal(features(price=98.5, held_qty=5.0))  # within 2% of the average: not a break
    assert (below_average.action, crash.action) == ("SELL", "SELL")
    assert "trend broke" in below_average.reasoning
    assert still_trending.action == "HOLD" and slight_dip.action == "HOLD"


async def test_a_trend_break_without_a_position_is_not_a_sell() -> None:
    assert (await signal(features(price=90.0))).action == "HOLD"


async def test_confidence_drops_when_similar_past_trades_mostly_lost() -> None:
    clean = await signal(features())
    losers = await signal(features(similar_trades=evidence("LOSS", "LOSS", "LOSS", "WIN")))
    winners = await signal(features(similar_trades=evidence("WIN", "WIN", "WIN")))
    too_few = await signal(features(similar_trades=evidence("LOSS", "LOSS")))
    far_away = await signal(features(similar_trades=evidence("LOSS", "LOSS", "LOSS", distance=0.9)))
    unknown = await signal(features(similar_trades=evidence(None, None, None, "LOSS")))
    assert losers.action == "BUY"
    assert losers.confidence == pytest.approx(clean.confidence * (1 - 0.5 * 0.75), abs=1e-4)
    assert "75% of 4 similar trades lost" in losers.reasoning
    for p in (winners, too_few, far_away, unknown):
        assert p.confidence == clean.confidence


async def _risk(*candidates: RiskCandidate, max_position_pct: float = 0.2,
                default_stop_pct: float = 0.05) -> dict[str, Any]:
    ctx = RiskContext(as_of=AS_OF.isoformat(), equity=650.0, cash=650.0, gross_exposure_pct=0.0,
                      max_position_pct=max_position_pct, default_stop_pct=default_stop_pct, candidates=candidates)
    out = (await OfflinePolicyLLM().complete(_request("risk", RiskBatch, ctx))).output
    assert isinstance(out, RiskBatch)
    return {a.symbol: a for a in out.assessments}


def candidate(symbol: str, *, vol: float = 0.25, atr: float = 0.02, confidence: float = 0.2) -> RiskCandidate:
    return RiskCandidate(symbol=symbol, action="BUY", confidence=confidence, price=100.0, volatility_20d=vol,
                         atr_pct=atr, held_qty=0.0)


async def test_risk_scales_size_down_as_volatility_rises() -> None:
    sized = await _risk(candidate("LOW", vol=0.2), candidate("HIGH", vol=0.4), candidate("CAP", vol=0.05))
    assert sized["LOW"].position_pct == pytest.approx(0.10 / 0.2 * 0.2)
    assert sized["HIGH"].position_pct == pytest.approx(sized["LOW"].position_pct / 2)
    assert sized["CAP"].position_pct == 0.2  # would be 0.4: capped at max_position_pct


async def test_risk_keeps_stops_between_2_and_12_percent() -> None:
    sized = await _risk(candidate("TIGHT", atr=0.001), candidate("MID", atr=0.02), candidate("WIDE", atr=0.2),
                        candidate("NOATR", atr=0.0), default_stop_pct=0.07)
    assert sized["TIGHT"].stop_loss_pct == 0.02
    assert sized["MID"].stop_loss_pct == pytest.approx(0.05)  # 2.5 x ATR
    assert sized["WIDE"].stop_loss_pct == 0.12
    assert sized["NOATR"].stop_loss_pct == 0.07
    for a in sized.values():
        assert a.take_profit_pct == pytest.approx(3 * a.stop_loss_pct)


async def test_risk_sizes_a_non_finite_volatility_as_50_percent() -> None:
    sized = await _risk(candidate("NAN", vol=float("nan")), candidate("ZERO", vol=0.0))
    assert sized["NAN"].position_pct == pytest.approx(0.10 / 0.5 * 0.2)
    assert sized["ZERO"].position_pct == pytest.approx(0.10 / 0.5 * 0.2)


async def _verdicts(*candidates: ValidatorCandidate) -> dict[str, ValidatorVerdict]:
    ctx = ValidatorContext(as_of=AS_OF.isoformat(), market=CALM_UP, candidates=candidates)
    out = (await OfflinePolicyLLM().complete(_request("validator", ValidatorBatch, ctx))).output
    assert isinstance(out, ValidatorBatch)
    return {v.symbol: v for v in out.verdicts}


def vcand(symbol: str, similar: tuple[MemoryEvidence, ...], warnings: tuple[str, ...] = ()) -> ValidatorCandidate:
    return ValidatorCandidate(symbol=symbol, action="BUY", confidence=0.7, position_pct=0.1, stop_loss_pct=0.05,
                              reasoning="uptrend", similar_trades=similar, rule_warnings=warnings)


async def test_validator_rejects_when_three_quarters_of_at_least_three_similar_trades_lost() -> None:
    v = await _verdicts(
        vcand("Q3OF4", evidence("LOSS", "LOSS", "LOSS", "WIN")),
        vcand("ALL3", evidence("LOSS", "LOSS", "LOSS")),
        vcand("TWO3", evidence("LOSS", "LOSS", "WIN")),
        vcand("ONLY2", evidence("LOSS", "LOSS")),
        vcand("FAR", evidence("LOSS", "LOSS", "LOSS", distance=0.7)),
        vcand("WINS", evidence("WIN", "WIN", "WIN"), warnings=("spread is wide",)),
    )
    assert not v["Q3OF4"].approve and not v["ALL3"].approve
    assert v["Q3OF4"].confidence_adjustment == pytest.approx(-0.225)
    assert "75% of 4 similar past trades lost" in v["Q3OF4"].warnings
    assert v["TWO3"].approve and v["TWO3"].confidence_adjustment < 0  # warned, not rejected
    for sym in ("ONLY2", "FAR", "WINS"):
        assert v[sym].approve and v[sym].confidence_adjustment == 0
    assert v["WINS"].warnings == ["spread is wide"]


class UnknownContext(BaseModel):
    question: str = "what now?"


async def test_unknown_context_type_raises_llm_error() -> None:
    with pytest.raises(LLMError, match="UnknownContext"):
        await OfflinePolicyLLM().complete(_request("signal", SignalBatch, UnknownContext()))
