"""The backtest eval's figures and verdicts: too short to rank, a clear winner ranks, LLM cost comes off Quorum's
curve, the ablations and the notes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from application.backtest import BacktestResult, EquityRow
from application.evals.backtest_eval import EvalParameters, PipelineRun, Pipelines, evaluate_backtest, net_values
from application.evals.curve_metrics import StatSettings
from domain.analytics import performance
from domain.models.market import BarSeries
from domain.models.trading import Fill, Side
from domain.risk.config import FeeSettings

CASH = Decimal(1000)
FAST = EvalParameters(random_runs=20, stats=StatSettings(resamples=400))
DAY0 = date(2023, 1, 2)
SYMBOLS = ["AAA", "BBB", "CCC"]


def calendar(n: int) -> list[date]:
    return [DAY0 + timedelta(days=i) for i in range(n)]


def market(n: int, seed: int = 1) -> dict[str, BarSeries]:
    """Zero-drift random walks for the symbols and SPY over `n` days."""
    rng = np.random.default_rng(seed)
    out = {}
    for s in [*SYMBOLS, "SPY"]:
        closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        opens = closes * np.exp(rng.normal(0, 0.003, n))
        out[s] = BarSeries(s, tuple(calendar(n)), opens, np.maximum(opens, closes), np.minimum(opens, closes),
                           closes, np.full(n, 1e6))
    return out


def result(days: list[date], values: list[Decimal], *, llm_cost: float = 0.0, fills: list[Fill] | None = None,
           decisions: list[dict[str, Any]] | None = None) -> BacktestResult:
    rows = [EquityRow(d, v, v, Decimal(0)) for d, v in zip(days[1:], values[1:], strict=True)]
    return BacktestResult("t", "evals", days[1], days[-1], values[0], SYMBOLS, rows, fills or [], decisions or [],
                          performance(list(zip(days, values, strict=True))), {}, llm_cost)


def curve(n: int, daily: float, noise: float, seed: int = 2) -> list[Decimal]:
    rng = np.random.default_rng(seed)
    growth = np.cumprod(1 + rng.normal(daily, noise, n - 1))
    return [CASH] + [Decimal(str(round(float(CASH) * g, 2))) for g in growth]


def fill(symbol: str, side: Side, day: date, qty: str, px: str) -> Fill:
    return Fill(f"{symbol}-{day}-{side.value}", symbol, side, Decimal(qty), Decimal(px), Decimal(0),
                datetime.combine(day, time(14, 31), tzinfo=UTC))


def evaluate(quorum: BacktestResult, n: int, **kw: Any) -> dict[str, Any]:
    runs = Pipelines(PipelineRun(quorum), kw.pop("rules_only", None), kw.pop("no_memory", None))
    return evaluate_backtest(runs, market(n), fees=FeeSettings(), params=FAST, **kw)


def test_a_short_window_is_too_short_to_rank_anything() -> None:
    days = calendar(80)[-13:]
    report = evaluate(result(days, curve(13, 0.004, 0.002)), 80)
    verdicts = {name: c["verdict"] for name, c in report["comparisons"].items()}
    assert set(verdicts) >= {"spy_buy_and_hold", "equal_weight_buy_and_hold", "buy_and_hold:AAA", "sma_cross",
                             "momentum", "random_entries", "rules_only"}
    assert {v for k, v in verdicts.items() if k != "rules_only"} == {"too short to rank"}
    assert "12 sessions" in report["comparisons"]["spy_buy_and_hold"]["message"]


def test_a_clearly_better_pipeline_ranks_above_the_baselines_and_a_clearly_worse_one_below() -> None:
    days = calendar(320)[-250:]
    good = evaluate(result(days, curve(250, 0.004, 0.002)), 320)
    assert good["comparisons"]["spy_buy_and_hold"]["verdict"] == "better"
    assert good["comparisons"]["equal_weight_buy_and_hold"]["verdict"] == "better"
    assert good["strategies"]["quorum"]["psr"] > 0.99
    low = good["strategies"]["quorum"]["sharpe_ci"]["low"]
    assert low > good["strategies"]["spy_buy_and_hold"]["sharpe"]
    bad = evaluate(result(days, curve(250, -0.004, 0.002)), 320)
    assert bad["comparisons"]["spy_buy_and_hold"]["verdict"] == "worse"
    assert bad["strategies"]["quorum"]["psr"] < 0.01


def test_llm_cost_is_subtracted_from_quorums_curve_from_the_day_it_was_spent() -> None:
    days = calendar(100)[-30:]
    flat = result(days, [CASH] * 30, llm_cost=3.0)
    spent = {days[3]: Decimal(1), days[5]: Decimal(2)}
    net = net_values(PipelineRun(flat, spent), days)
    assert net[:3] == [CASH] * 3
    assert net[3] == net[4] == CASH - 1
    assert net[5:] == [CASH - 3] * 25
    report = evaluate_backtest(Pipelines(PipelineRun(flat, spent), None, None), market(100), fees=FeeSettings(),
                               params=FAST)
    assert report["strategies"]["quorum"]["final_equity"] == str(CASH - 3)
    assert report["strategies"]["quorum"]["total_return"] < 0
    assert any("LLM cost subtracted" in note and "$3.0000" in note for note in report["notes"])


def test_without_a_breakdown_the_llm_cost_is_spread_over_the_sessions() -> None:
    days = calendar(100)[-11:]
    net = net_values(PipelineRun(result(days, [CASH] * 11, llm_cost=5.0)), days)
    assert net[1] == CASH - Decimal("0.5")
    assert net[-1] == CASH - 5


def test_random_entries_copy_quorums_round_trips_and_place_it_in_their_distribution() -> None:
    days = calendar(320)[-250:]
    fills = [fill("AAA", Side.BUY, days[10], "2", "100"), fill("AAA", Side.SELL, days[15], "2", "110"),
             fill("BBB", Side.BUY, days[40], "1", "90"), fill("BBB", Side.SELL, days[41], "1", "95")]
    report = evaluate(result(days, curve(250, 0.004, 0.002), fills=fills), 320)
    random = report["strategies"]["random_entries"]
    assert random["round_trips"] == 2
    assert random["distribution"]["runs"] == FAST.random_runs
    assert random["fills"] == 4
    assert report["comparisons"]["random_entries"]["verdict"] == "better"
    assert report["comparisons"]["random_entries"]["quorum_percentile"] == 100.0


def test_ablations_are_reported_and_an_offline_run_is_its_own_rules_only_ablation() -> None:
    days = calendar(320)[-250:]
    veto = {"validator_rules": {"rejected_reason": "memory veto: 4 of 5 similar past trades lost"},
            "memory_evidence": [{"text": "x"}]}
    quorum = result(days, curve(250, 0.004, 0.002), decisions=[veto, veto])
    no_memory = result(days, curve(250, 0.0, 0.01, seed=9))
    report = evaluate(quorum, 320, no_memory=PipelineRun(no_memory))
    assert report["comparisons"]["rules_only"]["verdict"] == "identical"
    assert report["strategies"]["rules_only"]["identical_to"] == "quorum"
    assert report["strategies"]["quorum"]["memory_vetoes"] == 2
    assert report["strategies"]["no_memory"]["memory_vetoes"] == 0
    assert report["comparisons"]["no_memory"]["verdict"] == "better"
    assert "earns its place" in report["comparisons"]["no_memory"]["interpretation"]
    with_rules = evaluate(quorum, 320, rules_only=PipelineRun(no_memory))
    assert with_rules["comparisons"]["rules_only"]["verdict"] == "better"
    assert "identical_to" not in with_rules["strategies"]["rules_only"]


def test_the_report_is_plain_json_with_every_baseline_and_the_notes() -> None:
    days = calendar(100)[-30:]
    quorum = result(days, [CASH] * 30)
    quorum.extra["survivorship"] = {"statement": "today's index members over a past period"}
    report = evaluate(quorum, 100)
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text)["window"]["sessions"] == 29
    assert {f"buy_and_hold:{s}" for s in SYMBOLS} <= set(report["strategies"])
    notes = " ".join(report["notes"])
    assert "Net of trading costs" in notes and "Dividends not counted" in notes
    assert "Survivorship: today's index members" in notes
    assert report["comparisons"]["spy_buy_and_hold"]["verdict"] == "too short to rank"
