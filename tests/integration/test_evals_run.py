"""`quorum evals run`: the JSON document, unseen data, cassettes, and a litellm model behind a local server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from application.agents import render, system_prompt
from application.evals.results import parse_document
from domain.agents.schemas import SignalBatch
from domain.evals.rows import SignalRow
from entrypoints.cli import app
from entrypoints.commands import evals_run
from tests.integration.openai_stub_server import OpenAIStubServer

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT / "evals" / "datasets"
MARKET = ROOT / "tests" / "fixtures" / "market"
MODEL = "openai/gpt-4o-mini"
KEY = "sk-test-evals-0123456789"
ROWS = 5


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("QUORUM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env, no .quorum of the checkout


def evals(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["evals", "run", *args, "--json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def first_rows(n: int) -> list[SignalRow]:
    lines = (DATASETS / "signal.jsonl").read_text().splitlines()[:n]
    return [SignalRow.model_validate_json(line) for line in lines]


def test_offline_run_gives_a_document_with_the_committed_versions_and_per_row_scores(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    doc = evals("--llm", "offline", "--suite", "signal", "--limit", "50", "--out", str(out))
    manifest = json.loads((DATASETS / "manifest.json").read_text())
    assert doc["schema"] == 1 and doc["llm"] == "offline"
    assert doc["datasets"] == {n: manifest["datasets"][n]["version"] for n in ("signal", "signal_named")}
    suite = doc["suites"]["signal"]
    assert list(suite["scores"]) == [r.id for r in first_rows(50)]
    assert set(suite["scores"].values()) <= {0.0, 1.0} and suite["failures"] == 0
    for name in ("accuracy", "brier", "ece", "precision_at_5", "profit_weighted_accuracy"):
        e = suite["metrics"][name]
        assert e["n"] == 50 and e["low"] <= e["value"] <= e["high"], name
    assert suite["metrics"]["accuracy"]["value"] == pytest.approx(sum(suite["scores"].values()) / 50)
    assert suite["latency_ms"].keys() == {"p50", "p95"} and suite["tokens"] == 0 and suite["cost_usd"] == 0
    probe = doc["memorisation"]["signal"]
    assert probe["answers_changed"]["value"] == 0.0 and probe["names_change_scores"] is False
    assert json.loads(out.read_text()) == doc
    assert len(parse_document(doc).suites["signal"].scores) == 50  # what the regression gate reads


def test_data_builds_the_datasets_in_memory_from_bars_never_seen_and_runs_on_them() -> None:
    doc = evals("--data", str(MARKET / "daily"), "--data", str(MARKET / "context"), "--suite", "signal",
                "--suite", "validator", "--limit", "12")
    committed = json.loads((DATASETS / "manifest.json").read_text())["datasets"]
    assert set(doc["datasets"]) == {"signal", "signal_named", "validator", "validator_named"}
    assert all(doc["datasets"][n] != committed[n]["version"] for n in doc["datasets"])
    assert doc["data"] == [str(MARKET / "daily"), str(MARKET / "context")]
    for name in ("signal", "validator"):
        assert doc["suites"][name]["rows"] == 12 and doc["suites"][name]["failures"] == 0
    assert not any((ROOT / "evals" / "datasets").glob("*.tmp"))


def test_a_missing_backtest_suite_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evals_run, "BACKTEST_MODULE", "entrypoints.commands.no_such_module")
    doc = evals("--suite", "backtest")
    assert doc["suites"] == {"backtest": {"error": "backtest suite not available"}} and doc["datasets"] == {}


def test_bad_options_are_refused() -> None:
    runner = CliRunner()
    bad_suite = runner.invoke(app, ["evals", "run", "--suite", "vibes"])
    assert bad_suite.exit_code == 2 and "--suite must be one of" in bad_suite.output
    bad_llm = runner.invoke(app, ["evals", "run", "--llm", "nonsense-model"])
    assert bad_llm.exit_code == 2 and "unknown model" in bad_llm.output


def scripted_answers(rows: list[SignalRow]) -> tuple[str, dict[str, str]]:
    """One answer naming every row's symbol but the last: BUY the even rows, HOLD the odd ones."""
    actions = {r.context.symbols[0].symbol: "BUY" if i % 2 == 0 else "HOLD" for i, r in enumerate(rows[:-1])}
    proposals = [{"symbol": s, "action": a, "confidence": 0.7, "reasoning": "scripted"} for s, a in actions.items()]
    return json.dumps({"proposals": proposals}), actions


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIStubServer]:
    content, _ = scripted_answers(first_rows(ROWS))
    with OpenAIStubServer(content) as stub:
        yield stub


