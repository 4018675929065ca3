"""The eval runner: production requests, scoring of each suite, failures, repeats, the concurrency bound."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from application.agents import render
from application.evals.grid import Resampling
from application.evals.runner import REFUSED, EvalDatasets, EvalRunner, RunConfig
from application.evals.scoring import stated_probability
from application.evals.suites import UNDATED
from application.llm_gateway import LLMGateway
from domain.agents.schemas import (
    MarketConditions,
    RiskCandidate,
    RiskContext,
    SignalContext,
    SymbolFeatures,
    ValidatorCandidate,
    ValidatorContext,
)
from domain.errors import LLMError
from domain.evals import signal_metrics as domain_signal
from domain.evals.rows import (
    ForwardBars,
    Outcome,
    ReferenceSizing,
    RiskLimitsRow,
    RiskRow,
    RuleVerdict,
    SignalRow,
    Source,
    TrapRow,
    ValidatorRow,
)
from domain.ports.llm import Decision, LLMRequest, LLMUsage, OutputT

FAST = Resampling(n_resamples=300)
MARKET = MarketConditions(vix=15.0, vix_is_proxy=False, spy_return_20d=0.01, spy_above_sma_50=True, spy_trend="up")
Answer = dict[str, Any] | Exception


def features(symbol: str) -> SymbolFeatures:
    return SymbolFeatures(symbol=symbol, price=100.0, return_1d=0.0, return_5d=0.01, return_20d=0.03,
                          return_60d=0.05, sma_20=99.0, sma_50=97.0, volatility_20d=0.2, atr_pct=0.02,
                          avg_dollar_volume_20d=1e8, volume_ratio=1.0)


def outcome(ret: float, low: float | None = None) -> Outcome:
    """A flat path from 100 closing at 100 x (1 + ret); `low`: the low of the third session."""
    n = 20
    lows = [100.0] * n
    if low is not None:
        lows[2] = low
    closes = [100.0] * (n - 1) + [100.0 * (1 + ret)]
    forward = ForwardBars(open=(100.0,) * n, high=tuple(max(100.0, c) for c in closes), low=tuple(lows),
                          close=tuple(closes))
    return Outcome(label=0, barrier="time", realised_return=ret, win=ret > 0, exit_session=n, stop_pct=0.05,
                   take_profit_pct=0.15, max_sessions=n, max_adverse_excursion=0.0, max_favourable_excursion=0.0,
                   forward=forward)


def signal_row(i: int, ret: float, *, named: bool = False) -> SignalRow:
    symbol = f"REAL{i}" if named else f"ASSET_{i:03d}"
    as_of = "2015-03-02T21:00:00+00:00" if named else "day 0"
    source = Source(symbol=symbol, day="2015-03-02", entry_day="2015-03-03", exit_day="2015-03-31",
                    close=50.0) if named else None
    return SignalRow(id=f"sig-{i:04d}", twin="named" if named else "anonymised", stratum="trending",
                     context=SignalContext(as_of=as_of, market=MARKET, symbols=(features(symbol),)),
                     outcome=outcome(ret), source=source)


def trap_row(i: int) -> TrapRow:
    return TrapRow(id=f"trap-{i:02d}", kind="falling_knife", description="falls",
                   context=SignalContext(as_of="day 0", market=MARKET, symbols=(features(f"ASSET_9{i:02d}"),)),
                   outcome=outcome(-0.05))


LIMITS = RiskLimitsRow(max_position_pct=0.25, min_stop_pct=0.01, max_stop_pct=0.15, loss_limit_pct=0.03,
                       max_gross_exposure_pct=1.0)


def risk_row(i: int, *, gross: float = 0.0, low: float | None = None, ret: float = 0.01) -> RiskRow:
    symbol = f"ASSET_{i:03d}"
    candidate = RiskCandidate(symbol=symbol, action="BUY", confidence=0.7, price=100.0, volatility_20d=0.2,
                              atr_pct=0.02, held_qty=0.0)
    ctx = RiskContext(as_of="day 0", equity=10_000.0, cash=10_000.0 * (1 - gross), gross_exposure_pct=gross,
                      max_position_pct=0.25, default_stop_pct=0.05, candidates=(candidate,))
    return RiskRow(id=f"risk-{i:04d}", twin="anonymised", context=ctx, limits=LIMITS,
                   reference=ReferenceSizing(position_pct=0.1, stop_pct=0.05, take_profit_pct=0.15),
                   outcome=outcome(ret, low))


def validator_row(i: int, ret: float, rules_approve: bool = True) -> ValidatorRow:
    symbol = f"ASSET_{i:03d}"
    candidate = ValidatorCandidate(symbol=symbol, action="BUY", confidence=0.7, position_pct=0.1,
                                   stop_loss_pct=0.05, reasoning="uptrend")
    return ValidatorRow(id=f"val-{i:04d}", twin="anonymised",
                        context=ValidatorContext(as_of="day 0", market=MARKET, candidates=(candidate,)),
                        rules=RuleVerdict(approved=rules_approve, loser_share=None, warnings=()),
                        outcome=outcome(ret))


def symbol_of(request: LLMRequest[Any]) -> str:
    ctx = request.context
    items = getattr(ctx, "symbols", None) or getattr(ctx, "candidates", None)
    assert items
    return str(items[0].symbol)


class FakeLLM:
    """Answers from `answer(symbol, nth call for that symbol)`; counts calls in flight."""

    provider = "fake"

    def __init__(self, answer: Callable[[str, int], Answer]) -> None:
        self.answer = answer
        self.requests: list[LLMRequest[Any]] = []
        self.seen: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            for _ in range(3):
                await asyncio.sleep(0)  # let every other task that can start, start
            self.requests.append(request)
            symbol = symbol_of(request)
            got = self.answer(symbol, self.seen[symbol])
            self.seen[symbol] += 1
            if isinstance(got, Exception):
                raise got
            usage = LLMUsage(provider="fake", model="fake-1", prompt_tokens=100, completion_tokens=20,
                             cost_usd=0.001, latency_ms=40.0)
            return Decision(request.output_schema.model_validate(got), usage)
        finally:
            self.in_flight -= 1


def signal(symbol: str, action: str, confidence: float) -> dict[str, Any]:
    return {"proposals": [{"symbol": symbol, "action": action, "confidence": confidence, "reasoning": "r"}]}


def runner(llm: FakeLLM, *, cap: float = 10.0, **config: Any) -> EvalRunner:
    gateway = LLMGateway({"default": llm}, cap, "evals-test", UTC)
    return EvalRunner(gateway, RunConfig(resampling=FAST, **config))


def datasets(**rows: list[Any]) -> EvalDatasets:
    return EvalDatasets(rows, {name: f"v-{name}" for name in rows})


RETURNS = [0.04, -0.03, 0.02, -0.05, 0.01, -0.02, 0.06, -0.01]
CALLS = {f"ASSET_{i:03d}": c for i, c in enumerate(
    [("BUY", 0.8), ("BUY", 0.6), ("HOLD", 0.7), ("HOLD", 0.9), ("BUY", 0.7), ("SELL", 0.6), ("BUY", 0.9),
     ("HOLD", 0.5)])}


def test_signal_metrics_and_scores_are_those_of_the_answers() -> None:
    rows = [signal_row(i, r) for i, r in enumerate(RETURNS)]
    llm = FakeLLM(lambda s, _: signal(s, *CALLS[s]))
    result = asyncio.run(runner(llm).run(datasets(signal=rows), ["signal"])).suites["signal"]
    up = np.array([CALLS[f"ASSET_{i:03d}"][0] == "BUY" for i in range(8)])
    won = np.array(RETURNS) > 0
    prob = np.array([stated_probability(*CALLS[f"ASSET_{i:03d}"]) for i in range(8)])
    hits = up == won
    assert result.scores == {f"sig-{i:04d}": float(h) for i, h in enumerate(hits)}
    assert result.metrics["accuracy"].value == pytest.approx(hits.mean())
    assert result.metrics["brier"].value == pytest.approx(np.mean((prob - won) ** 2))
    assert result.metrics["buy_rate"].value == pytest.approx(0.5)
    assert result.failures == 0 and result.tokens == 8 * 120 and result.cost_usd == pytest.approx(0.008)
    assert result.latency_ms() == {"p50": 40.0, "p95": 40.0}
    # One repeat: the same figures and intervals as the domain's signal_metrics on the same seed.
    ref = domain_signal.signal_metrics(up, prob, won, np.array(RETURNS), n_resamples=FAST.n_resamples, seed=0)
    for name, theirs in (("accuracy", ref.accuracy), ("brier", ref.brier), ("ece", ref.ece),
                         ("precision_at_1", ref.precision_at_k),
                         ("profit_weighted_accuracy", ref.profit_weighted_accuracy)):
        mine = result.metrics[name]
        assert (mine.value, mine.low, mine.high, mine.n) == pytest.approx(
            (theirs.value, theirs.low, theirs.high, theirs.n), nan_ok=True), name


def test_a_buy_states_its_confidence_and_a_hold_or_sell_the_complement() -> None:
    assert stated_probability("BUY", 0.8) == 0.8
    assert stated_probability("HOLD", 0.8) == pytest.approx(0.2)
    assert stated_probability("SELL", 0.6) == pytest.approx(0.4)


def test_the_request_is_the_production_prompt_of_the_rows_own_context() -> None:
    anon, named = signal_row(1, 0.01), signal_row(1, 0.01, named=True)
    llm = FakeLLM(lambda s, _: signal(s, "HOLD", 0.5))
    asyncio.run(runner(llm).run(datasets(signal=[anon], signal_named=[named]), ["signal"]))
    by_symbol = {symbol_of(r): r for r in llm.requests}
    a, n = by_symbol["ASSET_001"], by_symbol["REAL1"]
    assert a.messages == render("signal", anon.context, a.output_schema) and a.context is anon.context
    assert '"as_of":"day 0"' in a.messages[1].content
    assert a.as_of == UNDATED and n.as_of == datetime(2015, 3, 2, 21, tzinfo=UTC)
    assert a.cycle_id != n.cycle_id


def test_failures_are_counted_scored_zero_and_left_out_of_the_metrics() -> None:
    rows = [signal_row(i, r) for i, r in enumerate(RETURNS)]

    def answer(symbol: str, _: int) -> Answer:
        if symbol == "ASSET_000":
            return LLMError("provider down")
        if symbol == "ASSET_002":
            return signal("ASSET_999", "BUY", 0.9)  # answers about another symbol
        return signal(symbol, *CALLS[symbol])

    result = asyncio.run(runner(FakeLLM(answer)).run(datasets(signal=rows), ["signal"])).suites["signal"]
    assert result.failures == 2
    assert result.scores["sig-0000"] == 0.0 and result.scores["sig-0002"] == 0.0
    assert any("provider down" in e for e in result.errors()) and "the answer left out ASSET_002" in result.errors()
    assert result.metrics["failure_rate"].value == pytest.approx(2 / 8) and result.metrics["failure_rate"].n == 8
    assert result.metrics["accuracy"].n == 6
    kept = [i for i in range(8) if i not in (0, 2)]
    hits = [(CALLS[f"ASSET_{i:03d}"][0] == "BUY") == (RETURNS[i] > 0) for i in kept]
    assert result.metrics["accuracy"].value == pytest.approx(np.mean(hits))


def test_calls_refused_by_the_spend_cap_are_failures_not_holds() -> None:
    rows = [trap_row(i) for i in range(3)]
    result = asyncio.run(runner(FakeLLM(lambda s, _: signal(s, "HOLD", 0.9)), cap=0.0).run(
        datasets(traps=rows), ["traps"])).suites["traps"]
    assert result.failures == 3 and result.errors() == [REFUSED]
    assert set(result.scores.values()) == {0.0} and result.cost_usd == 0.0


def test_repeats_answer_every_row_each_time_and_average_the_scores() -> None:
    rows = [signal_row(i, 0.02) for i in range(4)]
    llm = FakeLLM(lambda s, k: signal(s, "BUY" if k % 2 == 0 else "HOLD", 0.7))
    result = asyncio.run(runner(llm, repeats=3).run(datasets(signal=rows), ["signal"])).suites["signal"]
    assert len(llm.requests) == 12 and set(llm.seen.values()) == {3}
    assert result.scores == {r.id: pytest.approx(2 / 3) for r in rows}
    assert result.metrics["accuracy"].n == 12 and result.grid.repeats == 3
    assert [a.repeat for a in result.grid.answers[0]] == [0, 1, 2]


@pytest.mark.parametrize("bound", [1, 3])
def test_no_more_calls_are_in_flight_than_the_concurrency_bound(bound: int) -> None:
    rows = [signal_row(i, 0.01) for i in range(12)]
    llm = FakeLLM(lambda s, _: signal(s, "HOLD", 0.5))
    asyncio.run(runner(llm, concurrency=bound, repeats=2).run(datasets(signal=rows), ["signal"]))
    assert llm.max_in_flight == bound and len(llm.requests) == 24


def test_traps_score_the_share_not_bought() -> None:
    rows = [trap_row(i) for i in range(4)]
    llm = FakeLLM(lambda s, _: signal(s, "BUY" if s == "ASSET_901" else "HOLD", 0.6))
    result = asyncio.run(runner(llm).run(datasets(traps=rows), ["traps"])).suites["traps"]
    assert result.metrics["avoided"].value == pytest.approx(0.75)
    assert result.scores == {"trap-00": 1.0, "trap-01": 0.0, "trap-02": 1.0, "trap-03": 1.0}


SIZES = {"ASSET_000": (0.10, 0.05), "ASSET_001": (0.30, 0.05), "ASSET_002": (0.20, 0.20), "ASSET_003": (0.20, 0.05)}


def test_risk_answers_are_checked_against_the_limits_and_relabelled_with_their_own_stop() -> None:
    rows = [risk_row(0, low=94.0, ret=0.02), risk_row(1), risk_row(2), risk_row(3, gross=0.9)]

    def answer(symbol: str, _: int) -> Answer:
        pos, stop = SIZES[symbol]
        return {"assessments": [{"symbol": symbol, "position_pct": pos, "stop_loss_pct": stop,
                                 "take_profit_pct": None, "reasoning": "r"}]}

    m = asyncio.run(runner(FakeLLM(answer)).run(datasets(risk=rows), ["risk"])).suites["risk"]
    # 1: size over 25%; 2: stop over 15% and a loss at the stop of 4% > 3%; 3: 90% + 20% gross exposure.
    assert m.scores == {"risk-0000": 1.0, "risk-0001": 0.0, "risk-0002": 0.0, "risk-0003": 0.0}
    got = {k: e.value for k, e in m.metrics.items()}
    assert got["sizes_within_limits"] == pytest.approx(0.5) and got["loss_within_limit"] == pytest.approx(0.75)
    assert got["gross_exposure_breach"] == pytest.approx(0.25) and got["limit_breach"] == pytest.approx(0.75)
    assert got["stop_hit_rate"] == pytest.approx(0.25)  # only row 0 dips 6%, through its 5% stop
    assert got["stop_atr_multiple"] == pytest.approx(2.5) and got["tight_stop_share"] == 0.0
    assert got["position_vs_reference"] == pytest.approx(np.mean([0.0, 0.2, 0.1, 0.1]))
    pnl = [0.10 * -0.05, 0.30 * 0.01, 0.20 * 0.01, 0.20 * 0.01]  # row 0 stopped out at -5%
    assert got["pnl_pct_equity"] == pytest.approx(np.mean(pnl))
    assert got["pnl_vs_reference"] == pytest.approx(np.mean(pnl) - np.mean([0.1 * 0.02] + [0.1 * 0.01] * 3))


def test_validator_verdicts_give_rejection_precision_recall_and_lift() -> None:
    returns = [0.03, -0.02, -0.04, 0.01, -0.01, 0.02]
    rows = [validator_row(i, r, rules_approve=i != 2) for i, r in enumerate(returns)]
    approve = {f"ASSET_{i:03d}": a for i, a in enumerate([True, False, False, False, True, True])}
    llm = FakeLLM(lambda s, _: {"verdicts": [{"symbol": s, "approve": approve[s], "confidence_adjustment": 0.0,
                                              "warnings": [], "reasoning": "r"}]})
    result = asyncio.run(runner(llm).run(datasets(validator=rows), ["validator"])).suites["validator"]
    got = {k: e.value for k, e in result.metrics.items()}
    # rejected: 1 (lost), 2 (lost), 3 (won); losers: 1, 2, 4
    assert got["rejection_precision"] == pytest.approx(2 / 3) and got["rejection_recall"] == pytest.approx(2 / 3)
    assert got["approved_win_rate"] == pytest.approx(2 / 3) and got["lift"] == pytest.approx(2 / 3 - 0.5)
    assert got["agreement_with_rules"] == pytest.approx(4 / 6)  # rules reject only row 2
    assert [result.scores[r.id] for r in rows] == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]


def test_the_memorisation_probe_pairs_the_twins_and_sees_names_change_answers() -> None:
    anon = [signal_row(i, 0.03 if i % 2 else -0.03) for i in range(40)]
    named = [signal_row(i, 0.03 if i % 2 else -0.03, named=True) for i in range(40)]
    # Named: the model "knows" every outcome; anonymised: it always buys.
    outcome_of = {f"REAL{i}": i % 2 == 1 for i in range(40)}
    llm = FakeLLM(lambda s, _: signal(s, "BUY" if s.startswith("ASSET") or outcome_of[s] else "HOLD", 0.7))
    run = asyncio.run(runner(llm).run(datasets(signal=anon, signal_named=named), ["signal"]))
    probe = run.memorisation["signal"]
    assert probe.named.dataset == "signal_named" and probe.named.version == "v-signal_named"
    assert probe.difference.difference.value == pytest.approx(0.5) and probe.names_change_scores
    assert probe.answers_changed.value == pytest.approx(0.5)
    assert "may remember" in probe.verdict()
    assert run.versions == {"signal": "v-signal", "signal_named": "v-signal_named"}
    same = asyncio.run(runner(FakeLLM(lambda s, _: signal(s, "BUY", 0.7))).run(
        datasets(signal=anon, signal_named=named), ["signal"])).memorisation["signal"]
    assert same.difference.difference.value == 0.0 and not same.names_change_scores
    assert same.answers_changed.value == 0.0 and "no significant" in same.verdict()


def test_limit_takes_the_first_rows_and_the_same_named_twins() -> None:
    anon = [signal_row(i, 0.01) for i in range(10)]
    named = [signal_row(i, 0.01, named=True) for i in reversed(range(10))]
    run = asyncio.run(runner(FakeLLM(lambda s, _: signal(s, "HOLD", 0.5)), limit=4).run(
        datasets(signal=anon, signal_named=named), ["signal"]))
    assert list(run.suites["signal"].scores) == [f"sig-{i:04d}" for i in range(4)]
    assert list(run.memorisation["signal"].named.scores) == [f"sig-{i:04d}" for i in range(4)]


def test_the_document_keeps_per_row_scores_answers_and_costs() -> None:
    rows = [signal_row(i, r) for i, r in enumerate(RETURNS)]
    run = asyncio.run(runner(FakeLLM(lambda s, _: signal(s, *CALLS[s]))).run(datasets(signal=rows), ["signal"]))
    doc = run.to_dict("fake-1")
    suite = doc["suites"]["signal"]
    assert doc["schema"] == 1 and doc["llm"] == "fake-1" and doc["datasets"] == {"signal": "v-signal"}
    assert set(suite["scores"]) == {r.id for r in rows} and suite["failures"] == 0
    assert set(suite["metrics"]["accuracy"]) >= {"value", "low", "high", "n"}
    assert suite["answers"][0] == {"row": "sig-0000", "repeat": 0, "action": "BUY", "confidence": 0.8,
                                   "latency_ms": 40.0, "tokens": 120, "cost_usd": 0.001}
    assert doc["memorisation"] == {}


def test_config_refuses_nonsense() -> None:
    for bad in ({"repeats": 0}, {"concurrency": 0}, {"limit": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RunConfig(**bad)
