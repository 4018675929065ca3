"""Fuzzy picker: each component on hand-computable data, the weighting, and the memory adjustment."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from domain.agents.schemas import MemoryEvidence
from domain.discovery.config import FuzzyWeights
from domain.discovery.fuzzy_picker import FuzzyPicker, memory_verdict
from domain.discovery.picker import PickerContext, PickerResult, SymbolPicker, UniverseSnapshot

NAN = math.nan
ONLY = {"liquidity": 0.0, "volatility": 0.0, "momentum": 0.0, "sector_balance": 0.0}


def weights(**w: float) -> FuzzyWeights:
    return FuzzyWeights(**{**ONLY, **w})


def alternating(annual_vol: float, n_returns: int = 4, start: float = 100.0) -> np.ndarray:
    """Closes whose returns alternate +x, -x: sample stdev x * sqrt(n / (n - 1)), so annualised vol is exact."""
    x = annual_vol / math.sqrt(n_returns / (n_returns - 1) * 252)
    returns = np.array([x if i % 2 == 0 else -x for i in range(n_returns)])
    return start * np.cumprod(np.concatenate(([1.0], 1.0 + returns)))


def universe(
    closes: dict[str, np.ndarray],
    volumes: dict[str, float] | None = None,
    sectors: dict[str, str | None] | None = None,
) -> UniverseSnapshot:
    symbols = tuple(closes)
    close = np.array([closes[s] for s in symbols], dtype=float)
    volume = np.array([np.full(close.shape[1], (volumes or {}).get(s, 1000.0)) for s in symbols])
    return UniverseSnapshot(
        as_of=date(2024, 5, 31),
        symbols=symbols,
        close=close,
        volume=volume,
        spread_pct=np.full(len(symbols), 0.001),
        sectors=tuple((sectors or {}).get(s, "Utilities") for s in symbols),
        market_caps=np.full(len(symbols), 5e9),
        benchmark_close=np.linspace(400, 410, close.shape[1]),
    )


def picker(w: FuzzyWeights) -> FuzzyPicker:
    return FuzzyPicker(w, volume_window=2, volatility_window=4, momentum_windows=(2, 4))


def pick(w: FuzzyWeights, u: UniverseSnapshot, context: PickerContext | None = None) -> dict[str, PickerResult]:
    results = picker(w).pick(u, context or PickerContext())
    assert [r.symbol for r in results] == list(u.symbols)
    assert all(r.passed and r.picker == "fuzzy" for r in results)
    return {r.symbol: r for r in results}


FLAT = np.full(5, 20.0)


def test_liquidity_is_the_percentile_of_average_dollar_volume() -> None:
    u = universe({"A": FLAT, "B": FLAT, "C": FLAT}, volumes={"A": 10.0, "B": 1000.0, "C": 100.0})
    got = pick(weights(liquidity=1), u)
    assert [got[s].score for s in "ABC"] == [0.0, 1.0, 0.5]
    assert got["B"].reasons[0] == "liquidity 1.00 (avg dollar volume $20.0K)"
    assert got["C"].details["avg_dollar_volume"] == 2000.0


def test_volatility_prefers_a_moderate_level_over_quiet_and_wild() -> None:
    vols = {"QUIET": 0.05, "LOWISH": 0.20, "IDEAL": 0.30, "LIVELY": 0.50, "WILD": 0.90}
    got = pick(weights(volatility=1), universe({s: alternating(v) for s, v in vols.items()}))
    scores = {s: got[s].score for s in vols}
    assert scores == pytest.approx({"QUIET": 0.0, "LOWISH": 0.5, "IDEAL": 1.0, "LIVELY": 0.5, "WILD": 0.0})
    assert got["IDEAL"].details["annualised_volatility"] == pytest.approx(0.30)
    assert got["LIVELY"].reasons[1] == "volatility 0.50 (annualised 50%, ideal 30%)"


def test_momentum_averages_the_short_and_long_return_percentiles() -> None:
    closes = {
        "UP": np.array([100.0, 100, 110, 110, 121]),  # 2d +10%, 4d +21%
        "DOWN": np.array([100.0, 100, 100, 100, 90]),  # 2d -10%, 4d -10%
        "MIXED": np.array([100.0, 130, 130, 150, 150]),  # 2d +15.4%, 4d +50%
    }
    got = pick(weights(momentum=1), universe(closes))
    # short ranks: DOWN 0, UP 0.5, MIXED 1; long ranks: DOWN 0, UP 0.5, MIXED 1
    assert [got[s].score for s in ("UP", "DOWN", "MIXED")] == [0.5, 0.0, 1.0]
    assert got["UP"].reasons[2] == "momentum 0.50 (2d +10.0%, 4d +21.0%)"
    skip = FuzzyPicker(weights(momentum=1), momentum_windows=(1, 3), skip_last_day=True).pick(
        universe(closes), PickerContext()
    )
    # without the last day: 1d UP 0%, DOWN 0%, MIXED +15.4%; 3d UP +10%, DOWN 0%, MIXED +50%
    assert [r.score for r in skip] == pytest.approx([(0.25 + 0.5) / 2, (0.25 + 0.0) / 2, 1.0])


def test_sector_balance_favours_sectors_not_yet_held_or_watched() -> None:
    u = universe(
        {"NEW": FLAT, "HELD": FLAT, "HEAVY": FLAT, "UNKNOWN": FLAT},
        sectors={"NEW": "Utilities", "HELD": "Energy", "HEAVY": "Financials", "UNKNOWN": None},
    )
    context = PickerContext(held_sectors={"Energy": 0.1, "Financials": 0.45}, watchlist_sectors={"Energy": 1})
    got = pick(weights(sector_balance=1), u, context)
    # Energy: max(10% of the portfolio, 100% of the watchlist) -> exposure 1 -> 0
    assert [got[s].score for s in ("NEW", "HELD", "HEAVY", "UNKNOWN")] == [1.0, 0.0, 0.0, 0.5]
    assert got["NEW"].reasons[3] == "sector balance 1.00 (Utilities not in portfolio or watchlist)"
    assert got["HEAVY"].reasons[3] == "sector balance 0.00 (Financials at 45% of portfolio or watchlist)"
    assert got["UNKNOWN"].reasons[3] == "sector balance 0.50 (sector unknown)"


def test_components_are_combined_by_their_weights() -> None:
    u = universe(
        {"A": alternating(0.20), "B": alternating(0.30, start=50)},
        volumes={"A": 10.0, "B": 1000.0},
        sectors={"A": "Energy", "B": "Utilities"},
    )
    context = PickerContext(held_sectors={"Energy": 0.2})
    w = FuzzyWeights(liquidity=1, volatility=2, momentum=3, sector_balance=4, memory_adjustment=0.1)
    got = pick(w, u, context)
    # +x, -x, ... loses -x^2 every two days, so the calmer A has the better 2d and 4d returns
    # A: liquidity 0, volatility 0.5, momentum 1, sector 1 - 0.2 / 0.4 = 0.5
    assert got["A"].score == pytest.approx((0 + 2 * 0.5 + 3 * 1 + 4 * 0.5) / 10)
    # B: liquidity 1, volatility 1, momentum 0, sector 1
    assert got["B"].score == pytest.approx((1 + 2 * 1 + 3 * 0 + 4 * 1) / 10)
    assert got["B"].details["momentum"] == 0.0 and got["A"].details["sector_balance"] == 0.5


def test_missing_data_scores_zero_with_a_reason() -> None:
    u = universe({"GHOST": np.full(5, NAN), "OK": alternating(0.3)})
    got = pick(FuzzyWeights(), u)
    ghost = got["GHOST"]
    assert ghost.details["liquidity"] == 0.0 and ghost.details["volatility"] == 0.0 and ghost.details["momentum"] == 0
    assert ghost.reasons[:3] == (
        "liquidity 0.00 (avg dollar volume n/a)",
        "volatility 0.00 (not enough history)",
        "momentum 0.00 (2d n/a, 4d n/a)",
    )


def trade(outcome: str | None, distance: float, ret: float | None = None, text: str = "past trade") -> MemoryEvidence:
    return MemoryEvidence(text=text, distance=distance, outcome=outcome, return_pct=ret)


def test_memory_lowers_the_score_when_similar_trades_mostly_lost() -> None:
    evidence = [
        trade("LOSS", 0.30, -0.02),
        trade("LOSS", 0.12, -0.061, "AAPL breakout long, stopped out below the 20-day high"),
        trade("WIN", 0.20, 0.03),
        trade("LOSS", 0.25, -0.04),
        trade("LOSS", 0.40, -0.01),
    ]
    u = universe({"AAPL": alternating(0.3), "MSFT": alternating(0.3)})
    plain = pick(FuzzyWeights(), u)
    got = pick(FuzzyWeights(), u, PickerContext(similar_trades={"AAPL": evidence}))
    # win share 1/5: 0.15 * (0.2 - 0.5) * 2 * min(1, 5 / 5) = -0.09
    assert got["AAPL"].details["memory_adjustment"] == pytest.approx(-0.09)
    assert got["AAPL"].score == pytest.approx(plain["AAPL"].score - 0.09)
    assert got["AAPL"].reasons[-1] == (
        "memory: 4 of 5 similar past trades lost (closest: 'AAPL breakout long, stopped out below the 20-day high', "
        "-6.1%) → -0.09"
    )
    assert got["MSFT"].score == plain["MSFT"].score
    assert len(got["MSFT"].reasons) == 4


def test_memory_adjustment_is_scaled_by_the_evidence_count_and_flats_count_half() -> None:
    two_wins = memory_verdict([trade("WIN", 0.1, 0.05), trade("win", 0.2)], max_adjustment=0.15)
    assert two_wins is not None
    assert two_wins.adjustment == pytest.approx(0.15 * 1.0 * 2 / 5)  # +0.06
    assert two_wins.reason() == "memory: 2 of 2 similar past trades won (closest: 'past trade', +5.0%) → +0.06"
    mixed = memory_verdict(
        [trade("WIN", 0.1), trade("FLAT", 0.2), trade("LOSS", 0.3), trade("LOSS", 0.4), trade(None, 0.05)], 0.15
    )
    assert mixed is not None
    # known 4 (the None is not): win share (1 + 0.5) / 4 = 0.375 -> 0.15 * -0.25 * 0.8 = -0.03
    assert mixed.adjustment == pytest.approx(-0.03)
    assert mixed.reason() == "memory: 1 won, 2 lost, 1 flat of 4 similar past trades (closest: 'past trade') → -0.03"
    assert memory_verdict([], 0.15) is None
    assert memory_verdict([trade(None, 0.1), trade("PENDING", 0.2)], 0.15) is None


def test_similar_trades_without_known_outcomes_do_not_move_the_score() -> None:
    u = universe({"AAPL": alternating(0.3)})
    plain = pick(FuzzyWeights(), u)["AAPL"]
    got = pick(FuzzyWeights(), u, PickerContext(similar_trades={"AAPL": [trade(None, 0.1)], "ZZZ": [trade("WIN", 0)]}))
    assert got["AAPL"].score == plain.score
    assert got["AAPL"].reasons[-1] == "memory: 1 similar past trades, none with a known outcome yet"


def test_the_final_score_is_clipped_to_0_1() -> None:
    u = universe({"TOP": FLAT, "BOTTOM": FLAT}, volumes={"TOP": 1000.0, "BOTTOM": 1.0})
    wins = [trade("WIN", 0.1 * i) for i in range(5)]
    losses = [trade("LOSS", 0.1 * i) for i in range(5)]
    w = FuzzyWeights(liquidity=1, volatility=0, momentum=0, sector_balance=0, memory_adjustment=0.5)
    got = pick(w, u, PickerContext(similar_trades={"TOP": wins, "BOTTOM": losses}))
    assert got["TOP"].score == 1.0 and got["TOP"].details["memory_adjustment"] == pytest.approx(0.5)
    assert got["BOTTOM"].score == 0.0 and got["BOTTOM"].details["memory_adjustment"] == pytest.approx(-0.5)


def test_volatility_band_must_increase() -> None:
    with pytest.raises(ValueError, match="volatility_band"):
        FuzzyPicker(FuzzyWeights(), volatility_band=(0.3, 0.2, 0.7))


def test_is_a_symbol_picker() -> None:
    assert isinstance(FuzzyPicker(FuzzyWeights()), SymbolPicker)
