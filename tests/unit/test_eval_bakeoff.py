"""The bake-off: paired verdicts, one bound on calls in flight across models, per-repeat answers, per-model
figures, cost per trade, the blind sample, and failures recorded and replayed like answers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapters.llm.failure_cassette import FailureCassette
from adapters.llm.litellm_adapter import LLMCallFailedError
from adapters.llm.replay import ReplayLLM
from application.agents import render
from application.evals.bakeoff import (
    BakeoffConfig,
    Contender,
    compare_models,
    model_summary,
    pairwise,
    run_bakeoff,
)
from application.evals.bakeoff_report import BakeoffReport, backtest_summary, cost_per_trade
from application.evals.blind_sample import COLUMNS, RATING_COLUMNS, blind_sample
from application.evals.grid import Resampling
from application.evals.run_results import EvalRun
from application.evals.runner import EvalDatasets
from application.evals.suites import request_time
from domain.agents.schemas import SignalBatch
from domain.errors import LLMError
from domain.ports.llm import Decision, LLMRequest, LLMUsage, OutputT
from tests.unit.test_eval_runner import signal_row, symbol_of, trap_row

FAST = Resampling(n_resamples=400)
RETURNS = [0.04, -0.03, 0.02, -0.05, 0.01, -0.02, 0.06, -0.01, 0.03, -0.04]


class Gauge:
    """Calls in flight, across every LLM that shares it."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0


Policy = Callable[[str, int], tuple[str, str]]
"""(symbol, repeat) -> (action, reasoning)."""


class PolicyLLM:
    """Answers a signal request from `policy`; counts calls in flight on a shared gauge."""

    provider = "fake"

    def __init__(self, policy: Policy, gauge: Gauge | None = None, *, cost: float = 0.001,
                 latency: float = 40.0) -> None:
        self.policy = policy
        self.gauge = gauge or Gauge()
        self.cost = cost
        self.latency = latency
        self.cycle_ids: list[str] = []

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        self.gauge.now += 1
        self.gauge.most = max(self.gauge.most, self.gauge.now)
        try:
            for _ in range(5):
                await asyncio.sleep(0)  # let every task that can start, start
            self.cycle_ids.append(str(request.cycle_id))
            symbol = symbol_of(request)
            action, why = self.policy(symbol, int(str(request.cycle_id).rsplit(":", 1)[1]))
            out = {"proposals": [{"symbol": symbol, "action": action, "confidence": 0.7, "reasoning": why}]}
            usage = LLMUsage(provider="fake", model="fake", prompt_tokens=100, completion_tokens=20,
                             cost_usd=self.cost, latency_ms=self.latency)
            return Decision(request.output_schema.model_validate(out), usage)
        finally:
            self.gauge.now -= 1


def data(n: int = len(RETURNS)) -> EvalDatasets:
    return EvalDatasets({"signal": [signal_row(i, RETURNS[i % len(RETURNS)]) for i in range(n)],
                         "traps": [trap_row(i) for i in range(6)]}, {"signal": "v-s", "traps": "v-t"})


def always(action: str, why: str = "because") -> Policy:
    return lambda symbol, repeat: (action, why)


def bake(*contenders: Contender, repeats: int = 3, concurrency: int = 4, suites: tuple[str, ...] = ("signal", "traps"),
         rows: int = len(RETURNS)) -> dict[str, EvalRun]:
    config = BakeoffConfig(repeats=repeats, concurrency=concurrency, max_cost_usd=10.0, resampling=FAST)
    return asyncio.run(run_bakeoff(list(contenders), data(rows), suites, config))  # type: ignore[arg-type]


# --- paired comparison ---


