"""Discovery pickers when a kind of data is missing for the whole universe: the check is skipped with a stated
reason (instead of rejecting or flattening everything); missing for some symbols only, it still applies."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from domain.discovery.config import FuzzyWeights
from domain.discovery.fuzzy_picker import FuzzyEvaluation, FuzzyPicker
from domain.discovery.picker import PickerContext, UniverseSnapshot

N_DAYS = 8
WEIGHTS = FuzzyWeights(liquidity=0.5, volatility=0.0, momentum=0.0, sector_balance=0.5)


def universe(sectors: dict[str, str | None]) -> UniverseSnapshot:
    """One row per symbol; dollar volume grows with the row (first symbol least liquid)."""
    symbols = tuple(sectors)
    close = np.full((len(symbols), N_DAYS), 50.0)
    volume = np.array([np.full(N_DAYS, 1000.0 * (i + 1)) for i in range(len(symbols))])
    return UniverseSnapshot(date(2024, 5, 31), symbols, close, volume, np.full(len(symbols), 0.001),
                            tuple(sectors.values()), np.full(len(symbols), 5e9), np.linspace(400, 410, N_DAYS))


def evaluate(sectors: dict[str, str | None], context: PickerContext | None = None) -> FuzzyEvaluation:
    picker = FuzzyPicker(WEIGHTS, volume_window=2, volatility_window=4, momentum_windows=(2, 4))
    return picker.evaluate(universe(sectors), context or PickerContext())


def test_without_any_known_sector_sector_balance_is_left_out_of_the_score_with_a_reason() -> None:
    ev = evaluate({"A": None, "B": None, "C": None})
    reason = "sector balance skipped: no sector known for any of the 3 symbols"
    assert dict(ev.skipped) == {"sector_balance": reason}
    assert ev.score.tolist() == pytest.approx([0.0, 0.5, 1.0])  # liquidity alone, not pulled towards 0.5
    assert all(reason in r.reasons for r in ev.results())


def test_with_some_known_sectors_unknown_ones_score_the_neutral_half() -> None:
    context = PickerContext(held_sectors={"Energy": 0.4})
    ev = evaluate({"A": None, "B": "Energy", "C": "Utilities"}, context)
    assert dict(ev.skipped) == {}
    sector = dict(zip(ev.symbols, ev.sector_score.tolist(), strict=True))
    assert sector == {"A": 0.5, "B": 0.0, "C": 1.0}
    assert ev.score.tolist() == pytest.approx([(0.0 + 0.5) / 2, (0.5 + 0.0) / 2, (1.0 + 1.0) / 2])
    assert "sector balance 0.50 (sector unknown)" in ev.result("A").reasons  # type: ignore[union-attr]


def test_sector_balance_alone_is_not_skipped_even_without_sectors() -> None:
    only = FuzzyWeights(liquidity=0.0, volatility=0.0, momentum=0.0, sector_balance=1.0)
    ev = FuzzyPicker(only).evaluate(universe({"A": None, "B": None}), PickerContext())
    assert dict(ev.skipped) == {} and ev.score.tolist() == [0.5, 0.5]
