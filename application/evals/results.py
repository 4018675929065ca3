"""The document `quorum evals run --json` prints, as a typed model the gate, the nightly job and the API read.

Only what they need is typed; every other key is kept as it came (`extra="allow"`), so a newer runner that adds
fields still gates against an older baseline. Per-row `scores` (higher is better, one per dataset row, averaged
over repeats) are what the regression gate compares, paired by row id. (`application.evals.run_results` builds
the document; this module reads it back.)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SCHEMA_VERSION = 1


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class MetricValue(_Open):
    """A metric with its bootstrap interval (None where it is undefined)."""

    value: float | None = None
    low: float | None = None
    high: float | None = None
    n: int | None = None


class Latency(_Open):
    """Latency percentiles of the suite's LLM calls, in milliseconds."""

    p50: float | None = None
    p95: float | None = None


class SuiteDocument(_Open):
    """One suite's results.

    Attributes:
        metrics: name -> value with its interval.
        scores: dataset row id -> the row's score (higher is better; mean over repeats).
        failures: calls that failed (the row was scored as the agent's fallback).
        latency_ms: p50 and p95 latency.
        tokens: tokens used.
        cost_usd: what the suite cost.
    """

    metrics: dict[str, MetricValue] = Field(default_factory=dict)
    scores: dict[str, float] = Field(default_factory=dict)
    failures: int = 0
    latency_ms: Latency | None = None
    tokens: int = 0
    cost_usd: float = 0.0

    @field_validator("scores", mode="before")
    @classmethod
    def _finite_scores(cls, v: object) -> object:
        """Rows whose score is missing or not a finite number are dropped (they cannot be compared)."""
        if not isinstance(v, Mapping):
            return v
        return {str(k): float(s) for k, s in v.items()
                if isinstance(s, int | float) and not isinstance(s, bool) and math.isfinite(s)}

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_objects(cls, v: object) -> object:
        """Metrics that are not objects (a bare number, a note) are kept out of the typed view."""
        if not isinstance(v, Mapping):
            return v
        return {str(k): m for k, m in v.items() if isinstance(m, Mapping)}


class EvalDocument(_Open):
    """The whole result of an eval run (schema 1).

    Attributes:
        schema_version: the document's schema ("schema" in JSON).
        llm: what answered (a model string, "offline", or agent -> model).
        datasets: dataset name -> version (the first 12 hex digits of its SHA-256).
        suites: suite name -> results.
        memorisation: the named-twin probe, as the runner reports it.
    """

    schema_version: int = Field(SCHEMA_VERSION, alias="schema")
    llm: Any = None
    datasets: dict[str, str] = Field(default_factory=dict)
    suites: dict[str, SuiteDocument] = Field(default_factory=dict)
    memorisation: Any = None

    @property
    def llm_label(self) -> str:
        """`llm` as one short string ("offline", a model, or "agent=model, ...")."""
        return llm_label(self.llm)

    def to_json(self) -> dict[str, Any]:
        """The document as JSON again (with the keys this model does not know)."""
        out: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return out

    @property
    def raw(self) -> dict[str, Any]:
        """The same as `to_json()`."""
        return self.to_json()


SuiteResult = SuiteDocument
"""The name the gate's first reader used for a suite of the document."""


def llm_label(llm: Any) -> str:
    """What answered, as one short string."""
    if llm is None:
        return "unknown"
    if isinstance(llm, str):
        return llm
    if isinstance(llm, Mapping):
        return ", ".join(f"{k}={llm_label(v)}" for k, v in sorted(llm.items(), key=lambda kv: str(kv[0])))
    return json.dumps(llm, sort_keys=True, default=str)


class DocumentError(ValueError):
    """A file or object is not an eval run document."""


def parse_document(data: Mapping[str, Any], *, what: str = "document") -> EvalDocument:
    """Validate an eval run document.

    Raises:
        DocumentError: it is not one (naming the first problem), or its schema is newer than this code.
    """
    if not isinstance(data, Mapping):
        raise DocumentError(f"{what}: a JSON object was expected, got {type(data).__name__}")
    try:
        doc = EvalDocument.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise DocumentError(f"{what} is not an eval run document: {where}: {first['msg']}") from None
    if doc.schema_version > SCHEMA_VERSION:
        raise DocumentError(f"{what} has schema {doc.schema_version}; this version reads schema {SCHEMA_VERSION}")
    return doc
