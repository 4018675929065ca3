"""Results built on demand from the score arrays equal the eager ones: pickers, ensemble (with a sparse LLM
picker), the watchlist's view of the ranking, and the shortlists; ranking, ties and divergence unchanged."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import pytest

from application.discovery.picking import llm_shortlist, recall_candidates
from application.discovery.watchlist import plan_discovery_update, watchlist_candidates
from domain.agents.schemas import MemoryEvidence
from domain.discovery.config import DiscoverySettings, EnsembleWeights, FuzzyWeights, MetricFilterSettings
from domain.discovery.ensemble import EnsembleCombiner
from domain.discovery.fuzzy_picker import FuzzyPicker
from domain.discovery.metric_picker import MetricPicker
from domain.discovery.picker import PickerContext, PickerResult, UniverseSnapshot
from domain.discovery.picker_scores import ListedScores
from domain.ports.discovery import WatchlistEntry

NAN = math.nan
N, DAYS = 240, 40
METRIC = MetricFilterSettings(beta_window_days=20, volume_window_days=5)
SECTORS = ("Energy", "Utilities", "Financials", "Health Care", None)
T0 = datetime(2024, 6, 3, 13, 30, tzinfo=UTC)


def random_universe(seed: int = 3) -> UniverseSnapshot:
    """Seeded universe with gaps, unknown spreads and caps, young symbols; rows deliberately not in symbol order."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0, 0.01, DAYS - 1)
    returns = rng.uniform(-0.5, 3.0, N)[:, None] * market + rng.normal(0.0, 0.02, (N, DAYS - 1))
    close = rng.lognormal(3.0, 1.0, N)[:, None] * np.cumprod(np.hstack((np.ones((N, 1)), 1.0 + returns)), axis=1)
    volume = rng.lognormal(13.5, 1.5, N)[:, None] * rng.lognormal(0.0, 0.3, (N, DAYS))
    close[rng.random((N, DAYS)) < 0.02] = NAN
    close[: N // 20, : DAYS // 2] = NAN
    volume[np.isnan(close)] = NAN
    spread = rng.lognormal(np.log(0.002), 0.8, N)
    spread[rng.random(N) < 0.05] = NAN
    caps = rng.lognormal(np.log(4e9), 1.2, N)
    caps[rng.random(N) < 0.05] = NAN
    symbols = tuple(f"T{i:03d}" for i in rng.permutation(N))
    sectors = tuple(SECTORS[i] for i in rng.integers(0, len(SECTORS), N))
    benchmark = 400.0 * np.cumprod(np.concatenate(([1.0], 1.0 + market)))
    return UniverseSnapshot(date(2024, 5, 31), symbols, close, volume, spread, sectors, caps, benchmark)


def context(u: UniverseSnapshot, seed: int = 4) -> PickerContext:
    rng = np.random.default_rng(seed)
    outcomes = ("WIN", "LOSS", "FLAT", None)
    similar = {
        u.symbols[i]: [MemoryEvidence(text=f"trade {k}", distance=float(rng.random()),
                                      outcome=outcomes[int(rng.integers(0, 4))], return_pct=0.01 * k)
                       for k in range(int(rng.integers(1, 4)))]
        for i in rng.choice(N, 40, replace=False).tolist()
    }  # fmt: skip
    return PickerContext({"Energy": 0.3}, {"Utilities": 2, "Energy": 1}, similar, DiscoverySettings())


def fuzzy_picker() -> FuzzyPicker:
    return FuzzyPicker(FuzzyWeights(), volume_window=5, volatility_window=20, momentum_windows=(5, 20))


def plain(r: PickerResult) -> tuple[object, ...]:
    """A result as a tuple with NaN details made comparable."""
    details = {k: "NaN" if v != v else v for k, v in r.details.items()}
    return r.picker, r.symbol, r.score, r.passed, r.reasons, details


ROWS = [17, 3, 200, 3, 0, 239, 118]


@pytest.mark.parametrize("which", ["metric", "fuzzy"])
def test_picker_results_built_for_some_rows_equal_the_eager_ones(which: str) -> None:
    u = random_universe()
    ctx = context(u)
    picker = MetricPicker(METRIC) if which == "metric" else fuzzy_picker()
    eager = picker.pick(u, ctx)
    scores = picker.evaluate(u, ctx)
    assert [r.score for r in eager] == scores.score.tolist() and [r.passed for r in eager] == scores.passed.tolist()
    assert [plain(r) for r in scores.results(ROWS)] == [plain(eager[i]) for i in ROWS]
    assert plain(scores.result(u.symbols[118]) or eager[0]) == plain(eager[118])
    assert scores.result("NOPE") is None and scores.results([]) == []
    if which == "metric":  # both kinds of rows are among those built
        assert {eager[i].passed for i in ROWS} == {True, False}
    else:  # and rows with a memory verdict or with only unknown outcomes
        memory = [i for i, r in enumerate(eager) if r.reasons[-1].startswith("memory: ")]
        assert any("none with a known outcome" in eager[i].reasons[-1] for i in memory)
        assert [plain(r) for r in scores.results(memory)] == [plain(eager[i]) for i in memory]


def test_best_rows_are_the_top_passing_scores_then_symbols_ties_included() -> None:
    u = random_universe()
    metric = MetricPicker(METRIC).evaluate(u)
    expected = sorted((r for r in MetricPicker(METRIC).pick(u, PickerContext()) if r.passed and r.score > 0),
                      key=lambda r: (-r.score, r.symbol))  # fmt: skip
    assert len(expected) > 8
    assert [u.symbols[i] for i in metric.best(8)] == [r.symbol for r in expected[:8]]
    assert metric.best(0).size == 0 and len(metric.best(10_000)) == len(expected)
    tied = ListedScores.from_results("llm", ("B", "A", "C", "D"), [
        PickerResult("llm", s, score, ok, ("x",)) for s, score, ok in
        (("B", 0.5, True), ("A", 0.5, True), ("C", 0.9, False), ("D", 0.5, True))
    ])  # fmt: skip
    assert [tied.symbols[i] for i in tied.best(2)] == ["A", "B"]


def sparse_llm(u: UniverseSnapshot) -> list[PickerResult]:
    """A few dozen picks, one of them repeated with a lower score (the higher one is kept)."""
    picks = [PickerResult("llm", u.symbols[i], (i % 9) / 8, True, (f"llm on row {i}",)) for i in range(0, N, 7)]
    return [*picks, PickerResult("llm", u.symbols[0], 0.0, True, ("a repeated, worse pick",))]


def test_ensemble_results_built_on_demand_equal_the_eager_ranking_with_a_sparse_llm_picker() -> None:
    u = random_universe()
    ctx = context(u)
    metric, fuzzy = MetricPicker(METRIC), fuzzy_picker()
    combiner = EnsembleCombiner(EnsembleWeights(), 0.4)
    eager = combiner.combine({"metric": metric.pick(u, ctx), "fuzzy": fuzzy.pick(u, ctx), "llm": sparse_llm(u)})
    ensemble = combiner.combine_scores({"metric": metric.evaluate(u, ctx), "fuzzy": fuzzy.evaluate(u, ctx),
                                        "llm": ListedScores.from_results("llm", u.symbols, sparse_llm(u))})  # fmt: skip
    assert ensemble.top(25) == eager[:25]
    assert ensemble.ranked() == eager
    asked = [eager[i].symbol for i in (40, 3, 199)]
    assert ensemble.results_for([*asked, "NOPE"]) == [eager[40], eager[3], eager[199]]
    assert ensemble.result(eager[77].symbol) == eager[77]
    assert [u.symbols[i] for i in ensemble.order] == [e.symbol for e in eager]
    assert ensemble.divergent[ensemble.order].tolist() == [e.divergent for e in eager]
    assert any(e.divergent for e in eager) and any(e.divergence_reason and "metric rejects" in e.divergence_reason
                                                   for e in eager)  # fmt: skip
    # the LLM counts where it answered: weights renormalised per symbol
    w = EnsembleWeights()
    row = next(i for i in range(7, N, 7) if ensemble.pickers[0].passed[i])
    one = ensemble.result(u.symbols[row])
    assert one is not None and set(one.components) == {"metric", "fuzzy", "llm"}
    c = one.components
    assert one.score == pytest.approx((w.metric * c["metric"] + w.fuzzy * c["fuzzy"] + w.llm * c["llm"])
                                      / (w.metric + w.fuzzy + w.llm))  # fmt: skip
    two = ensemble.result(u.symbols[row + 1])
    assert two is not None and set(two.components) == {"metric", "fuzzy"}


def test_only_symbols_some_picker_returned_are_ranked_and_ties_break_by_agreement_then_symbol() -> None:
    symbols = ("ZED", "MID", "ABC", "NONE", "TOP", "LOW")
    fuzzy = ListedScores.from_results("fuzzy", symbols, [
        PickerResult("fuzzy", s, score, True, ("f",)) for s, score in
        (("ZED", 0.5), ("ABC", 0.5), ("MID", 0.5), ("LOW", 0.375))
    ])  # fmt: skip
    llm = ListedScores.from_results("llm", symbols, [
        PickerResult("llm", s, score, True, ("l",)) for s, score in (("ZED", 0.5), ("ABC", 0.5), ("TOP", 0.75),
                                                                      ("LOW", 0.375))
    ])  # fmt: skip
    ensemble = EnsembleCombiner(EnsembleWeights(), 0.5).combine_scores({"llm": llm, "fuzzy": fuzzy})
    assert [e.symbol for e in ensemble.ranked()] == ["TOP", "ABC", "ZED", "MID", "LOW"]
    assert [e.rank for e in ensemble.top(3)] == [1, 2, 3] and len(ensemble) == 5
    assert ensemble.result("NONE") is None and ensemble.rank[symbols.index("NONE")] == 0


def test_combining_scores_of_different_universes_or_mislabelled_pickers_is_refused() -> None:
    u = random_universe()
    metric = MetricPicker(METRIC).evaluate(u)
    combiner = EnsembleCombiner(EnsembleWeights(), 0.5)
    other = ListedScores.from_results("llm", u.symbols[:10], [])
    with pytest.raises(ValueError, match="another universe"):
        combiner.combine_scores({"metric": metric, "llm": other})
    with pytest.raises(ValueError, match="listed under"):
        combiner.combine_scores({"fuzzy": metric})
    with pytest.raises(ValueError, match="not in the universe"):
        ListedScores.from_results("llm", u.symbols, [PickerResult("llm", "NOPE", 0.5, True, ())])
    assert combiner.combine_scores({}).ranked() == []


@pytest.mark.parametrize("seed", range(6))
def test_the_watchlist_plan_from_the_partial_ranking_equals_the_plan_from_the_full_one(seed: int) -> None:
    u = random_universe(seed)
    ctx = context(u, seed)
    ensemble = EnsembleCombiner(EnsembleWeights(), 0.5).combine_scores(
        {"metric": MetricPicker(METRIC).evaluate(u), "fuzzy": fuzzy_picker().evaluate(u, ctx)}
    )
    rng = np.random.default_rng(seed)
    ranked = ensemble.ranked()
    listed = [ranked[i].symbol for i in rng.choice(len(ranked), 6, replace=False)]
    current = [WatchlistEntry(s, "manual" if k == 0 else "discovered", "r", T0, 0.6) for k, s in enumerate(listed)]
    current.append(WatchlistEntry("GONE", "discovered", "r", T0, 0.7))  # no longer in the universe
    blocked = frozenset(ranked[i].symbol for i in range(0, 8, 3))
    settings = DiscoverySettings(top_n=3 + seed, max_watchlist_size=6 + seed, min_score=0.3 + 0.05 * seed)
    partial = watchlist_candidates(ensemble, current, blocked, settings.top_n)
    assert len(partial) < len(ranked)
    full_plan = plan_discovery_update(current, ranked, settings=settings, as_of=T0, blocked=blocked)
    assert plan_discovery_update(current, partial, settings=settings, as_of=T0, blocked=blocked) == full_plan
    assert full_plan.added


def test_recall_and_llm_shortlists_follow_the_fuzzy_score_then_the_symbol() -> None:
    u = random_universe()
    ctx = context(u)
    metric, fuzzy = MetricPicker(METRIC).evaluate(u), fuzzy_picker().evaluate(u, ctx)
    by_fuzzy = sorted(fuzzy.results(), key=lambda r: (-r.score, r.symbol))
    passed = {u.symbols[i] for i in np.flatnonzero(metric.passed)}
    top5 = {r.symbol for r in by_fuzzy[:5]}
    expected = [r.symbol for r in by_fuzzy if r.symbol in passed or r.symbol in top5]
    assert recall_candidates(metric, fuzzy, top=5, limit=12) == expected[:12]
    features = set(expected[::2])
    assert llm_shortlist(metric, fuzzy, features, require_metric=True, n=4) == [
        s for s in expected if s in features and s in passed][:4]  # fmt: skip
    assert llm_shortlist(metric, fuzzy, features, require_metric=False, n=50) == [
        s for s in expected if s in features]  # fmt: skip
