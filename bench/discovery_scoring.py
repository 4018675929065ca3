"""Discovery scoring: 12,000 synthetic symbols x 260 days through the metric and fuzzy pickers and the ensemble.

Figure: what a discovery run does with the universe, on a fresh `UniverseSnapshot`: `MetricPicker.evaluate`
+ `FuzzyPicker.evaluate` + `EnsembleCombiner.combine_scores` up to the final ranking, plus building the
`EnsembleResult`s (with every picker's reasons) of the best `TOP` symbols, what a run reports. Baseline
(the floor): a plain NumPy computation of the same metric filters, fuzzy scores (memory adjustment
included) and ensemble scores and ranking, measured in the same run. Both must give identical scores and
ranks, and the results must equal those of the eager path (`pick` + `combine`, every symbol's results
built), which is measured too for reference. Targets: under 2 s and within 2x of the NumPy floor. Best of
`REPEATS` runs for each.

Run: `python -m bench.discovery_scoring`.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from bench._discovery_market import N_DAYS, N_SYMBOLS, SECTORS, Market, make_market
from bench.common import Target, write_result
from domain.discovery.ensemble import EnsembleCombiner, EnsembleResult, EnsembleScores
from domain.discovery.fuzzy_picker import FuzzyPicker
from domain.discovery.metric_picker import MetricPicker
from domain.discovery.picker import UniverseSnapshot
from domain.models.market import BarSeries

NAME = "discovery_scoring"
REPEATS = 5
TOP = 50
MAX_SECONDS = 2.0
MAX_RATIO = 2.0


def run_pickers(market: Market) -> tuple[EnsembleScores, list[EnsembleResult], dict[str, float]]:
    """The figure: pickers and ensemble on a fresh snapshot, top results built; per-step seconds."""
    settings = market.context.settings
    t0 = time.perf_counter()
    universe = market.snapshot()
    metric = MetricPicker(settings.filters).evaluate(universe, market.context)
    t1 = time.perf_counter()
    fuzzy = FuzzyPicker(settings.fuzzy).evaluate(universe, market.context)
    t2 = time.perf_counter()
    combiner = EnsembleCombiner(settings.weights, settings.divergence_threshold)
    ensemble = combiner.combine_scores({"metric": metric, "fuzzy": fuzzy})
    t3 = time.perf_counter()
    top = ensemble.top(TOP)
    t4 = time.perf_counter()
    return ensemble, top, {"metric": t1 - t0, "fuzzy": t2 - t1, "ensemble": t3 - t2, "top_results": t4 - t3}


def run_eager(market: Market) -> tuple[list[EnsembleResult], float]:
    """Reference: `pick` + `pick` + `combine`, every symbol's results built; the ranking and seconds."""
    settings = market.context.settings
    t0 = time.perf_counter()
    universe = market.snapshot()
    metric = MetricPicker(settings.filters).pick(universe, market.context)
    fuzzy = FuzzyPicker(settings.fuzzy).pick(universe, market.context)
    combiner = EnsembleCombiner(settings.weights, settings.divergence_threshold)
    ranked = combiner.combine({"metric": metric, "fuzzy": fuzzy})
    return ranked, time.perf_counter() - t0


def _evaluate_seconds(market: Market) -> float:
    """Extra figure: the pickers' vectorised `evaluate` alone (no ensemble, no result objects)."""
    settings = market.context.settings
    t0 = time.perf_counter()
    universe = market.snapshot()
    MetricPicker(settings.filters).evaluate(universe)
    FuzzyPicker(settings.fuzzy).evaluate(universe, market.context)
    return time.perf_counter() - t0


def _nan_mean(x: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x)
    count = ok.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(ok, x, 0.0).sum(axis=1) / count
    mean[count < 1] = np.nan
    return mean


def _rank01(x: np.ndarray) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(x))
    ranks = np.empty(idx.size)
    ranks[np.argsort(x[idx])] = np.arange(idx.size)
    out[idx] = ranks / (idx.size - 1)
    return out