def test_the_paired_comparison_names_the_model_that_scores_higher_on_the_same_rows() -> None:
    rng = np.random.default_rng(3)
    a = {f"r{i}": float(x) for i, x in enumerate(rng.random(60) < 0.4)}
    b = {k: 1.0 if v == 1.0 or i % 2 == 0 else 0.0 for i, (k, v) in enumerate(a.items())}  # a's hits and more
    better_b = compare_models("signal", "m1", a, "m2", b, FAST)
    assert better_b.verdict == "B better" and better_b.winner == "m2"
    assert better_b.paired.difference.low > 0 and "m2 better than m1" in better_b.sentence()
    better_a = compare_models("signal", "m2", b, "m1", a, FAST)
    assert better_a.verdict == "A better" and better_a.winner == "m2"
    doc = better_b.to_dict()
    assert doc["a_score"] == pytest.approx(np.mean(list(a.values()))) and doc["winner"] == "m2"
    assert doc["b_score"] - doc["a_score"] == pytest.approx(doc["difference"]["value"])


def test_equal_or_merely_noisy_scores_give_no_detectable_difference() -> None:
    same = {f"r{i}": float(i % 2) for i in range(40)}
    tie = compare_models("traps", "m1", same, "m2", dict(same), FAST)
    assert tie.verdict == "no detectable difference" and tie.winner is None
    assert tie.paired.difference.value == 0.0
    swapped = {f"r{i}": float((i + 1) % 2) for i in range(40)}  # as good, on other rows
    noisy = compare_models("traps", "m1", same, "m2", swapped, FAST)
    spread = noisy.paired.difference
    assert noisy.verdict == "no detectable difference" and spread.low < 0 < spread.high


def test_rows_are_paired_by_id_and_a_pair_with_no_common_row_is_refused() -> None:
    a = {"r1": 0.0, "r2": 0.0, "r3": 0.0}
    b = {"r3": 1.0, "r2": 1.0, "r9": 0.0}
    assert compare_models("signal", "a", a, "b", b, FAST).paired.difference.n == 2
    with pytest.raises(ValueError, match="share no row"):
        compare_models("signal", "a", {"x": 1.0}, "b", {"y": 1.0}, FAST)


def test_every_pair_is_compared_on_every_suite_and_on_all_rows_together() -> None:
    runs = bake(Contender("buyer", [PolicyLLM(always("BUY"))]), Contender("holder", [PolicyLLM(always("HOLD"))]),
                Contender("seller", [PolicyLLM(always("SELL"))]))
    found = {(c.suite, c.a, c.b): c for c in pairwise(runs, FAST)}
    pairs = {("buyer", "holder"), ("buyer", "seller"), ("holder", "seller")}
    assert set(found) == {(s, a, b) for s in ("signal", "traps", "all") for a, b in pairs}
    assert found[("traps", "buyer", "holder")].verdict == "B better"  # holding avoids every trap
    assert found[("traps", "holder", "seller")].verdict == "no detectable difference"  # neither buys
    assert found[("all", "buyer", "holder")].paired.difference.n == len(RETURNS) + 6


# --- one bound on calls in flight, across models ---


@pytest.mark.parametrize("bound", [1, 2, 5])
def test_calls_in_flight_never_exceed_the_one_bound_shared_by_every_model(bound: int) -> None:
    gauge = Gauge()
    llms = [PolicyLLM(always(a), gauge) for a in ("BUY", "HOLD", "SELL")]
    runs = bake(*(Contender(f"m{i}", [llm]) for i, llm in enumerate(llms)), concurrency=bound)
    assert gauge.most == bound  # reached (the models run at once), never exceeded
    assert all(len(llm.cycle_ids) == 3 * (len(RETURNS) + 6) for llm in llms) and len(runs) == 3


def test_each_repeat_is_asked_of_its_own_llm_so_its_answers_are_recorded_apart() -> None:
    per_repeat = [PolicyLLM(always("BUY" if k == 1 else "HOLD")) for k in range(3)]
    runs = bake(Contender("split", per_repeat), Contender("one", [PolicyLLM(always("HOLD"))]), suites=("signal",))
    for k, llm in enumerate(per_repeat):
        assert len(llm.cycle_ids) == len(RETURNS) and all(c.endswith(f":{k}") for c in llm.cycle_ids)
    grid = runs["split"].suites["signal"].grid
    assert [[a.action for a in line] for line in grid.answers] == [["HOLD", "BUY", "HOLD"]] * len(RETURNS)
    assert model_summary(runs["split"], replayed=False)["suites"]["signal"]["repeat_agreement"] == 0.0
    assert model_summary(runs["one"], replayed=False)["suites"]["signal"]["repeat_agreement"] == 1.0


