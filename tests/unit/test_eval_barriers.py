"""Triple-barrier labels on hand-made bar series, and the reference barriers against the offline policy."""

from __future__ import annotations

import math

import pytest

from adapters.llm.offline_policy import _risk, signal_for
from domain.agents.schemas import MarketConditions, RiskCandidate, RiskContext, SymbolFeatures
from domain.evals.barriers import Barriers, ForwardPath, excursions, triple_barrier
from domain.evals.reference import (
    reference_barriers,
    reference_confidence,
    reference_position_pct,
    reference_stop_pct,
)
from domain.risk.config import RiskSettings

B = Barriers(stop_pct=0.05, take_profit_pct=0.10, max_sessions=5)


def path(*bars: tuple[float, float, float, float]) -> ForwardPath:
    o, h, lo, c = zip(*bars, strict=True)
    return ForwardPath.of(o, h, lo, c)


def test_the_stop_touched_first_loses_the_stop_distance() -> None:
    p = path((100, 101, 99, 100), (100, 102, 94.9, 96), (96, 120, 95, 118), (118, 119, 117, 118),
             (118, 119, 117, 118))
    out = triple_barrier(p, B)
    assert (out.label, out.barrier, out.exit_session) == (-1, "stop", 2)
    assert out.exit_price == pytest.approx(95.0)
    assert out.realised_return == pytest.approx(-0.05)
    assert not out.win


def test_the_take_profit_touched_first_gains_the_take_profit_distance() -> None:
    p = path((100, 103, 99, 102), (102, 110.5, 101, 109), (109, 109, 80, 81), (81, 82, 80, 81), (81, 82, 80, 81))
    out = triple_barrier(p, B)
    assert (out.label, out.barrier, out.exit_session) == (1, "take_profit", 2)
    assert out.realised_return == pytest.approx(0.10)
    assert out.win


def test_the_time_limit_closes_at_the_last_close_with_label_zero_and_its_return() -> None:
    p = path((100, 102, 98, 101), (101, 103, 99, 102), (102, 104, 100, 103), (103, 104, 101, 103),
             (103, 104, 101, 103.5), (103.5, 200, 1, 50))
    out = triple_barrier(p, B)
    assert (out.label, out.barrier, out.exit_session) == (0, "time", 5)
    assert out.realised_return == pytest.approx(0.035)


def test_a_gap_through_the_stop_fills_at_the_open_and_loses_more_than_the_stop() -> None:
    p = path((100, 101, 99, 100), (88, 90, 87, 89), (89, 90, 88, 89), (89, 90, 88, 89), (89, 90, 88, 89))
    out = triple_barrier(p, B)
    assert (out.label, out.barrier, out.exit_session) == (-1, "stop", 2)
    assert out.exit_price == 88
    assert out.realised_return == pytest.approx(-0.12)


def test_a_gap_over_the_take_profit_fills_at_the_open() -> None:
    p = path((100, 101, 99, 100), (115, 116, 114, 115), (115, 116, 114, 115), (115, 116, 114, 115),
             (115, 116, 114, 115))
    out = triple_barrier(p, B)
    assert (out.label, out.realised_return) == (1, pytest.approx(0.15))


def test_a_session_touching_both_barriers_counts_as_the_stop() -> None:
    p = path((100, 111, 94, 100), (100, 101, 99, 100), (100, 101, 99, 100), (100, 101, 99, 100),
             (100, 101, 99, 100))
    out = triple_barrier(p, B)
    assert (out.barrier, out.exit_session) == ("stop", 1)


def test_the_entry_session_can_hit_a_barrier_and_no_take_profit_means_only_stop_or_time() -> None:
    p = path((100, 150, 99, 140), (140, 141, 139, 140))
    out = triple_barrier(p, Barriers(0.05, None, 2))
    assert (out.label, out.barrier, out.realised_return) == (0, "time", pytest.approx(0.40))


def test_a_path_shorter_than_the_time_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="need 5 sessions"):
        triple_barrier(path((100, 101, 99, 100)), B)


@pytest.mark.parametrize(("stop", "tp", "n"), [(0.0, 0.1, 5), (1.0, 0.1, 5), (0.05, -0.1, 5), (0.05, 0.1, 0),
                                               (math.nan, 0.1, 5)])
def test_bad_barriers_are_refused(stop: float, tp: float, n: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        Barriers(stop, tp, n)


def test_excursions_are_the_lowest_low_and_highest_high_over_the_horizon() -> None:
    p = path((100, 104, 97, 100), (100, 106, 95, 100), (100, 200, 1, 100))
    assert excursions(p, 2) == (pytest.approx(-0.05), pytest.approx(0.06))


def _features(atr: float, vol: float, r20: float = 0.06, volume_ratio: float = 1.0) -> SymbolFeatures:
    return SymbolFeatures(symbol="X", price=100, return_1d=0.0, return_5d=0.01, return_20d=r20, return_60d=0.1,
                          sma_20=98, sma_50=92, volatility_20d=vol, atr_pct=atr, avg_dollar_volume_20d=1e8,
                          volume_ratio=volume_ratio)


@pytest.mark.parametrize("atr", [0.0, 0.003, 0.01, 0.02, 0.035, 0.05, 0.2])
@pytest.mark.parametrize("vol", [0.1, 0.3, 0.8])
def test_reference_stop_take_profit_and_size_are_the_offline_policys(atr: float, vol: float) -> None:
    risk = RiskSettings()
    ctx = RiskContext(as_of="day 0", equity=650, cash=650, gross_exposure_pct=0, max_position_pct=risk.max_position_pct,
                      default_stop_pct=risk.default_stop_pct,
                      candidates=(RiskCandidate(symbol="X", action="BUY", confidence=0.7, price=100,
                                                volatility_20d=vol, atr_pct=atr, held_qty=0),))
    offline = _risk(ctx).assessments[0]
    barriers = reference_barriers(atr, risk)
    clamped = min(risk.max_stop_pct, max(risk.min_stop_pct, offline.stop_loss_pct))
    assert barriers.stop_pct == pytest.approx(clamped) == reference_stop_pct(atr, risk)
    assert barriers.take_profit_pct == pytest.approx(offline.take_profit_pct)
    assert reference_position_pct(vol, 0.7, risk) == pytest.approx(offline.position_pct)
    assert barriers.max_sessions == 20


@pytest.mark.parametrize(("r20", "volume_ratio"), [(0.03, 1.0), (0.06, 1.5), (0.2, 2.0)])
def test_reference_confidence_is_the_offline_policys_entry_confidence(r20: float, volume_ratio: float) -> None:
    f = _features(0.02, 0.3, r20, volume_ratio)
    market = MarketConditions(vix=14, vix_is_proxy=False, spy_return_20d=0.02, spy_above_sma_50=True, spy_trend="up")
    proposal = signal_for(f, market)
    assert proposal.action == "BUY"
    assert reference_confidence(f) == pytest.approx(proposal.confidence)