def numpy_floor(market: Market) -> dict[str, np.ndarray]:
    """The same scores in straight-line NumPy (no result objects, no reasons; shared measures computed once).

    Written for the default `DiscoverySettings` and the fuzzy picker's default windows and shapes.
    """
    s = market.context.settings
    f, w, fw = s.filters, s.weights, s.fuzzy
    close, volume = market.close, market.volume
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = close[:, 1:] / close[:, :-1] - 1.0
        ret[~((close[:, :-1] > 0) & (close[:, 1:] > 0))] = np.nan
        bench = market.benchmark_close
        bret = bench[1:] / bench[:-1] - 1.0
        # metric measures
        avg_vol = _nan_mean(volume[:, -f.volume_window_days :])
        adv = _nan_mean(close[:, -f.volume_window_days :] * volume[:, -f.volume_window_days :])
        price = close[:, -1]
        r, m = ret[:, -f.beta_window_days :], bret[-f.beta_window_days :]
        ok = np.isfinite(r) & np.isfinite(m)
        count = ok.sum(axis=1)
        m_mean = np.where(ok, m, 0.0).sum(axis=1) / count
        r_mean = np.where(ok, r, 0.0).sum(axis=1) / count
        dm = np.where(ok, m - m_mean[:, None], 0.0)
        dr = np.where(ok, r - r_mean[:, None], 0.0)
        var = (dm * dm).sum(axis=1)
        beta = (dr * dm).sum(axis=1) / var
        flat = ~(var > 1e-12 * (var + count * m_mean * m_mean))
        beta[(count < int(np.ceil(0.75 * f.beta_window_days))) | flat] = np.nan
        spread, caps = market.spread_pct, market.market_caps
        passed = (
            (avg_vol >= f.min_avg_volume) & (adv >= f.min_avg_dollar_volume) & (price >= f.min_price)
            & (spread <= f.max_spread_pct) & (caps >= f.min_market_cap) & (beta >= f.min_beta) & (beta <= f.max_beta)
        )  # fmt: skip
        metric = np.zeros(len(price))
        metric[passed] = 0.5 + 0.5 * _rank01(adv[passed])
        # fuzzy components
        r60 = ret[:, -60:]
        ok60 = np.isfinite(r60)
        c60 = ok60.sum(axis=1)
        mu = np.where(ok60, r60, 0.0).sum(axis=1) / c60
        dev = np.where(ok60, r60 - mu[:, None], 0.0)
        vol = np.sqrt((dev * dev).sum(axis=1) / (c60 - 1) * 252)
        vol[c60 < 45] = np.nan
        liquidity = np.nan_to_num(_rank01(adv), nan=0.0)
        low, peak, high = 0.10, 0.30, 0.70
        volatility = np.clip(np.minimum((vol - low) / (peak - low), (high - vol) / (high - peak)), 0.0, 1.0)
        volatility = np.nan_to_num(volatility, nan=0.0)
        moms = []
        for lookback in (20, 60):
            start, end = close[:, -1 - lookback], close[:, -1]
            mom = end / start - 1.0
            mom[~((start > 0) & (end > 0))] = np.nan
            moms.append(_rank01(mom))
        p20, p60 = moms
        momentum = np.nan_to_num(np.where(np.isnan(p20), p60, np.where(np.isnan(p60), p20, (p20 + p60) / 2)), nan=0.0)
    ctx = market.context
    total_watch = sum(ctx.watchlist_sectors.values())
    table = np.empty(len(SECTORS) + 1)
    for c, name in enumerate(SECTORS):
        exposure = max(ctx.held_sectors.get(name, 0.0), ctx.watchlist_sectors.get(name, 0) / total_watch)
        table[c] = 1.0 - min(1.0, exposure / 0.4)
    table[-1] = 0.5
    sector = table[market.sector_codes]
    total = fw.liquidity + fw.volatility + fw.momentum + fw.sector_balance
    base = (fw.liquidity * liquidity + fw.volatility * volatility + fw.momentum * momentum
            + fw.sector_balance * sector) / total  # fmt: skip
    adjustment = np.zeros(len(price))
    points_of = {"WIN": 1.0, "LOSS": 0.0, "FLAT": 0.5}
    row = {sym: i for i, sym in enumerate(market.symbols)}
    for sym, evidence in ctx.similar_trades.items():
        points = [points_of[e.outcome] for e in evidence if e.outcome is not None]
        if points:
            share = sum(points) / len(points)
            adjustment[row[sym]] = fw.memory_adjustment * (share - 0.5) * 2.0 * min(1.0, len(points) / 5)
    fuzzy = np.clip(base + adjustment, 0.0, 1.0)
    # ensemble
    ensemble = np.clip((metric * w.metric + fuzzy * w.fuzzy) / (w.metric + w.fuzzy), 0.0, 1.0)
    ensemble[~passed] = 0.0
    n_agree = (passed & (metric >= 0.5)).astype(np.int64) + (fuzzy >= 0.5)
    order = np.lexsort((np.array(market.symbols), -n_agree, -ensemble))
    return {"metric": metric, "passed": passed, "fuzzy": fuzzy, "ensemble": ensemble, "order": order}


