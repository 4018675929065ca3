"""The hand-made traps: four kinds, anonymised, and every one loses if bought."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from application.cycle.decide import trending
from application.evals import traps
from application.evals.traps import AFTER, Leg, trap_count, trap_rows
from domain.evals.rows import TrapRow
from domain.risk.config import RiskSettings

ROWS = trap_rows(RiskSettings(), 20)


def test_there_are_20_to_30_traps_of_the_four_kinds() -> None:
    assert 20 <= len(ROWS) == trap_count() <= 30
    assert Counter(r.kind for r in ROWS) == {"gap_down_on_news": 6, "falling_knife": 6, "illiquid_name": 6,
                                             "earnings_like_gap": 6}
    assert len({r.id for r in ROWS}) == len(ROWS)
    assert all(r.expected_action == "HOLD" and r.description for r in ROWS)


def test_no_trap_makes_money_for_a_buyer_with_the_agents_own_barriers() -> None:
    assert all(r.outcome.realised_return <= 0 and r.outcome.label != 1 for r in ROWS)


def test_traps_look_like_anonymised_scenarios() -> None:
    for r in ROWS:
        f = r.context.symbols[0]
        assert r.context.as_of == "day 0" and "day 0" in r.context.market.text
        assert f.price == 100.0 and f.symbol.startswith("ASSET_9")


def test_the_traps_tell_their_stories() -> None:
    by_kind = {k: [r.context.symbols[0] for r in ROWS if r.kind == k] for k in
               ("gap_down_on_news", "falling_knife", "illiquid_name", "earnings_like_gap")}
    assert all(f.return_1d < -0.04 and f.volume_ratio > 3 for f in by_kind["gap_down_on_news"])
    assert all(f.return_20d < -0.15 and f.return_1d > 0 and f.price < f.sma_50 for f in by_kind["falling_knife"])
    floor = float(RiskSettings().min_avg_dollar_volume)
    assert all(f.avg_dollar_volume_20d < floor / 5 for f in by_kind["illiquid_name"])
    assert all(f.return_1d > 0.09 and f.volume_ratio > 4 for f in by_kind["earnings_like_gap"])


def test_many_traps_pass_the_cycles_cheap_screen_so_they_reach_the_agent() -> None:
    assert sum(trending(r.context.symbols[0]) for r in ROWS) >= 10


def test_trap_rows_are_the_same_every_time_and_read_back() -> None:
    again = trap_rows(RiskSettings(), 20)
    assert again == ROWS
    assert TrapRow.model_validate_json(ROWS[3].model_dump_json()) == ROWS[3]
    with pytest.raises(ValueError, match="time limit"):
        trap_rows(RiskSettings(), 41)


def test_what_a_trap_shows_comes_only_from_its_bars_up_to_the_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rewrite every story after its snapshot as a steady rally: the contexts stay the same, the outcomes win."""
    rally = (Leg(AFTER, 0.02, 0.004),)
    monkeypatch.setattr(traps, "KINDS", {k: (lambda v, make=make: replace(make(v), after=rally))
                                         for k, make in traps.KINDS.items()})
    rallied = trap_rows(RiskSettings(), 20)
    assert [r.context for r in rallied] == [r.context for r in ROWS]
    assert all(r.outcome.win for r in rallied)


def test_the_trap_file_is_what_trap_rows_makes() -> None:
    committed = (Path(__file__).resolve().parents[2] / "evals" / "datasets" / "traps.jsonl").read_text()
    assert [TrapRow.model_validate_json(line) for line in committed.splitlines()] == ROWS
