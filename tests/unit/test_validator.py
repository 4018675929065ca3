"""Rule-based validator: memory warnings and vetoes with quoted evidence, trend and volatility rules."""

from __future__ import annotations

from typing import Any

import pytest

from domain.agents.schemas import MemoryEvidence, SignalProposal, SymbolFeatures
from domain.risk.config import RiskSettings, ValidatorSettings
from domain.validator import is_loser, validate_proposal

SETTINGS = ValidatorSettings()


def features(**overrides: Any) -> SymbolFeatures:
    """A calm uptrend: price above its 50-day average, up 4% in 20 days."""
    base: dict[str, Any] = {
        "symbol": "AAPL",
        "price": 200.0,
        "return_1d": 0.002,
        "return_5d": 0.01,
        "return_20d": 0.04,
        "return_60d": 0.08,
        "sma_20": 196.0,
        "sma_50": 190.0,
        "volatility_20d": 0.25,
        "atr_pct": 0.018,
        "avg_dollar_volume_20d": 5e9,
        "volume_ratio": 1.1,
    }
    base.update(overrides)
    return SymbolFeatures(**base)


def proposal(action: str = "BUY", confidence: float = 0.8) -> SignalProposal:
    return SignalProposal(symbol="AAPL", action=action, confidence=confidence, reasoning="breakout")  # type: ignore[arg-type]


def trade(text: str, distance: float, outcome: str | None, ret: float | None) -> MemoryEvidence:
    return MemoryEvidence(text=text, distance=distance, outcome=outcome, return_pct=ret)


WIN = ("BUY AAPL on a breakout above the 20-day high", "WIN", 0.06)
LOSS = ("BUY AAPL after earnings gap, faded", "LOSS", -0.05)


def memory(losses: int, wins: int, *, distance: float = 0.3) -> list[MemoryEvidence]:
    out = [trade(f"{LOSS[0]} #{i}", distance + i * 0.01, LOSS[1], LOSS[2]) for i in range(losses)]
    return out + [trade(f"{WIN[0]} #{i}", distance + 0.05 + i * 0.01, WIN[1], WIN[2]) for i in range(wins)]


def test_clean_entry_is_approved_unchanged() -> None:
    r = validate_proposal(proposal(), features(), memory(1, 3), SETTINGS)
    assert r.approved and r.rejected_reason is None
    assert r.confidence == 0.8
    assert r.warnings == ()
    assert r.loser_share == 0.25
    assert len(r.evidence) == 4


def test_loser_share_at_warn_threshold_warns_quotes_evidence_and_lowers_confidence() -> None:
    r = validate_proposal(proposal(), features(), memory(2, 2), SETTINGS)
    assert r.approved
    assert r.loser_share == 0.5
    # 0.8 * (1 - 0.5 * 0.5) = 0.6
    assert r.confidence == pytest.approx(0.6)
    [warning] = r.warnings
    assert "2 of 4 similar past trades" in warning
    assert "(50%)" in warning
    assert '"BUY AAPL after earnings gap, faded #0"' in warning  # the closest one
    assert "-5.0%" in warning
    assert "distance 0.30" in warning


def test_loser_share_at_reject_threshold_rejects_with_evidence() -> None:
    # 7 of 10 lost = 70% = reject_loser_share
    r = validate_proposal(proposal(), features(), memory(7, 3), SETTINGS)
    assert not r.approved
    assert r.loser_share == pytest.approx(0.7)
    assert r.rejected_reason is not None
    assert "7 of 10 similar past trades" in r.rejected_reason and "-5.0%" in r.rejected_reason
    assert r.confidence == pytest.approx(0.8 * (1 - 0.5 * 0.7))


def test_just_below_reject_threshold_only_warns() -> None:
    r = validate_proposal(proposal(), features(), memory(6, 4), SETTINGS)  # 60%
    assert r.approved and len(r.warnings) == 1


def test_reject_threshold_is_configurable() -> None:
    lenient = ValidatorSettings(reject_loser_share=0.9)
    assert validate_proposal(proposal(), features(), memory(7, 3), lenient).approved
    assert not validate_proposal(proposal(), features(), memory(9, 1), lenient).approved


def test_too_few_similar_trades_do_not_count() -> None:
    r = validate_proposal(proposal(), features(), memory(2, 0), SETTINGS)
    assert r.approved and r.warnings == () and r.loser_share is None and r.confidence == 0.8


def test_distant_and_unknown_outcome_trades_are_ignored() -> None:
    far = memory(5, 0, distance=0.61)
    unknown = [trade("BUY AAPL, still open", 0.1, None, None) for _ in range(5)]
    r = validate_proposal(proposal(), features(), [*far, *unknown, *memory(0, 1)], SETTINGS)
    assert r.approved and r.loser_share is None
    assert len(r.evidence) == 1


def test_return_sign_decides_when_the_outcome_label_is_missing() -> None:
    assert is_loser(trade("x", 0.1, None, -0.01)) is True
    assert is_loser(trade("x", 0.1, None, 0.0)) is False
    assert is_loser(trade("x", 0.1, "loss", None)) is True
    assert is_loser(trade("x", 0.1, None, None)) is None


def test_exits_and_holds_are_not_judged() -> None:
    bad_memory = memory(10, 0)
    knife = features(price=150.0, return_20d=-0.2, held_qty=1.0)
    for p in (proposal("SELL"), proposal("HOLD")):
        r = validate_proposal(p, knife, bad_memory, SETTINGS)
        assert r.approved and r.warnings == () and r.confidence == 0.8 and r.loser_share is None


def test_falling_knife_warns() -> None:
    r = validate_proposal(proposal(), features(price=170.0, sma_50=190.0, return_20d=-0.12), [], SETTINGS)
    assert r.approved and r.confidence == 0.8
    [warning] = r.warnings
    assert warning.startswith("falling knife")
    assert "170.00" in warning and "190.00" in warning and "-12.0%" in warning


def test_price_below_average_but_rising_is_not_a_falling_knife() -> None:
    assert validate_proposal(proposal(), features(price=185.0, return_20d=0.01), [], SETTINGS).warnings == ()


def test_high_volatility_warns() -> None:
    r = validate_proposal(proposal(), features(volatility_20d=1.5), [], SETTINGS)
    assert r.warnings == ("high volatility: AAPL 20-day annualised volatility 150% is above 120%",)


def test_short_entry_into_strength_warns() -> None:
    r = validate_proposal(proposal("SELL"), features(), [], SETTINGS)
    assert len(r.warnings) == 1 and r.warnings[0].startswith("shorting strength")


def test_non_finite_features_are_flagged_not_ignored() -> None:
    r = validate_proposal(proposal(), features(sma_50=float("nan")), [], SETTINGS)
    assert len(r.warnings) == 1 and "sma_50" in r.warnings[0]


def test_memory_warning_comes_before_rule_warnings() -> None:
    r = validate_proposal(proposal(), features(volatility_20d=2.0), memory(3, 2), SETTINGS)
    assert [w.split(":")[0] for w in r.warnings] == ["memory", "high volatility"]


def test_settings_are_part_of_risk_settings_and_validated() -> None:
    assert RiskSettings().validator == ValidatorSettings()
    with pytest.raises(ValueError, match="warn_loser_share"):
        ValidatorSettings(warn_loser_share=0.8, reject_loser_share=0.7)
