"""What an eval run found: per suite the metrics, per-row scores and the cost; the memorisation probe.

`to_dict` gives the JSON document of `quorum evals run --json` (the caller adds the LLM and other suites).
Per-row scores are kept (row id -> score) so that two runs on the same rows can be compared with a paired
bootstrap (`domain.evals.bootstrap.paired_bootstrap`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from application.evals.grid import Grid, Resampling
from application.evals.scoring import SCORES
from application.evals.suites import Answer, SuiteName, same_answer
from domain.evals.bootstrap import Estimate, PairedComparison, bootstrap_ci, paired_bootstrap

SCHEMA = 1
"""Version of the JSON document."""
SHOWN_ERRORS = 5


def _none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def answer_dict(a: Answer) -> dict[str, Any]:
    """One answer as JSON (fields the suite does not use left out)."""
    out: dict[str, Any] = {"row": a.row_id, "repeat": a.repeat}
    for name in ("action", "confidence", "position_pct", "stop_pct", "take_profit_pct", "approve", "error"):
        value = getattr(a, name)
        if value is not None:
            out[name] = value
    out.update(latency_ms=round(a.latency_ms, 3), tokens=a.tokens, cost_usd=a.cost_usd)
    return out


@dataclass(frozen=True)
class SuiteResult:
    """One suite on one dataset.

    Attributes:
        suite: the suite.
        dataset: the dataset its rows come from (e.g. "signal" or "signal_named").
        version: the dataset's content-hash version.
        grid: the answers, row by row and repeat by repeat.
        metrics: metric name -> estimate with its bootstrap interval.
        scores: row id -> score (mean over repeats; see `application.evals.scoring`).
    """

    suite: SuiteName
    dataset: str
    version: str
    grid: Grid
    metrics: dict[str, Estimate]
    scores: dict[str, float]

    @property
    def answers(self) -> list[Answer]:
        """Every answer, row by row."""
        return [a for line in self.grid.answers for a in line]

    @property
    def failures(self) -> int:
        """Answers that failed (counted in `failure_rate`, scored 0)."""
        return sum(1 for a in self.answers if not a.ok)

    def errors(self) -> list[str]:
        """The first distinct failure reasons."""
        seen: list[str] = []
        for a in self.answers:
            if a.error is not None and a.error not in seen:
                seen.append(a.error)
        return seen[:SHOWN_ERRORS]

    def latency_ms(self) -> dict[str, float | None]:
        """Median and 95th percentile of the answers' LLM latency."""
        lat = np.array([a.latency_ms for a in self.answers], dtype=np.float64)
        if not len(lat):
            return {"p50": None, "p95": None}
        return {"p50": _none(float(np.percentile(lat, 50))), "p95": _none(float(np.percentile(lat, 95)))}

    @property
    def tokens(self) -> int:
        """Prompt and completion tokens of every call."""
        return sum(a.tokens for a in self.answers)

    @property
    def cost_usd(self) -> float:
        """What every call cost."""
        return sum(a.cost_usd for a in self.answers)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "dataset": self.dataset, "version": self.version, "rows": len(self.grid.rows),
            "repeats": self.grid.repeats, "score": SCORES[self.suite],
            "metrics": {name: e.to_dict() for name, e in self.metrics.items()},
            "scores": self.scores, "failures": self.failures, "errors": self.errors(),
            "latency_ms": self.latency_ms(), "tokens": self.tokens, "cost_usd": round(self.cost_usd, 8),
            "answers": [answer_dict(a) for a in self.answers],
        }


@dataclass(frozen=True)
class TwinComparison:
    """The memorisation probe of one suite: the same rows with their names, dates and prices shown.

    Attributes:
        named: the suite on the named twins.
        difference: named - anonymised mean per-row score, paired by row.
        answers_changed: share of rows whose first answer differs between the twins.
    """

    named: SuiteResult
    difference: PairedComparison
    answers_changed: Estimate

    @property
    def names_change_scores(self) -> bool:
        """The interval of the score difference excludes zero."""
        return self.difference.regression or self.difference.improvement

    def verdict(self) -> str:
        """In words."""
        d, changed = self.difference.difference, self.answers_changed
        span = f"{d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"
        share = f"answers differ on {changed.value:.0%} of rows [{changed.low:.0%}, {changed.high:.0%}]"
        if self.difference.improvement:
            return (f"named rows score higher ({span}): the model may remember what these tickers did; {share}")
        if self.difference.regression:
            return f"named rows score lower ({span}): names change the answers; {share}"
        return f"no significant score difference between named and anonymised rows ({span}); {share}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the named suite's answers left out: its scores are kept)."""
        named = self.named.to_dict()
        named.pop("answers")
        return {"named": named, "score_difference": self.difference.difference.to_dict(),
                "anonymised_score": _none(self.difference.baseline), "named_score": _none(self.difference.candidate),
                "answers_changed": self.answers_changed.to_dict(),
                "names_change_scores": self.names_change_scores, "verdict": self.verdict()}


def compare_twins(anonymised: SuiteResult, named: SuiteResult, how: Resampling) -> TwinComparison:
    """Pair the two runs row by row (the rows must be the same ids in the same order)."""
    ids = [r.id for r in anonymised.grid.rows]
    if ids != [r.id for r in named.grid.rows]:
        raise ValueError("the named twins must be the same rows in the same order")
    base = np.array([anonymised.scores[i] for i in ids], dtype=np.float64)
    cand = np.array([named.scores[i] for i in ids], dtype=np.float64)
    diff = paired_bootstrap(base, cand, better="higher", n_resamples=how.n_resamples, confidence=how.confidence,
                            seed=how.seed)
    changed = np.array([0.0 if same_answer(a[0], n[0]) else 1.0
                        for a, n in zip(anonymised.grid.answers, named.grid.answers, strict=True)])
    est = bootstrap_ci(lambda x: float(np.mean(x)), changed, n_resamples=how.n_resamples,
                       confidence=how.confidence, seed=how.seed)
    return TwinComparison(named, diff, est)


@dataclass(frozen=True)
class EvalRun:
    """Every suite of a run.

    Attributes:
        versions: dataset name -> version, for the datasets the run used.
        suites: suite -> its result on the anonymised (or only) dataset.
        memorisation: suite -> the named-twin comparison (suites with named twins, when asked).
    """

    versions: Mapping[str, str]
    suites: Mapping[SuiteName, SuiteResult]
    memorisation: Mapping[SuiteName, TwinComparison]

    def to_dict(self, llm: str | Mapping[str, str], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The JSON document (`extra`: results of suites run elsewhere, such as the backtest suite)."""
        return {"schema": SCHEMA, "llm": llm if isinstance(llm, str) else dict(llm),
                "datasets": dict(sorted(self.versions.items())),
                "suites": {**{name: r.to_dict() for name, r in self.suites.items()}, **(extra or {})},
                "memorisation": {name: m.to_dict() for name, m in self.memorisation.items()}}


def mean_score(result: SuiteResult, ids: Sequence[str] | None = None) -> float:
    """Mean per-row score (over `ids` when given)."""
    keys = list(ids) if ids is not None else list(result.scores)
    return float(np.mean([result.scores[k] for k in keys])) if keys else math.nan