def test_a_bakeoff_needs_two_distinct_models_with_an_llm_per_repeat_or_one() -> None:
    one = Contender("a", [PolicyLLM(always("BUY"))])
    with pytest.raises(ValueError, match="at least two"):
        bake(one)
    with pytest.raises(ValueError, match="named twice"):
        bake(one, Contender("a", [PolicyLLM(always("BUY"))]))
    with pytest.raises(ValueError, match="2 LLMs for 3 repeats"):
        bake(one, Contender("b", [PolicyLLM(always("BUY")), PolicyLLM(always("BUY"))]))


# --- per-model figures ---


class SometimesFails(PolicyLLM):
    """Fails every third call (after paying for it); answered calls take `latency` ms."""

    calls = 0

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        self.calls += 1
        if self.calls % 3 == 0:
            raise LLMCallFailedError("bad JSON", agent="signal", model="fake", attempts=1, retryable=True,
                                     usage=LLMUsage("fake", "fake", prompt_tokens=100, completion_tokens=50,
                                                    cost_usd=0.002, latency_ms=9999.0))
        return await super().complete(request)


def test_model_figures_count_failed_calls_in_tokens_and_cost_but_not_in_latency() -> None:
    runs = bake(Contender("steady", [PolicyLLM(always("HOLD"), latency=40.0)]),
                Contender("flaky", [SometimesFails(always("HOLD"), latency=10.0)]), suites=("signal",), repeats=3)
    flaky = model_summary(runs["flaky"], replayed=False)
    decisions = 3 * len(RETURNS)
    failed = decisions // 3
    assert flaky["decisions"] == decisions and flaky["failures"] == failed
    assert flaky["failure_rate"] == pytest.approx(failed / decisions)
    assert flaky["tokens"] == {"prompt": 100 * decisions, "completion": 20 * (decisions - failed) + 50 * failed}
    assert flaky["cost_usd"] == pytest.approx(0.001 * (decisions - failed) + 0.002 * failed)
    assert flaky["cost_per_decision_usd"] == pytest.approx(flaky["cost_usd"] / decisions)
    assert flaky["latency_ms"] == {"p50": 10.0, "p95": 10.0}  # the failures' time is not an answer's latency
    assert flaky["spent_usd"] == flaky["cost_usd"]
    replayed = model_summary(runs["flaky"], replayed=True)
    assert replayed["spent_usd"] == 0.0 and replayed["cost_usd"] == flaky["cost_usd"]


# --- backtest: cost per executed trade ---


def test_cost_per_trade_is_the_llm_cost_over_the_round_trips_and_undefined_without_one() -> None:
    assert cost_per_trade(0.12, 4) == pytest.approx(0.03)
    assert cost_per_trade(0.12, 0) is None
    report = {"window": {"start": "2016-05-31", "end": "2016-06-30", "sessions": 23, "symbols": ["A", "B"]},
              "strategies": {"quorum": {"total_return": 0.01, "sharpe": 0.5, "round_trips": 5, "fills": 11,
                                        "llm_cost_usd": 0.35, "final_equity": "101000"}},
              "comparisons": {"spy_buy_and_hold": {"verdict": "too short to rank"}}}
    got = backtest_summary(report)
    assert got["cost_per_trade_usd"] == pytest.approx(0.07) and got["round_trips"] == 5
    assert got["verdicts"] == {"spy_buy_and_hold": "too short to rank"} and got["window"]["sessions"] == 23
    assert backtest_summary({"error": "no stock"}) == {"error": "no stock"}


