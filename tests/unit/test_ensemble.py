"""Ensemble: weighted merge, hard filters, agreement, divergence, de-duplication and deterministic ranking."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.discovery.config import EnsembleWeights
from domain.discovery.ensemble import EnsembleCombiner, EnsembleResult
from domain.discovery.picker import PickerResult

WEIGHTS = EnsembleWeights(metric=0.25, fuzzy=0.25, llm=0.5)


def r(picker: str, symbol: str, score: float, passed: bool = True, *reasons: str) -> PickerResult:
    return PickerResult(picker, symbol, score, passed, reasons or (f"{picker} says {score}",))


def combine(*results: PickerResult, threshold: float = 0.5) -> dict[str, EnsembleResult]:
    by_picker: dict[str, list[PickerResult]] = {}
    for result in results:
        by_picker.setdefault(result.picker, []).append(result)
    ranked = EnsembleCombiner(WEIGHTS, threshold).combine(by_picker)
    assert [e.rank for e in ranked] == list(range(1, len(ranked) + 1))
    return {e.symbol: e for e in ranked}


def test_score_is_the_weighted_mean_renormalised_over_the_pickers_that_returned_the_symbol() -> None:
    got = combine(
        r("metric", "ALL", 0.5), r("fuzzy", "ALL", 0.75), r("llm", "ALL", 1.0),
        r("metric", "TWO", 0.5), r("fuzzy", "TWO", 1.0),
        r("llm", "ONE", 0.625),
    )  # fmt: skip
    assert got["ALL"].score == pytest.approx(0.25 * 0.5 + 0.25 * 0.75 + 0.5 * 1.0)
    assert got["TWO"].score == pytest.approx(0.75)  # weights 0.25 / 0.25 renormalised to halves
    assert got["ONE"].score == pytest.approx(0.625)
    assert got["ALL"].components == {"metric": 0.5, "fuzzy": 0.75, "llm": 1.0}
    assert got["ONE"].components == {"llm": 0.625}


def test_zero_weight_pickers_count_for_agreement_but_not_for_the_score() -> None:
    ranked = EnsembleCombiner(EnsembleWeights(metric=1, fuzzy=0, llm=0), 0.9).combine(
        {"fuzzy": [r("fuzzy", "A", 0.8)], "metric": [r("metric", "B", 0.6)]}
    )
    got = {e.symbol: e for e in ranked}
    assert got["A"].score == 0.0 and got["A"].agreed == ("fuzzy",)
    assert got["B"].score == 0.6


def test_a_metric_hard_rejection_scores_zero_but_is_reported_and_flagged_when_another_picker_picks_it() -> None:
    got = combine(
        r("metric", "CHEAP", 0.0, False, "price $4.10 < $5.00"),
        r("fuzzy", "CHEAP", 0.4),
        r("llm", "CHEAP", 0.9, True, "strong setup"),
        r("metric", "OK", 0.6),
    )
    cheap = got["CHEAP"]
    assert cheap.score == 0.0 and cheap.rank == 2
    assert cheap.agreed == ("llm",) and cheap.dissent == ("metric", "fuzzy")
    assert cheap.divergent
    assert cheap.divergence_reason == "metric rejects (price $4.10 < $5.00) but llm picks (0.90)"
    assert cheap.reasons == (
        "metric rejects (price $4.10 < $5.00) but llm picks (0.90)",
        "rejected by the metric picker's hard filter → ensemble score 0",
        "metric: price $4.10 < $5.00",
        "fuzzy: fuzzy says 0.4",
        "llm: strong setup",
    )


def test_a_hard_rejection_nobody_else_likes_is_not_divergent() -> None:
    got = combine(r("metric", "X", 0.0, False, "unknown spread"), r("fuzzy", "X", 0.3))
    assert got["X"].score == 0.0
    assert not got["X"].divergent and got["X"].divergence_reason is None
    assert got["X"].reasons[0] == "rejected by the metric picker's hard filter → ensemble score 0"


def test_a_wide_spread_of_picker_scores_is_divergent_at_the_threshold() -> None:
    got = combine(
        r("metric", "WIDE", 0.875), r("llm", "WIDE", 0.375),  # spread 0.5: at the threshold
        r("metric", "NARROW", 0.875), r("llm", "NARROW", 0.5),
        r("llm", "ALONE", 1.0),
    )  # fmt: skip
    assert got["WIDE"].divergent
    assert got["WIDE"].divergence_reason == "picker scores spread 0.50 >= 0.50 (metric 0.88, llm 0.38)"
    assert got["WIDE"].agreed == ("metric",) and got["WIDE"].dissent == ("llm",)
    assert not got["NARROW"].divergent and got["NARROW"].agreed == ("metric", "llm")
    assert not got["ALONE"].divergent


def test_duplicates_keep_the_highest_score_then_a_passing_result() -> None:
    got = combine(
        r("llm", "A", 0.25, True, "first"),
        r("llm", "A", 0.75, True, "second"),
        r("llm", "A", 0.5, True, "third"),
        r("metric", "B", 0.0, False, "rejected"),
        r("metric", "B", 0.0, True, "passed"),
    )
    assert got["A"].score == 0.75 and got["A"].reasons == ("llm: second",)
    assert got["B"].reasons == ("metric: passed",)


def test_ties_break_by_agreeing_pickers_then_symbol() -> None:
    results = [
        r("fuzzy", "ZED", 0.5), r("llm", "ZED", 0.5),  # 0.5, two agree
        r("fuzzy", "ABC", 0.5), r("llm", "ABC", 0.5),  # 0.5, two agree
        r("fuzzy", "MID", 0.5),  # 0.5, one agrees
        r("fuzzy", "LOW", 0.375), r("llm", "LOW", 0.375),
        r("llm", "TOP", 0.75),
    ]  # fmt: skip
    ranked = list(combine(*results).values())
    assert [e.symbol for e in ranked] == ["TOP", "ABC", "ZED", "MID", "LOW"]
    for seed in range(5):
        shuffled = results[:]
        random.Random(seed).shuffle(shuffled)
        assert [(e.symbol, e.score, e.rank) for e in combine(*shuffled).values()] == [
            (e.symbol, e.score, e.rank) for e in ranked
        ]


def test_empty_input_and_unknown_or_mislabelled_pickers() -> None:
    combiner = EnsembleCombiner(WEIGHTS, 0.5)
    assert combiner.combine({}) == []
    assert combiner.combine({"metric": []}) == []
    with pytest.raises(ValueError, match="unknown pickers"):
        combiner.combine({"magic": [r("magic", "A", 0.5)]})
    with pytest.raises(ValueError, match="listed under"):
        combiner.combine({"metric": [r("llm", "A", 0.5)]})
    with pytest.raises(ValueError, match="divergence_threshold"):
        EnsembleCombiner(WEIGHTS, 1.5)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["metric", "fuzzy", "llm"]),
            st.sampled_from(["A", "B", "C", "D", "E"]),
            st.floats(0, 1),
            st.booleans(),
        ),
        max_size=25,
    )
)
def test_ranking_is_sorted_by_score_then_agreement_then_symbol_and_hard_rejections_score_zero(
    rows: list[tuple[str, str, float, bool]],
) -> None:
    results = [r(picker, symbol, score, passed) for picker, symbol, score, passed in rows]
    ranked = list(combine(*results).values())
    assert {e.symbol for e in ranked} == {symbol for _, symbol, _, _ in rows}
    keys = [(-e.score, -len(e.agreed), e.symbol) for e in ranked]
    assert keys == sorted(keys)
    for e in ranked:
        assert 0.0 <= e.score <= 1.0
        assert set(e.agreed).isdisjoint(e.dissent) and set(e.agreed) | set(e.dissent) == set(e.components)
        metric = [x for x in results if x.picker == "metric" and x.symbol == e.symbol]
        if metric and not max(metric, key=lambda x: (x.score, x.passed)).passed:
            assert e.score == 0.0
