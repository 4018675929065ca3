"""The baseline key: a hash of everything an eval result depends on besides the code of the rules.

Two runs with the same key should score alike, so a run is only held to a stored baseline of the same key:

- the agents' prompt templates: each agent's system prompt (as `application.agents` renders it), its output
  schema and the JSON schema of the context it is sent;
- the model of each agent ("offline" for the deterministic policy);
- the litellm price-table entry of each model ("offline" for the policy), since cost is part of the result;
- the version (content hash) of each dataset, from `evals/datasets/manifest.json` or the run document.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from application.agents import system_prompt
from domain.agents.schemas import (
    RiskBatch,
    RiskContext,
    SignalBatch,
    SignalContext,
    ValidatorBatch,
    ValidatorContext,
)
from domain.ports.llm import AgentName

AGENT_SCHEMAS: dict[AgentName, tuple[type[BaseModel], type[BaseModel]]] = {
    "signal": (SignalContext, SignalBatch),
    "risk": (RiskContext, RiskBatch),
    "validator": (ValidatorContext, ValidatorBatch),
}
AGENTS: tuple[AgentName, ...] = tuple(AGENT_SCHEMAS)
OFFLINE = "offline"
KEY_PREFIX = "bk1-"


def prompt_templates() -> dict[str, str]:
    """agent -> its prompt template: the system prompt and the JSON schema of the context sent as the user message."""
    out: dict[str, str] = {}
    for agent, (context, output) in AGENT_SCHEMAS.items():
        schema = json.dumps(context.model_json_schema(), sort_keys=True)
        answer = json.dumps(output.model_json_schema(), sort_keys=True)
        out[agent] = (f"{system_prompt(agent, output)}\n--- output schema ---\n{answer}"
                      f"\n--- user message: JSON of this schema ---\n{schema}")
    return out


def agent_models(llm: Any) -> dict[str, str]:
    """agent -> model of an eval run's `llm` ("offline", one model for every agent, or agent -> model)."""
    if isinstance(llm, Mapping):
        return {a: str(llm.get(a, llm.get("default", OFFLINE))) for a in AGENTS}
    return dict.fromkeys(AGENTS, OFFLINE if llm is None else str(llm))


def dataset_versions(manifest: Mapping[str, Any]) -> dict[str, str]:
    """dataset -> version from a `manifest.json` of `quorum evals build`."""
    datasets = manifest.get("datasets")
    if not isinstance(datasets, Mapping):
        raise ValueError("manifest has no 'datasets' object")
    return {str(n): str(d["version"]) for n, d in datasets.items() if isinstance(d, Mapping) and "version" in d}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class BaselineKey:
    """The key and what went into it (hashes of the prompts, the models, price entries and dataset versions)."""

    key: str
    parts: dict[str, Any]

    def __str__(self) -> str:
        return self.key


def baseline_key(*, prompts: Mapping[str, str], models: Mapping[str, str], prices: Mapping[str, Any],
                 datasets: Mapping[str, str]) -> BaselineKey:
    """Hash what an eval result depends on.

    Args:
        prompts: agent -> prompt template (`prompt_templates()`).
        models: agent -> model ("offline" for the policy).
        prices: model -> its price-table entry (any JSON; "offline" for the policy, "unknown" when unpriced).
        datasets: dataset -> version.

    Returns:
        "bk1-" and 16 hex digits of a SHA-256 over the canonical JSON of the parts; the same parts in any order
        give the same key.
    """
    parts = {
        "prompts": {a: _sha(t) for a, t in sorted(prompts.items())},
        "models": dict(sorted(models.items())),
        "prices": {m: prices.get(m, "unknown") for m in sorted(set(models.values()))},
        "datasets": dict(sorted(datasets.items())),
    }
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return BaselineKey(KEY_PREFIX + _sha(canonical)[:16], parts)