def test_the_document_carries_each_models_backtest_and_warns_when_repeats_are_too_few() -> None:
    runs = bake(Contender("a", [PolicyLLM(always("BUY"))]), Contender("b", [PolicyLLM(always("HOLD"))]),
                suites=("traps",), repeats=1)
    trades = {"strategies": {"quorum": {"round_trips": 2, "llm_cost_usd": 0.5}}, "comparisons": {}}
    doc = BakeoffReport(runs, pairwise(runs, FAST), {"a": trades, "b": {"error": "boom"}}, repeats=1,
                        resampling=FAST).to_dict({"limit": None})
    assert doc["models"]["a"]["backtest"]["cost_per_trade_usd"] == pytest.approx(0.25)
    assert doc["models"]["b"]["backtest"] == {"error": "boom"}
    assert any("not a bake-off" in n for n in doc["notes"]) and doc["datasets"] == {"traps": "v-t"}
    json.dumps(doc, allow_nan=False)


# --- the blind sample ---


def sample_runs(seed_words: str = "plain") -> dict[str, EvalRun]:
    def alternate(name: str) -> Policy:
        return lambda symbol, repeat: ("BUY" if (int(symbol[-3:]) + repeat) % 2 else "HOLD",
                                       f"I am {name}, {seed_words}: {symbol} looks fine")

    return bake(Contender("openai/gpt-4o-mini", [PolicyLLM(alternate("gpt-4o-mini"))]),
                Contender("anthropic/claude-3-5-haiku", [PolicyLLM(alternate("Claude-3-5-Haiku by Anthropic"))]),
                Contender("offline", [PolicyLLM(alternate("the offline policy"))]))


def test_the_sample_has_20_decisions_stratified_by_suite_outcome_and_model() -> None:
    runs = sample_runs()
    sample = blind_sample(runs, 20, seed=11)
    assert len(sample.rows) == 20 and all(list(r) == list(COLUMNS) for r in sample.rows)
    assert all(r[c] == "" for r in sample.rows for c in RATING_COLUMNS)
    assert [r["item"] for r in sample.rows] == [str(i) for i in range(1, 21)]
    strata = sample.key["strata"]
    # signal rows won and lost, traps lost, for each of 3 models: 9 strata, each taken twice or three times
    assert len(strata) == 9 and set(strata.values()) <= {2, 3} and sum(strata.values()) == 20
    per_model = {letter: sum(v for k, v in strata.items() if k.endswith(f"/{letter}")) for letter in "ABC"}
    assert max(per_model.values()) - min(per_model.values()) <= 1
    items = sample.key["items"]
    for row, item in zip(sample.rows, items, strict=True):
        assert sample.key["letters"][row["model"]] == item["model"] and row["suite"] == item["suite"]
        assert item["outcome"] == ("won" if item["realised_return"] > 0 else "lost")


def test_no_model_or_provider_name_is_left_in_the_sample() -> None:
    sample = blind_sample(sample_runs(), 20, seed=11)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerows(sample.rows)
    text = buffer.getvalue().lower()
    for name in ("gpt-4o-mini", "claude-3-5-haiku", "openai", "anthropic", "offline"):
        assert name not in text, name
    assert "i am [model]" in text
    assert set(sample.key["letters"].values()) == {"openai/gpt-4o-mini", "anthropic/claude-3-5-haiku", "offline"}


def test_the_same_seed_gives_the_same_sample_and_another_seed_another() -> None:
    runs = sample_runs()
    first, again, other = blind_sample(runs, 20, seed=5), blind_sample(sample_runs(), 20, seed=5), \
        blind_sample(runs, 20, seed=6)
    assert first.rows == again.rows and first.key == again.key
    assert (first.rows, first.key["letters"]) != (other.rows, other.key["letters"])


def test_failures_are_never_sampled_and_a_small_pool_gives_what_it_has() -> None:
    runs = bake(Contender("a", [SometimesFails(always("HOLD"))]), Contender("b", [PolicyLLM(always("BUY"))]),
                suites=("traps",), repeats=1)
    sample = blind_sample(runs, 50, seed=0)
    valid = sum(1 for run in runs.values() for a in run.suites["traps"].answers if a.ok)
    assert len(sample.rows) == valid == 6 + 4 and all(r["reasoning"] for r in sample.rows)
    with pytest.raises(ValueError, match="n must be"):
        blind_sample(runs, 0)


# --- failures recorded and replayed like answers ---


