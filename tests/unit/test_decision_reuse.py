"""The key an agent decision is kept under, and when it may be reused (issue 15, `domain.decision_reuse`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from domain.agents.schemas import (
    MarketConditions,
    MemoryEvidence,
    RiskAssessment,
    SignalProposal,
    SymbolFeatures,
    ValidatorVerdict,
)
from domain.decision_reuse import (
    ReuseBook,
    StoredDecision,
    SymbolInputs,
    decision_key,
    rounded,
    sizing_key,
    why_ask,
)

AT = datetime(2016, 3, 14, 13, 35, tzinfo=UTC)
FEATURES = SymbolFeatures(symbol="AAPL", price=101.23456, return_1d=0.010273661241931187, return_5d=0.021,
                          return_20d=0.05, return_60d=0.08, sma_20=99.5, sma_50=97.25, volatility_20d=0.21,
                          atr_pct=0.017, avg_dollar_volume_20d=3.2e9, volume_ratio=1.13,
                          similar_trades=(MemoryEvidence(text="AAPL breakout", distance=0.12, outcome="win",
                                                         return_pct=0.034),))
MARKET = MarketConditions(vix=15.2, vix_is_proxy=False, spy_return_20d=0.021, spy_above_sma_50=True, spy_trend="up",
                          sector_returns_20d={"XLK": 0.031})
INPUTS = SymbolInputs(FEATURES, MARKET, date(2016, 3, 11), held_qty=Decimal("2"), stop_price=Decimal("95.10"),
                      take_profit_price=Decimal("110"), last_fill="2016-03-10T14:31:00+00:00 c-1 buy 2")
BUY = SignalProposal(symbol="AAPL", action="BUY", confidence=0.7, reasoning="trend up")


def stored(price: str = "101.00", inputs: SymbolInputs = INPUTS) -> StoredDecision:
    return StoredDecision("AAPL", decision_key(inputs), Decimal(price), AT, "c-0935", BUY)


def test_the_same_context_gives_the_same_key() -> None:
    same = SymbolInputs(FEATURES.model_copy(), MARKET.model_copy(), date(2016, 3, 11), held_qty=Decimal("2.000"),
                        stop_price=Decimal("95.1"), take_profit_price=Decimal("110.00"), last_fill=INPUTS.last_fill)
    assert decision_key(same) == decision_key(INPUTS)
    assert why_ask(stored(), decision_key(same), Decimal("101.00"), threshold_pct=1.0) is None


def test_float_noise_below_the_rounding_keeps_the_key_and_a_real_change_does_not() -> None:
    noisy = replace(INPUTS, features=FEATURES.model_copy(update={"return_1d": 0.010273661241931999}))
    moved = replace(INPUTS, features=FEATURES.model_copy(update={"return_1d": 0.0125}))
    assert decision_key(noisy) == decision_key(INPUTS)
    assert decision_key(moved).digest != decision_key(INPUTS).digest
    assert why_ask(stored(), decision_key(moved), Decimal("101"), threshold_pct=1.0) == \
        "context changed (features, market conditions or memory evidence)"


def test_a_price_move_under_the_threshold_reuses_and_over_it_asks_again() -> None:
    key = decision_key(INPUTS)
    assert why_ask(stored("100.00"), key, Decimal("100.99"), threshold_pct=1.0) is None
    assert why_ask(stored("100.00"), key, Decimal("99.01"), threshold_pct=1.0) is None
    up = why_ask(stored("100.00"), key, Decimal("101.00"), threshold_pct=1.0)
    down = why_ask(stored("100.00"), key, Decimal("98.50"), threshold_pct=1.0)
    assert up == "price moved 1.00% since asked (threshold 1%)"
    assert down is not None and down.startswith("price moved 1.50%")
    assert why_ask(stored("100.00"), key, Decimal("101.00"), threshold_pct=2.5) is None
    unknown = why_ask(stored("100.00"), key, None, threshold_pct=1.0)
    assert unknown == "price unknown, cannot compare with the decision's"


@pytest.mark.parametrize(("change", "reason"), [
    ({"bar_day": date(2016, 3, 14)}, "new daily bar (2016-03-14)"),
    ({"last_fill": "2016-03-14T13:36:00+00:00 c-2 sell 2"}, "new fill"),
    ({"stop_price": Decimal("97.00")}, "stop or take-profit changed (95.1/110 -> 97/110)"),
    ({"take_profit_price": None}, "stop or take-profit changed (95.1/110 -> 95.1/)"),
    ({"held_qty": Decimal("0")}, "position changed (2 -> 0 shares)"),
])
def test_a_new_bar_fill_stop_or_position_change_gives_another_key(change: dict[str, object], reason: str) -> None:
    changed = replace(INPUTS, **change)  # type: ignore[arg-type]
    assert decision_key(changed).digest != decision_key(INPUTS).digest
    assert why_ask(stored(), decision_key(changed), Decimal("101.00"), threshold_pct=1.0) == reason


def test_new_memory_evidence_or_market_conditions_give_another_key() -> None:
    outcome = FEATURES.similar_trades[0].model_copy(update={"outcome": "loss", "return_pct": -0.02})
    remembered = replace(INPUTS, features=FEATURES.model_copy(update={"similar_trades": (outcome,)}))
    market = replace(INPUTS, market=MARKET.model_copy(update={"spy_trend": "down"}))
    assert decision_key(remembered).digest != decision_key(INPUTS).digest
    assert decision_key(market).digest != decision_key(INPUTS).digest


def test_no_earlier_decision_means_asking() -> None:
    assert why_ask(None, decision_key(INPUTS), Decimal("101"), threshold_pct=1.0) == "no decision earlier this session"


def test_the_sizing_key_follows_the_account_in_shares_of_equity() -> None:
    key = decision_key(INPUTS)
    base = sizing_key(key, equity=650.0, cash=400.0, gross_pct=0.38, max_position_pct=0.25, default_stop_pct=0.05)
    assert sizing_key(key, equity=652.0, cash=401.0, gross_pct=0.381, max_position_pct=0.25,
                      default_stop_pct=0.05) == base
    assert sizing_key(key, equity=650.0, cash=250.0, gross_pct=0.61, max_position_pct=0.25,
                      default_stop_pct=0.05) != base
    other = decision_key(replace(INPUTS, last_fill="x"))
    assert sizing_key(other, equity=650.0, cash=400.0, gross_pct=0.38, max_position_pct=0.25,
                      default_stop_pct=0.05) != base


def test_a_sizing_is_kept_only_when_both_agents_answered() -> None:
    sized = RiskAssessment(symbol="AAPL", position_pct=0.1, stop_loss_pct=0.05, reasoning="ok")
    verdict = ValidatorVerdict(symbol="AAPL", approve=True, confidence_adjustment=0.0, reasoning="ok")
    kept = stored().with_sizing("s1", sized, verdict)
    assert kept.sizing_for("s1") == (sized, verdict) and kept.sizing_for("s2") is None
    assert stored().with_sizing("s1", sized, None).sizing_for("s1") is None


def test_the_book_round_trips_through_json_and_ends_with_its_session() -> None:
    sized = RiskAssessment(symbol="AAPL", position_pct=0.1, stop_loss_pct=0.05, take_profit_pct=0.1, reasoning="r")
    verdict = ValidatorVerdict(symbol="AAPL", approve=False, confidence_adjustment=-0.2, warnings=["w"], reasoning="v")
    book = ReuseBook(date(2016, 3, 14), {"AAPL": stored().with_sizing("s1", sized, verdict)})
    assert ReuseBook.from_dict(book.to_dict()) == book
    assert book.for_session(date(2016, 3, 14)) is book
    assert book.for_session(date(2016, 3, 15)).decisions == {}


def test_rounding_keeps_three_significant_digits_everywhere() -> None:
    assert rounded({"a": [0.010273661241931187, 1234.5678], "b": (True, None, "x", 3)}) == \
        {"a": [0.0103, 1230.0], "b": [True, None, "x", 3]}
    assert rounded(float("nan")) == "nan" and rounded(0.0) == 0.0