def with_model(monkeypatch: pytest.MonkeyPatch, server: OpenAIStubServer) -> None:
    monkeypatch.setenv("QUORUM_LLM__API_BASE", server.api_base)
    monkeypatch.setenv("QUORUM_LLM__OPENAI_API_KEY", KEY)
    monkeypatch.setenv("QUORUM_LLM__DAILY_CAP_USD", "1.0")


MODEL_RUN = ("--llm", MODEL, "--suite", "signal", "--limit", str(ROWS), "--no-memorisation")


def test_a_litellm_model_gets_the_production_prompt_and_is_scored_on_its_answers(
        monkeypatch: pytest.MonkeyPatch, server: OpenAIStubServer) -> None:
    with_model(monkeypatch, server)
    server.reset()
    rows = first_rows(ROWS)
    _, actions = scripted_answers(rows)
    doc = evals(*MODEL_RUN)
    suite = doc["suites"]["signal"]
    assert doc["llm"] == MODEL and len(server.requests) == ROWS
    assert {r.model for r in server.requests} == {"gpt-4o-mini"}
    sent = {r.messages[1]["content"] for r in server.requests}
    assert sent == {render("signal", r.context, SignalBatch)[1].content for r in rows}
    assert all(r.messages[0]["content"].startswith(system_prompt("signal", SignalBatch)) for r in server.requests)
    expected = {r.id: float((actions[r.context.symbols[0].symbol] == "BUY") == r.outcome.win) for r in rows[:-1]}
    assert suite["scores"] == {**expected, rows[-1].id: 0.0}
    assert suite["failures"] == 1 and suite["errors"] == [f"the answer left out {rows[-1].context.symbols[0].symbol}"]
    assert suite["tokens"] > 0 and suite["cost_usd"] > 0 and suite["latency_ms"]["p50"] > 0


def test_cassettes_recorded_once_replay_the_same_scores_offline_for_free(
        monkeypatch: pytest.MonkeyPatch, server: OpenAIStubServer, tmp_path: Path) -> None:
    with_model(monkeypatch, server)
    server.reset()
    cassettes = tmp_path / "cassettes"
    recorded = evals(*MODEL_RUN, "--cassettes", str(cassettes), "--record")
    assert len(server.requests) == ROWS and len(list((cassettes / "signal").glob("*.json"))) == ROWS
    monkeypatch.delenv("QUORUM_LLM__OPENAI_API_KEY")
    monkeypatch.setenv("QUORUM_LLM__API_BASE", "http://127.0.0.1:9/v1")  # nothing listens there
    replayed = evals(*MODEL_RUN, "--cassettes", str(cassettes), "--replay")
    assert len(server.requests) == ROWS  # no call went out
    a, b = recorded["suites"]["signal"], replayed["suites"]["signal"]
    assert a["scores"] == b["scores"] and a["failures"] == b["failures"] == 1
    assert {k: v["value"] for k, v in a["metrics"].items()} == {k: v["value"] for k, v in b["metrics"].items()}
    assert b["tokens"] == a["tokens"] and b["cost_usd"] == 0 and a["cost_usd"] > 0
    assert replayed["cassettes"] == {"dir": str(cassettes), "mode": "replay"}