def _check_identical(
    ensemble: EnsembleScores, top: list[EnsembleResult], eager: list[EnsembleResult], floor: dict[str, np.ndarray]
) -> None:
    order = ensemble.order
    assert np.array_equal(order, floor["order"]), "ranking differs from the NumPy floor"
    assert np.array_equal(ensemble.score[order], floor["ensemble"][order]), "ensemble scores differ from the floor"
    for picker in ensemble.pickers:
        assert np.array_equal(picker.score, floor[picker.picker]), f"{picker.picker} scores differ from the floor"
    assert top == eager[:TOP], "the top results differ from the eager path's"
    assert ensemble.ranked() == eager, "the results built on demand differ from the eager path's"


def _from_series_seconds(market: Market) -> float:
    """Extra figure: aligning 12,000 BarSeries on the benchmark's days (not part of the ratio)."""
    days = tuple(date(2023, 6, 1) + timedelta(days=i) for i in range(N_DAYS))
    bars = {
        sym: BarSeries(sym, days, c, c, c, c, v)
        for sym, c, v in zip(market.symbols, market.close, market.volume, strict=True)
    }
    bench = BarSeries("SPY", days, *(market.benchmark_close,) * 4, np.ones(N_DAYS))
    t0 = time.perf_counter()
    UniverseSnapshot.from_series(days[-1], bars, bench, {}, {})
    return time.perf_counter() - t0


def run() -> dict[str, Any]:
    """Measure the pickers + ensemble against the NumPy floor; write and return the result."""
    started = datetime.now(UTC)
    market = make_market()
    figure, floor_best, vectorised, eager_best, steps_best = math.inf, math.inf, math.inf, math.inf, {}
    floor: dict[str, np.ndarray] = {}
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        floor = numpy_floor(market)
        floor_best = min(floor_best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        ensemble, top, steps = run_pickers(market)
        elapsed = time.perf_counter() - t0
        if elapsed < figure:
            figure, steps_best = elapsed, steps
        vectorised = min(vectorised, _evaluate_seconds(market))
    for _ in range(2):
        eager, seconds = run_eager(market)
        eager_best = min(eager_best, seconds)
    _check_identical(ensemble, top, eager, floor)
    ratio = figure / floor_best
    return write_result(
        NAME,
        started=started,
        figures={
            "figure_seconds": round(figure, 4),
            "steps_seconds": {k: round(v, 4) for k, v in steps_best.items()},
            "evaluate_only_seconds": round(vectorised, 4),
            "eager_all_results_seconds": round(eager_best, 4),
            "from_series_seconds": round(_from_series_seconds(market), 4),
        },
        baselines={"baseline_seconds": round(floor_best, 4)},
        ratios={
            "figure_over_numpy_floor": round(ratio, 3),
            "evaluate_only_over_numpy_floor": round(vectorised / floor_best, 3),
            "eager_all_results_over_numpy_floor": round(eager_best / floor_best, 3),
        },
        targets=[
            Target("figure_seconds", "<", MAX_SECONDS, round(figure, 4), "s"),
            Target("figure_over_numpy_floor", "<=", MAX_RATIO, round(ratio, 3)),
        ],
        details={
            "n_symbols": N_SYMBOLS,
            "n_days": N_DAYS,
            "repeats": REPEATS,
            "top_results_built": TOP,
            "timing": "best of repeats, wall clock; floor and figure interleaved; eager path best of 2",
            "metric_passed": int(floor["passed"].sum()),
            "symbols_with_memory_evidence": len(market.context.similar_trades),
            "identical_scores_and_ranks": True,
            "results_identical_to_eager_path": True,
        },
    )


if __name__ == "__main__":
    run()
