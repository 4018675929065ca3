"""The baseline key changes with every input an eval result depends on, and with nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.llm.price_table import price_entries, price_entry
from application.agents import ROLES
from application.evals.baseline import agent_models, baseline_key, dataset_versions, prompt_templates
from application.evals.results import parse_document
from entrypoints.wiring.evals import key_of

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = {"signal": "be careful", "risk": "size it", "validator": "check it"}
MODELS = dict.fromkeys(("signal", "risk", "validator"), "offline")
DATASETS = {"signal": "44905196b5c0", "traps": "d915d4c9b433"}


def key(**changes: object) -> str:
    parts: dict[str, object] = {"prompts": PROMPTS, "models": MODELS, "prices": {"offline": "offline"},
                                "datasets": DATASETS, **changes}
    return baseline_key(**parts).key  # type: ignore[arg-type]


def test_the_key_is_stable_and_ignores_order() -> None:
    assert key() == key(prompts=dict(reversed(PROMPTS.items())), datasets=dict(reversed(DATASETS.items())))
    assert key().startswith("bk1-") and len(key()) == 4 + 16


@pytest.mark.parametrize("changes", [
    {"prompts": {**PROMPTS, "risk": "size it bigger"}},
    {"models": {**MODELS, "signal": "openai/gpt-4o-mini"}},
    {"models": {**MODELS, "signal": "openai/gpt-4o-mini"}, "prices": {"openai/gpt-4o-mini": {"input": 1e-7}}},
    {"datasets": {**DATASETS, "signal": "000000000000"}},
    {"datasets": {"signal": DATASETS["signal"]}},
])
def test_any_input_changes_the_key(changes: dict[str, object]) -> None:
    assert key(**changes) != key()


def test_a_price_change_of_a_model_changes_the_key() -> None:
    models = {**MODELS, "signal": "openai/gpt-4o-mini"}
    cheap = key(models=models, prices={"openai/gpt-4o-mini": {"input_cost_per_token": 1.5e-7}, "offline": "offline"})
    dear = key(models=models, prices={"openai/gpt-4o-mini": {"input_cost_per_token": 3e-7}, "offline": "offline"})
    unpriced = key(models=models, prices={"offline": "offline"})
    assert len({cheap, dear, unpriced}) == 3


def test_prompt_templates_are_the_agents_system_prompts_and_context_schemas() -> None:
    templates = prompt_templates()
    assert set(templates) == {"signal", "risk", "validator"}
    for agent, text in templates.items():
        assert ROLES[agent] in text and '"proposals"' in templates["signal"]
        assert "user message" in text
    assert prompt_templates() == templates


def test_agent_models_of_a_runs_llm() -> None:
    assert agent_models("offline") == MODELS
    assert agent_models("openai/gpt-4o-mini") == dict.fromkeys(MODELS, "openai/gpt-4o-mini")
    assert agent_models({"signal": "openai/a", "risk": "offline"}) == {"signal": "openai/a", "risk": "offline",
                                                                       "validator": "offline"}


def test_dataset_versions_come_from_the_manifest() -> None:
    manifest = json.loads((ROOT / "evals" / "datasets" / "manifest.json").read_text())
    versions = dataset_versions(manifest)
    assert versions["signal"] == manifest["datasets"]["signal"]["version"] and len(versions) == len(
        manifest["datasets"])
    with pytest.raises(ValueError, match="datasets"):
        dataset_versions({})


def test_litellm_price_entries_of_models() -> None:
    assert price_entry("offline") == "offline"
    entry = price_entry("openai/gpt-4o-mini")
    assert isinstance(entry, dict) and entry["input_cost_per_token"] > 0 and entry["output_cost_per_token"] > 0
    assert all("cost" in k for k in entry)
    assert price_entry("openai/no-such-model-xyz") == "unknown"
    assert price_entries(["offline", "offline"]) == {"offline": "offline"}


def test_a_runs_key_follows_its_llm_and_datasets() -> None:
    doc = parse_document({"schema": 1, "llm": "offline", "datasets": DATASETS, "suites": {}})
    same = parse_document({"schema": 1, "llm": "offline", "datasets": DATASETS, "suites": {"x": {}}, "extra": 1})
    other = parse_document({"schema": 1, "llm": "openai/gpt-4o-mini", "datasets": DATASETS, "suites": {}})
    assert key_of(doc).key == key_of(same).key != key_of(other).key
    assert key_of(other).parts["prices"]["openai/gpt-4o-mini"] == price_entry("openai/gpt-4o-mini")
