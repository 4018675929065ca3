"""`quorum evals bakeoff` against three local OpenAI-compatible servers that answer differently (bullish, cautious
and slow, flaky), then replayed from the cassettes with the servers stopped; and a backtest per model."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from entrypoints.cli import app
from tests.integration.persona_llm_server import BULLISH, CAUTIOUS, FLAKY, InFlight, Persona, PersonaServer

ROOT = Path(__file__).resolve().parents[2]
MARKET = ROOT / "tests" / "fixtures" / "market"
KEY = "sk-test-bakeoff-0123456789"
MINI, FOUR_O, TURBO = "openai/gpt-4o-mini", "openai/gpt-4o", "openai/gpt-3.5-turbo"
ROWS, REPEATS, BOUND = 20, 3, 6
SUITES = ("signal", "traps")
DECISIONS = ROWS * len(SUITES) * REPEATS


@pytest.fixture(scope="module")
def env() -> Iterator[pytest.MonkeyPatch]:
    import os

    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("QUORUM_"):
                mp.delenv(name)
        mp.setenv("QUORUM_LLM__OPENAI_API_KEY", KEY)
        mp.setenv("QUORUM_LLM__MAX_RETRIES", "0")  # an invalid answer fails at once (no back-off sleeps)
        yield mp


def bakeoff(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["evals", "bakeoff", *args, "--json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def model_args(servers: dict[str, PersonaServer]) -> list[str]:
    return [a for model, s in servers.items() for a in ("--model", f"{model}={s.api_base}")]


@dataclass
class Bakeoff:
    recorded: dict[str, Any]
    replayed: dict[str, Any]
    servers: dict[str, PersonaServer]
    gauge: InFlight
    requests: dict[str, int]
    cassettes: Path
    samples: tuple[Path, Path]


@pytest.fixture(scope="module")
def run(env: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Bakeoff:
    tmp = tmp_path_factory.mktemp("bakeoff")
    env.chdir(tmp)
    gauge = InFlight()
    personas: dict[str, Persona] = {MINI: BULLISH, FOUR_O: CAUTIOUS, TURBO: FLAKY}
    servers = {m: PersonaServer("", persona=p, gauge=gauge).start() for m, p in personas.items()}
    cassettes = tmp / "cassettes"
    common = [*(a for s in SUITES for a in ("--suite", s)), "--limit", str(ROWS), "--repeats", str(REPEATS),
              "--concurrency", str(BOUND), "--cassettes", str(cassettes), "--max-cost", "5", "--seed", "3"]
    try:
        recorded = bakeoff(*model_args(servers), *common, "--sample-out", str(tmp / "recorded"))
    finally:
        for s in servers.values():
            s.stop()
    requests = {m: len(s.requests) for m, s in servers.items()}
    env.setenv("QUORUM_LLM__OPENAI_API_KEY", "sk-wrong-key-nobody-listens")
    replayed = bakeoff(*model_args(servers), *common, "--replay", "--sample-out", str(tmp / "replayed"))
    assert {m: len(s.requests) for m, s in servers.items()} == requests  # the replay asked nobody
    return Bakeoff(recorded, replayed, servers, gauge, requests, cassettes, (tmp / "recorded", tmp / "replayed"))


def test_every_model_answers_every_row_of_every_repeat_under_one_bound(run: Bakeoff) -> None:
    assert run.requests == {MINI: DECISIONS, FOUR_O: DECISIONS, TURBO: DECISIONS}  # no retries asked for
    assert 2 <= run.gauge.most <= BOUND  # the models' calls overlapped, never beyond the one bound
    assert run.recorded["concurrency"] == BOUND and run.recorded["repeats"] == REPEATS


def test_each_model_has_its_metrics_failures_latency_tokens_and_cost(run: Bakeoff) -> None:
    from adapters.llm.litellm_adapter import cost_usd

    models = run.recorded["models"]
    assert list(models) == [MINI, FOUR_O, TURBO]
    for name, m in models.items():
        assert m["decisions"] == DECISIONS and set(m["suites"]) == set(SUITES)
        signal = m["suites"]["signal"]
        assert signal["rows"] == ROWS and signal["repeats"] == REPEATS
        acc = signal["metrics"]["accuracy"]
        assert acc["low"] <= acc["value"] <= acc["high"] and 0 < acc["n"] <= ROWS * REPEATS
        assert 0 < m["latency_ms"]["p50"] <= m["latency_ms"]["p95"]
        assert m["tokens"]["prompt"] > 0 and m["tokens"]["completion"] > 0
        priced = cost_usd(name, m["tokens"]["prompt"], m["tokens"]["completion"])
        assert priced is not None and m["cost_usd"] == pytest.approx(priced, rel=1e-6)  # litellm's price table
        assert m["cost_per_decision_usd"] == pytest.approx(m["cost_usd"] / DECISIONS)
        assert run.recorded["prices"][name]["input_cost_per_token"] > 0
    assert models[FOUR_O]["cost_per_decision_usd"] > models[MINI]["cost_per_decision_usd"]  # dearer per token
    assert models[FOUR_O]["latency_ms"]["p50"] >= CAUTIOUS.delay_s * 1000  # it waits before answering
    assert models[MINI]["failures"] == models[FOUR_O]["failures"] == 0
    flaky = models[TURBO]
    assert flaky["failures"] == DECISIONS // FLAKY.invalid_every and flaky["failure_rate"] == pytest.approx(1 / 3)
    assert "not valid JSON" in flaky["suites"]["signal"]["errors"][0]
    assert flaky["suites"]["signal"]["metrics"]["failure_rate"]["value"] > 0


def verdicts(document: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(c["suite"], c["a"], c["b"]): c for c in document["comparisons"]}


def test_the_paired_comparison_names_the_better_model(run: Bakeoff) -> None:
    found = verdicts(run.recorded)
    assert set(found) == {(s, a, b) for s in (*SUITES, "all")
                          for a, b in ((MINI, FOUR_O), (MINI, TURBO), (FOUR_O, TURBO))}
    traps = found[("traps", MINI, FOUR_O)]
    assert traps["verdict"] == "B better" and traps["winner"] == FOUR_O  # the cautious one avoids the traps
    assert traps["difference"]["low"] > 0 and traps["b_score"] > traps["a_score"]
    assert found[("traps", FOUR_O, TURBO)]["verdict"] == "A better"
    neither = found[("traps", MINI, TURBO)]  # both buy every trap they answer
    assert neither["verdict"] == "no detectable difference" and neither["winner"] is None
    assert found[("signal", MINI, TURBO)]["winner"] == MINI  # the same calls, but a third of them failed


def test_the_replay_with_the_servers_stopped_gives_identical_results_for_nothing(run: Bakeoff) -> None:
    a, b = run.recorded, run.replayed
    assert b["cassettes"]["mode"] == "replay" and a["cassettes"]["mode"] == "record"
    for name in a["models"]:
        mine, theirs = dict(a["models"][name]), dict(b["models"][name])
        assert mine.pop("spent_usd") == mine["cost_usd"] > 0 and theirs.pop("spent_usd") == 0.0
        assert mine == theirs, name  # metrics, scores, failures and their errors, latency, tokens, cost
    assert a["comparisons"] == b["comparisons"]
    for file in ("sample.csv", "key.json"):
        assert (run.samples[0] / file).read_bytes() == (run.samples[1] / file).read_bytes(), file


def test_every_answer_and_failure_is_a_cassette_of_its_model_and_repeat(run: Bakeoff) -> None:
    for model in (MINI, FOUR_O, TURBO):
        base = run.cassettes / model.replace("/", "-")
        assert sorted(p.name for p in base.iterdir()) == [f"repeat-{k}" for k in range(1, REPEATS + 1)]
        answers = list(base.glob("repeat-*/signal/*.json"))
        failures = [p for p in answers if p.name.endswith(".failed.json")]
        assert len(answers) == DECISIONS and (len(failures) > 0) == (model == TURBO)


def test_the_blind_sample_is_20_rated_decisions_without_model_names(run: Bakeoff) -> None:
    rows_file, key_file = run.samples[0] / "sample.csv", run.samples[0] / "key.json"
    text = rows_file.read_text(encoding="utf-8")
    for name in ("gpt-4o", "gpt-3.5", "openai"):
        assert name not in text.lower(), name
    rows = list(csv.DictReader(text.splitlines()))
    key = json.loads(key_file.read_text(encoding="utf-8"))
    assert len(rows) == 20 and {r["model"] for r in rows} == set(key["letters"]) == {"A", "B", "C"}
    assert set(key["letters"].values()) == {MINI, FOUR_O, TURBO}
    assert all(r["rating"] == r["would_act"] == r["notes"] == "" and r["reasoning"] for r in rows)
    assert {r["suite"] for r in rows} == set(SUITES)
    assert {i["outcome"] for i in key["items"] if i["suite"] == "signal"} == {"won", "lost"}
    assert run.recorded["sample"]["rows"] == str(rows_file)


def test_a_backtest_per_model_over_the_same_window_with_its_cost_per_trade_replays_identically(
        env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.chdir(tmp_path)
    env.setenv("QUORUM_LLM__OPENAI_API_KEY", KEY)
    servers = {MINI: PersonaServer("", persona=BULLISH).start(), FOUR_O: PersonaServer("", persona=CAUTIOUS).start()}
    args = [*model_args(servers), "--model", "offline", "--suite", "traps", "--limit", "4", "--repeats", "1",
            "--backtest", "--months", "1", "--symbols", "3", "--data", str(MARKET / "daily"), "--data",
            str(MARKET / "context"), "--cassettes", str(tmp_path / "cassettes"), "--max-cost", "5"]
    try:
        recorded = bakeoff(*args)
    finally:
        for s in servers.values():
            s.stop()
    backtests = {m: recorded["models"][m]["backtest"] for m in (MINI, FOUR_O, "offline")}
    windows = [b["window"] for b in backtests.values()]
    assert windows[0] == windows[1] == windows[2] and len(windows[0]["symbols"]) == 3
    bullish = backtests[MINI]
    assert bullish["round_trips"] > 0 and bullish["llm_cost_usd"] > 0
    assert bullish["cost_per_trade_usd"] == pytest.approx(bullish["llm_cost_usd"] / bullish["round_trips"])
    assert backtests["offline"]["llm_cost_usd"] == 0 and "total_return" in backtests["offline"]
    assert any("not a bake-off" in n for n in recorded["notes"])
    replayed = bakeoff(*args, "--replay")
    assert {m: replayed["models"][m]["backtest"] for m in backtests} == backtests


@pytest.mark.parametrize(("args", "said"), [
    (["--model", MINI], "at least two models"),
    (["--model", MINI, "--model", MINI], "each model once"),
    (["--model", MINI, "--model", "nonsense-model"], "unknown model"),
    (["--model", MINI, "--model", f"{FOUR_O}=127.0.0.1:8000"], "http(s) URL"),
    (["--model", MINI, "--model", FOUR_O, "--suite", "backtest"], "--backtest"),
])
def test_bad_options_are_refused_before_anything_runs(args: list[str], said: str) -> None:
    result = CliRunner().invoke(app, ["evals", "bakeoff", *args])
    assert result.exit_code == 2 and said in result.output
