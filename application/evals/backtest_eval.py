"""The end-to-end backtest eval: Quorum, its ablations and rule-based baselines over one window, net of costs.

Every strategy is valued on the same sessions from the same cash and pays the same slippage and fees
(`application.benchmarks`, `application.evals.strategies`); the equity curves of Quorum and its ablations have
their LLM spend subtracted from the close of the day it was spent on. Each strategy gets its figures
(`application.evals.curve_metrics.metrics`) and its comparison with Quorum (`compare`: a paired block bootstrap
of the Sharpe difference that says "too short to rank" when the interval includes zero). Random entries are a
distribution over seeds; Quorum's percentile of total return in it is the comparison.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from application.backtest import BacktestResult
from application.benchmarks import buy_and_hold
from application.evals.curve_metrics import (
    TOO_SHORT,
    StatSettings,
    compare,
    counted,
    daily_returns,
    metrics,
    ordinal,
    percentile_of,
    spread,
)
from application.evals.strategies import Dividends, StrategyRun, TripShape, aligned, momentum, random_entries, sma_cross
from domain.evals.sharpe import sharpe_ratio
from domain.market_conditions import BENCHMARK
from domain.models.market import BarSeries
from domain.money import ZERO
from domain.risk.config import FeeSettings

Curve = tuple[str, list[Decimal], dict[str, Any]]
"""A strategy's label, its value at each day of the window and what else it reports."""
MEMORY_VERDICTS = {
    "better": "Quorum with memory recall beats it: the memory veto earns its place over this window",
    "worse": "Quorum does better without memory recall: the memory veto costs more than it saves here",
}


