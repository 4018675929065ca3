"""`quorum evals backtest` on the real bars of the test fixture: Quorum, both ablations and every baseline over
the same window, in JSON and as a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from entrypoints.cli import app
from entrypoints.commands.evals_backtest import table

ROOT = Path(__file__).resolve().parents[2]
MARKET = ROOT / "tests" / "fixtures" / "market"
VERDICTS = {"better", "worse", "too short to rank"}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    out = CliRunner().invoke(app, ["evals", "backtest", "--data", str(MARKET / "daily"), "--data",
                                   str(MARKET / "context"), "--months", "2", "--symbols", "4", "--llm", "offline",
                                   "--embedder", "hashing", "--json"])
    assert out.exit_code == 0, out.output
    parsed: dict[str, Any] = json.loads(out.stdout)
    return parsed


def test_every_strategy_and_both_ablations_are_evaluated_on_the_same_window(report: dict[str, Any]) -> None:
    w = report["window"]
    assert w["end"] == "2016-06-30" and w["months"] == 2 and w["llm"] == "offline"
    assert len(w["symbols"]) == 4 and 35 <= w["sessions"] <= 45
    expected = {"quorum", "rules_only", "no_memory", "spy_buy_and_hold", "equal_weight_buy_and_hold", "sma_cross",
                "momentum", "random_entries"} | {f"buy_and_hold:{s}" for s in w["symbols"]}
    assert set(report["strategies"]) == expected
    for name, s in report["strategies"].items():
        assert s["sessions"] == w["sessions"], name
        for key in ("total_return", "annualized_return", "sharpe", "max_drawdown", "psr", "sharpe_ci"):
            assert key in s, (name, key)
    assert set(report["comparisons"]) == expected - {"quorum"}
    for name, c in report["comparisons"].items():
        assert c["verdict"] in (VERDICTS | {"identical"} if name == "rules_only" else VERDICTS), name
        assert c["message"]


def test_an_offline_run_is_its_own_rules_only_ablation_and_the_no_memory_run_recalls_nothing(
        report: dict[str, Any]) -> None:
    s = report["strategies"]
    assert report["comparisons"]["rules_only"]["verdict"] == "identical"
    assert s["rules_only"]["final_equity"] == s["quorum"]["final_equity"]
    assert s["no_memory"]["entries_with_memory_evidence"] == 0 and s["no_memory"]["memory_vetoes"] == 0
    assert "interpretation" in report["comparisons"]["no_memory"]
    assert s["random_entries"]["round_trips"] == s["quorum"]["round_trips"]


def test_the_notes_say_what_the_figures_are_net_of(report: dict[str, Any]) -> None:
    notes = " ".join(report["notes"])
    for said in ("Net of trading costs", "LLM cost", "Dividends not counted", "Survivorship", "too short to rank",
                 "Random entries", "Rules only", "No memory"):
        assert said in notes, said


def test_the_table_has_a_row_per_strategy_with_its_verdict(report: dict[str, Any]) -> None:
    console = Console(record=True, width=200)
    console.print(table(report))
    text = console.export_text()
    assert "verdict vs Quorum" in text and "Sharpe 95 % CI" in text
    assert text.count("\n") >= len(report["strategies"]) + 4
    assert "identical" in text


def test_bad_options_fail_with_a_message(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["evals", "backtest", "--data", str(tmp_path), "--months", "2"])
    assert out.exit_code == 2 and "no .csv" in out.output
    out = CliRunner().invoke(app, ["evals", "backtest", "--llm", "nonsense", "--months", "2"])
    assert out.exit_code == 2 and "--llm" in out.output
    out = CliRunner().invoke(app, ["evals", "backtest", "--embedder", "word2vec", "--months", "2"])
    assert out.exit_code == 2 and "--embedder" in out.output


async def test_a_run_on_models_gets_its_own_rules_only_ablation(monkeypatch: pytest.MonkeyPatch) -> None:
    """With LLM stages that are not offline the rules-only ablation is a run of its own; here the "models" are
    the offline policy under another name, so the ablation must match Quorum to the cent."""
    from application.evals.backtest_eval import EvalParameters
    from entrypoints.commands import evals_backtest
    from entrypoints.settings import load_settings

    monkeypatch.setattr(evals_backtest, "offline", lambda settings: False)
    found = await evals_backtest.backtest_suite(
        load_settings(env="backtest"), data_dirs=[MARKET / "daily", MARKET / "context"], llm="settings", months=1,
        symbols=3, seed=1, params=EvalParameters(random_runs=5))
    rules = found["strategies"]["rules_only"]
    assert "identical_to" not in rules
    assert rules["final_equity"] == found["strategies"]["quorum"]["final_equity"]
    assert found["comparisons"]["rules_only"]["verdict"] in VERDICTS
    assert not any("already offline" in note for note in found["notes"])