class Scripted:
    """An LLM answering from a list: a dict is an answer, an exception is raised."""

    provider = "openai"

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        got = self.answers.pop(0)
        if isinstance(got, Exception):
            raise got
        usage = LLMUsage("openai", "openai/gpt-4o-mini", prompt_tokens=10, completion_tokens=5, cost_usd=0.01,
                         latency_ms=12.0)
        return Decision(request.output_schema.model_validate(got), usage, raw=json.dumps(got))


def request() -> LLMRequest[SignalBatch]:
    row = signal_row(1, 0.01)
    return LLMRequest(agent="signal", messages=render("signal", row.context, SignalBatch), output_schema=SignalBatch,
                      context=row.context, as_of=request_time(row), cycle_id="eval:signal:sig-0001:0")


def cassette(tmp_path: Path, mode: str, inner: Scripted | None = None) -> FailureCassette:
    return FailureCassette(ReplayLLM(tmp_path, {"default": "openai/gpt-4o-mini"}, mode=mode,  # type: ignore[arg-type]
                                     inner=inner, report_original_cost=True))


def test_a_failure_is_recorded_and_replayed_with_its_message_tokens_and_cost(tmp_path: Path) -> None:
    paid = LLMUsage("openai", "openai/gpt-4o-mini", prompt_tokens=300, completion_tokens=40, cost_usd=0.02,
                    latency_ms=80.0)
    failure = LLMCallFailedError("signal agent: gave up; last error: invalid_json", agent="signal",
                                 model="openai/gpt-4o-mini", attempts=2, retryable=True, usage=paid)
    recorder = cassette(tmp_path, "record", Scripted(failure))
    with pytest.raises(LLMCallFailedError):
        asyncio.run(recorder.complete(request()))
    assert recorder.failure_path(request()).is_file() and not recorder.replay.path_for(request()).exists()
    with pytest.raises(LLMCallFailedError) as replayed:
        asyncio.run(cassette(tmp_path, "replay").complete(request()))
    got = replayed.value
    assert str(got) == str(failure) and got.attempts == 2
    assert (got.usage.prompt_tokens, got.usage.completion_tokens, got.usage.cost_usd) == (300, 40, 0.02)


def failed(message: str, *, retryable: bool = True) -> LLMCallFailedError:
    return LLMCallFailedError(message, agent="signal", model="openai/gpt-4o-mini", attempts=1, retryable=retryable,
                              usage=LLMUsage("openai", "openai/gpt-4o-mini"))


ANSWER = {"proposals": [{"symbol": "ASSET_001", "action": "BUY", "confidence": 0.6, "reasoning": "up"}]}


def test_recording_an_answer_replaces_a_recorded_failure_and_the_other_way_round(tmp_path: Path) -> None:
    asyncio.run(_raises(cassette(tmp_path, "record", Scripted(failed("timeout")))))
    asyncio.run(cassette(tmp_path, "record", Scripted(ANSWER)).complete(request()))
    replayer = cassette(tmp_path, "replay")
    assert not replayer.failure_path(request()).exists()
    assert asyncio.run(replayer.complete(request())).output.proposals[0].action == "BUY"
    asyncio.run(_raises(cassette(tmp_path, "record", Scripted(failed("timeout again")))))
    assert not replayer.replay.path_for(request()).exists()
    with pytest.raises(LLMCallFailedError, match="timeout again"):
        asyncio.run(replayer.complete(request()))


def test_a_failure_of_the_setup_is_not_recorded_and_keeps_the_recorded_answer(tmp_path: Path) -> None:
    asyncio.run(cassette(tmp_path, "record", Scripted(ANSWER)).complete(request()))
    for setup in (failed("401 Incorrect API key", retryable=False), LLMError("no LLM model configured")):
        got = asyncio.run(_raises(cassette(tmp_path, "record", Scripted(setup))))
        assert got is setup
    replayer = cassette(tmp_path, "replay")
    assert not replayer.failure_path(request()).exists()
    assert asyncio.run(replayer.complete(request())).output.proposals[0].action == "BUY"


async def _raises(llm: FailureCassette) -> LLMError:
    try:
        await llm.complete(request())
    except LLMError as exc:
        return exc
    raise AssertionError("the call did not fail")