@dataclass(frozen=True)
class PipelineRun:
    """A backtest of the pipeline with its LLM spend by day (USD; a day's spend is subtracted from that day's
    close on). Without a breakdown, `result.llm_cost_usd` is spread evenly over the sessions."""

    result: BacktestResult
    llm_cost_by_day: Mapping[date, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Pipelines:
    """The evaluated run and its ablations over the same window.

    Attributes:
        quorum: the pipeline as configured.
        rules_only: every LLM stage replaced by its offline rule; None when `quorum` is already offline (the
            same run).
        no_memory: the pipeline with trade-memory recall off (the memory veto has no evidence).
        llm: what drove Quorum's LLM stages ("offline", "settings" or a model).
    """

    quorum: PipelineRun
    rules_only: PipelineRun | None
    no_memory: PipelineRun | None
    llm: str = "offline"


@dataclass(frozen=True)
class EvalParameters:
    """The baselines' knobs and the statistics' settings."""

    sma_fast: int = 20
    sma_slow: int = 50
    momentum_lookback: int = 20
    momentum_top: int = 3
    rebalance_every: int = 5
    random_runs: int = 200
    seed: int = 0
    stats: StatSettings = field(default_factory=StatSettings)


@dataclass(frozen=True)
class _Window:
    days: list[date]
    cash: Decimal
    symbols: dict[str, BarSeries]
    fees: FeeSettings
    dividends: Dividends | None


def net_values(run: PipelineRun, days: Sequence[date]) -> list[Decimal]:
    """The run's equity at each day of `days` (the valuation before the run first) less its LLM spend so far;
    spend dated after the last day is charged on the last day."""
    r = run.result
    if list(days[1:]) != [row.day for row in r.equity]:
        raise ValueError(f"{r.run_id}: its sessions are not the window's")
    spent = dict(run.llm_cost_by_day)
    if not spent and r.llm_cost_usd > 0 and len(days) > 1:
        share = Decimal(str(r.llm_cost_usd)) / (len(days) - 1)
        spent = {d: share for d in days[1:]}
    out = [r.starting_cash]
    for row in r.equity:
        last = row.day == days[-1]
        out.append(row.equity - sum((c for when, c in spent.items() if when <= row.day or last), ZERO))
    return out


def _pipeline(run: PipelineRun, days: Sequence[date]) -> tuple[list[Decimal], dict[str, Any]]:
    r = run.result
    vetoes = sum(1 for d in r.decisions
                 if str((d.get("validator_rules") or {}).get("rejected_reason") or "").startswith("memory veto"))
    judged = [d for d in r.decisions if d.get("validator_rules")]
    return net_values(run, days), {
        "round_trips": len(r.round_trips), "fills": len(r.fills), "fees": str(r.fees), "llm_cost_usd": r.llm_cost_usd,
        "failed_cycles": r.failed_cycles, "entries_judged": len(judged), "memory_vetoes": vetoes,
        "entries_with_memory_evidence": sum(1 for d in judged if d.get("memory_evidence"))}


def _traded(run: StrategyRun) -> tuple[list[Decimal], dict[str, Any]]:
    return list(run.values), {"fees": str(run.fees), "dividends": str(run.dividends), "fills": run.fills}


def _buy_and_hold(window: Sequence[BarSeries], w: _Window) -> tuple[list[Decimal], dict[str, Any]] | None:
    if not window:
        return None
    run = buy_and_hold([s.between(w.days[0], w.days[-1]) for s in window], w.cash, w.fees, w.dividends)
    return list(run.values), {"fees": str(run.fees), "dividends": str(run.dividends), "fills": len(window)}


def trip_shapes(result: BacktestResult, days: Sequence[date]) -> list[TripShape]:
    """Sessions held (open to close, at least one) and cost of each of the run's round trips in the window."""
    index = {d: i for i, d in enumerate(days)}
    shapes = []
    for t in result.round_trips:
        a, b = index.get(t.opened_at.date()), index.get(t.closed_at.date())
        if a is not None and b is not None:
            shapes.append(TripShape(max(1, b - a), t.cost))
    return shapes


def _random(w: _Window, trips: list[TripShape], quorum: Sequence[Decimal],
            p: EvalParameters) -> tuple[Curve, dict[str, Any]]:
    """Random entries over `p.random_runs` seeds: the median run (by total return) with the distribution, and
    Quorum's percentile of total return in it as the comparison."""
    runs = [random_entries(w.symbols, w.days, w.cash, w.fees, trips, seed=p.seed + i, dividends=w.dividends)
            for i in range(p.random_runs)]
    totals = [float(r.values[-1] / r.values[0]) - 1.0 for r in runs]
    sharpes = [x for r in runs if math.isfinite(x := sharpe_ratio(daily_returns(r.values)))]
    median = runs[sorted(range(len(runs)), key=lambda i: totals[i])[len(runs) // 2]]
    q = float(quorum[-1] / quorum[0]) - 1.0
    pct = percentile_of(totals, q)
    values, extra = _traded(median)
    extra |= {"round_trips": len(trips), "distribution": {
        "runs": len(runs), "seeds": [p.seed, p.seed + len(runs) - 1], "total_return": spread(totals),
        "sharpe": spread(sharpes), "quorum_percentile": pct}}
    tail = 100 * (1 - p.stats.confidence) / 2
    if not trips:
        verdict, message = TOO_SHORT, (f"{TOO_SHORT}: Quorum closed no round trip in the window, so random entries "
                                       "had nothing to copy")
    else:
        verdict = "better" if pct >= 100 - tail else "worse" if pct <= tail else TOO_SHORT
        where = {"better": "above", "worse": "below"}.get(verdict, "inside")
        message = (f"Quorum's total return {q:+.2%} is at the {ordinal(pct)} percentile of {len(runs)} "
                   f"random-entry runs ({counted(len(trips), 'round trip')} each, same sizes and holding periods): "
                   f"{where} the middle {p.stats.confidence:.0%}"
                   + (f"; {TOO_SHORT} against random entries" if where == "inside" else ""))
    return (("random entries (median)", values, extra),
            {"verdict": verdict, "message": message, "method": "percentile of total return", "quorum_percentile": pct})


def _baselines(w: _Window, spy: Sequence[BarSeries], p: EvalParameters) -> dict[str, Curve]:
    out: dict[str, Curve] = {}

    def add(name: str, label: str, found: tuple[list[Decimal], dict[str, Any]] | None) -> None:
        if found is not None:
            out[name] = (label, *found)

    add("spy_buy_and_hold", "SPY buy & hold", _buy_and_hold(spy, w))
    add("equal_weight_buy_and_hold", "equal-weight buy & hold", _buy_and_hold(list(w.symbols.values()), w))
    for s, series in w.symbols.items():
        add(f"buy_and_hold:{s}", f"{s} buy & hold", _buy_and_hold([series], w))
    add("sma_cross", f"SMA {p.sma_fast}/{p.sma_slow} cross", _traded(sma_cross(
        w.symbols, w.days, w.cash, w.fees, fast=p.sma_fast, slow=p.sma_slow, dividends=w.dividends)))
    add("momentum", f"{p.momentum_lookback}-day momentum, top {p.momentum_top}",
        _traded(momentum(w.symbols, w.days, w.cash, w.fees, lookback=p.momentum_lookback, top=p.momentum_top,
                         every=p.rebalance_every, dividends=w.dividends)))
    return out


def _pipelines(runs: Pipelines, days: list[date]) -> dict[str, Curve]:
    out: dict[str, Curve] = {"quorum": ("Quorum", *_pipeline(runs.quorum, days))}
    if runs.rules_only is not None:
        out["rules_only"] = ("rules only", *_pipeline(runs.rules_only, days))
    if runs.no_memory is not None:
        out["no_memory"] = ("no memory recall", *_pipeline(runs.no_memory, days))
    return out


def evaluate_backtest(runs: Pipelines, bars: Mapping[str, BarSeries], *, fees: FeeSettings,
                      dividends: Dividends | None = None, params: EvalParameters | None = None) -> dict[str, Any]:
    """Every strategy's figures and its comparison with Quorum, as a JSON-able dict.

    Args:
        runs: Quorum and its ablations, over the same sessions.
        bars: daily bars of Quorum's symbols and SPY, with enough history before the window for the baselines.
        fees: the run's slippage and fees.
        dividends: cash dividend per share by ex-date, when the run counted dividends.
        params: the baselines' knobs and the statistics' settings.

    Returns:
        {"window": {...}, "strategies": {name: {...}}, "comparisons": {name: {"verdict", "message", ...}},
        "notes": [...]}; a verdict is "better" or "worse" (Quorum's Sharpe ratio against the other's, the paired
        interval excluding zero), "too short to rank", or "identical" for a rules-only ablation of an offline run.

    Raises:
        ValueError: a run with no session, or ablations over other sessions.
    """
    p = params or EvalParameters()
    q = runs.quorum.result
    if q.performance.start is None or not q.equity:
        raise ValueError(f"{q.run_id} has no session")
    days = [q.performance.start, *(row.day for row in q.equity)]
    w = _Window(days, q.starting_cash, aligned(bars, q.symbols, days), fees, dividends)
    curves = _pipelines(runs, days) | _baselines(w, list(aligned(bars, [BENCHMARK], days).values()), p)
    trips = trip_shapes(q, days)
    curves["random_entries"], random_comparison = _random(w, trips, curves["quorum"][1], p)
    strategies = {name: {"name": label, **metrics(days, v, p.stats), **more}
                  for name, (label, v, more) in curves.items()}
    quorum_returns = daily_returns(curves["quorum"][1])
    comparisons = {name: compare(quorum_returns, daily_returns(v), p.stats) for name, (_, v, _) in curves.items()
                   if name not in ("quorum", "random_entries")}
    comparisons["random_entries"] = random_comparison
    if runs.rules_only is None:
        strategies["rules_only"] = {**strategies["quorum"], "name": "rules only (= Quorum)",
                                    "identical_to": "quorum"}
        comparisons["rules_only"] = {"verdict": "identical", "message": "the evaluated run is already offline: the "
                                     "rules-only ablation is the same run, not run twice"}
    if "no_memory" in comparisons:
        comparisons["no_memory"]["interpretation"] = MEMORY_VERDICTS.get(
            comparisons["no_memory"]["verdict"], "this window cannot tell whether the memory veto earns its place")
    window = {"start": q.start.isoformat(), "end": q.end.isoformat(), "sessions": len(days) - 1,
              "first_valuation": days[0].isoformat(), "symbols": list(q.symbols), "baseline_symbols": list(w.symbols),
              "starting_cash": str(w.cash), "llm": runs.llm, "data": q.extra.get("data")}
    return {"window": window, "strategies": strategies, "comparisons": comparisons,
            "notes": notes(runs, fees, trips=len(trips), compared=len(comparisons), params=p)}


def _statement(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return str(value.get("statement")) if value.get("statement") else None
    said = getattr(value, "statement", None)
    return str(said) if said else None


def notes(runs: Pipelines, fees: FeeSettings, *, trips: int, compared: int, params: EvalParameters) -> list[str]:
    """What the figures mean: costs, LLM spend, dividends, survivorship, how verdicts are reached."""
    q = runs.quorum.result
    out = [f"Net of trading costs: every fill of every strategy, Quorum's included, moves {fees.slippage_bps} bps "
           f"against it and pays ${fees.commission_per_order} per order, the SEC fee (${fees.sec_fee_per_million} "
           f"per million sold) and the FINRA TAF (${fees.taf_per_share} a share sold, at most ${fees.taf_max}): the "
           "same FeeSettings as Quorum. Baselines trade at the next session's open on what they saw at the close."]
    spend = [(name, r.result.llm_cost_usd) for name, r in
             (("Quorum", runs.quorum), ("no memory", runs.no_memory), ("rules only", runs.rules_only))
             if r is not None]
    if any(cost > 0 for _, cost in spend):
        out.append("LLM cost subtracted from the equity curves, from the day it was spent on: "
                   + ", ".join(f"{name} ${cost:.4f}" for name, cost in spend) + ".")
    else:
        out.append("LLM cost: none in these runs (offline policy): nothing to subtract.")
    div = q.dividends
    out.append(("Dividends counted" if div.counted else "Dividends not counted") + f" for Quorum and every baseline "
               f"alike: {div.reason}")
    if (said := _statement(q.extra.get("survivorship"))) is not None:
        out.append(f"Survivorship: {said}")
    out.append("What is still held at the end is valued at the last close, for Quorum and every baseline alike, "
               "without exit costs.")
    confidence = params.stats.confidence
    out.append(f"Verdicts: a paired stationary block bootstrap ({params.stats.resamples} resamples) of the daily "
               f"Sharpe difference; 'better' or 'worse' only when its {confidence:.0%} interval excludes zero, else "
               f"'{TOO_SHORT}'. With {compared} comparisons, about {compared * (1 - confidence):.1f} could rank by "
               "chance alone. PSR is the probability that the true Sharpe ratio is above zero.")
    out.append(f"Random entries: {params.random_runs} seeded runs of {counted(trips, 'round trip')} each, with the "
               "sizes and holding periods (sessions, open to open) of Quorum's round trips, on a random symbol and "
               "day; positions Quorum still held at the end are not copied.")
    if runs.rules_only is None:
        out.append("Rules only: the evaluated run is already offline, so the rules-only ablation is that run.")
    if runs.no_memory is not None:
        out.append("No memory: the same pipeline with trade-memory recall off, so the validator's memory veto has no "
                   "evidence; if Quorum does not rank above it, the veto has not shown that it earns its place.")
    if (model := q.extra.get("embedding_model")) == "hashing":
        out.append("Trade memory embedded with the hashing embedder, not the sentence-transformers model live "
                   "trading uses: which past trades look similar, and so the memory veto, may differ from live.")
    elif model is not None:
        out.append(f"Trade memory embedded with {model}.")
    return out
