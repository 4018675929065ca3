"""The LLM bake-off: the same eval rows through several models at once, and which model does better.

Every model answers every row `repeats` times through its own gateway (its own spend cap), and all of them
share ONE bound on the LLM calls in flight (`RoutedLLM`: one asyncio semaphore). Repeat k of a model may have an
LLM of its own (its own cassette directory), chosen by the request's cycle id, so that a replay gives each
repeat the answer it got when recorded. Per model: each suite's metrics with their intervals, the failure rate,
the latency of the answered calls (median and 95th percentile), prompt and completion tokens, the cost and the
cost per decision, and how often the repeats agree. Every pair of models is compared on the same rows by a
paired bootstrap of the per-row scores (`application.evals.scoring`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Literal

import numpy as np

from application.evals.grid import Resampling
from application.evals.run_results import EvalRun, SuiteResult, mean_score
from application.evals.runner import EvalDatasets, EvalRunner, Progress, RunConfig, repeat_of
from application.evals.scoring import SCORES
from application.evals.suites import Answer, SuiteName, same_answer
from application.llm_gateway import LLMGateway
from domain.evals.bootstrap import PairedComparison, paired_bootstrap
from domain.ports.llm import LLM, Decision, LLMRequest, OutputT

Verdict = Literal["A better", "B better", "no detectable difference"]
POOLED = "all"
"""The comparison over the rows of every suite together (each row weighs the same)."""


@dataclass(frozen=True)
class Contender:
    """One model of the bake-off.

    Attributes:
        name: how the model is reported (its litellm model id, or "offline").
        llms: the LLM answering every repeat (one), or repeat k's LLM at index k (one per repeat).
    """

    name: str
    llms: Sequence[LLM]


@dataclass(frozen=True)
class BakeoffConfig:
    """How the bake-off asks.

    Attributes:
        repeats: answers per row and model (>= 1; fewer than 3 says little about a model's consistency).
        concurrency: LLM calls in flight at once, every model together (>= 1).
        limit: the first `limit` rows of each suite only (None: every row).
        max_cost_usd: what each model may spend; calls beyond it fail (and count as failures).
        resampling: bootstrap resamples, confidence and seed of every interval and comparison.
    """

    repeats: int = 3
    concurrency: int = 4
    limit: int | None = None
    max_cost_usd: float = 1.0
    resampling: Resampling = field(default_factory=Resampling)


class RoutedLLM(LLM):
    """The LLM of a request's repeat, called under the bake-off's one bound on calls in flight.

    Args:
        llms: one LLM for every repeat, or one per repeat (index = repeat).
        bound: the semaphore every model of the bake-off shares.
    """

    def __init__(self, llms: Sequence[LLM], bound: asyncio.Semaphore) -> None:
        if not llms:
            raise ValueError("RoutedLLM needs at least one LLM")
        self._llms = list(llms)
        self._bound = bound

    @property
    def provider(self) -> str:
        """The provider of the LLMs ("offline" and "replay" cost nothing and are never capped)."""
        return str(getattr(self._llms[0], "provider", "unknown"))

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        """The answer of the request's repeat's LLM, once a slot is free."""
        repeat = repeat_of(request.cycle_id)
        llm = self._llms[0] if len(self._llms) == 1 else self._llms[repeat]
        async with self._bound:
            return await llm.complete(request)


def _prefixed(name: str, progress: Progress | None) -> Progress | None:
    if progress is None:
        return None

    def told(step: str, done: int, total: int) -> None:
        progress(f"{name} {step}", done, total)

    return told


def _runner(contender: Contender, bound: asyncio.Semaphore, config: BakeoffConfig,
            progress: Progress | None) -> EvalRunner:
    gateway = LLMGateway({"default": RoutedLLM(contender.llms, bound)}, config.max_cost_usd,
                         f"bakeoff:{contender.name}", UTC)
    # Each runner's own bound is the global figure; `bound`, shared, holds every model together to it.
    run = RunConfig(repeats=config.repeats, concurrency=config.concurrency, limit=config.limit, memorisation=False,
                    resampling=config.resampling)
    return EvalRunner(gateway, run, _prefixed(contender.name, progress))


async def run_bakeoff(contenders: Sequence[Contender], data: EvalDatasets, suites: Sequence[SuiteName],
                      config: BakeoffConfig, progress: Progress | None = None) -> dict[str, EvalRun]:
    """Every model on the same rows, all at once under one bound on calls in flight; model name -> its run.

    Raises:
        ValueError: fewer than two models, a name twice, or a model with neither one LLM nor one per repeat.
        DataError: a suite's dataset is missing or empty.
    """
    names = [c.name for c in contenders]
    if len(names) < 2:
        raise ValueError("a bake-off needs at least two models")
    if len(set(names)) != len(names):
        raise ValueError(f"a model is named twice: {', '.join(names)}")
    for c in contenders:
        if len(c.llms) not in (1, config.repeats):
            raise ValueError(f"{c.name}: {len(c.llms)} LLMs for {config.repeats} repeats")
    bound = asyncio.Semaphore(config.concurrency)
    runs = await asyncio.gather(*(_runner(c, bound, config, progress).run(data, suites) for c in contenders))
    return dict(zip(names, runs, strict=True))


@dataclass(frozen=True)
class ModelComparison:
    """Model B against model A on the same rows.

    Attributes:
        suite: the suite, or "all" for every suite's rows together.
        a: the first model.
        b: the second model.
        paired: B - A of the mean per-row score, with its paired bootstrap interval.
    """

    suite: str
    a: str
    b: str
    paired: PairedComparison

    @property
    def verdict(self) -> Verdict:
        """"B better" or "A better" only when the interval of B - A excludes zero."""
        if self.paired.improvement:
            return "B better"
        if self.paired.regression:
            return "A better"
        return "no detectable difference"

    @property
    def winner(self) -> str | None:
        """The better model's name; None when the rows cannot tell them apart."""
        return {"B better": self.b, "A better": self.a}.get(self.verdict)

    def sentence(self) -> str:
        """In words."""
        d = self.paired.difference
        span = f"{d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}] ({d.confidence:.0%}, {d.n} rows)"
        if self.winner is None:
            return f"{self.suite}: no detectable difference between {self.a} and {self.b}: B - A = {span}"
        loser = self.a if self.winner == self.b else self.b
        return f"{self.suite}: {self.winner} better than {loser}: B - A = {span}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"suite": self.suite, "a": self.a, "b": self.b, "a_score": _finite(self.paired.baseline),
                "b_score": _finite(self.paired.candidate), "difference": self.paired.difference.to_dict(),
                "verdict": self.verdict, "winner": self.winner, "summary": self.sentence()}


def compare_models(suite: str, a: str, scores_a: Mapping[str, float], b: str, scores_b: Mapping[str, float],
                   how: Resampling) -> ModelComparison:
    """Paired bootstrap of B - A over the rows both were scored on.

    Raises:
        ValueError: no row in common.
    """
    ids = [k for k in scores_a if k in scores_b]
    if not ids:
        raise ValueError(f"{suite}: {a} and {b} share no row")
    base = np.array([scores_a[k] for k in ids], dtype=np.float64)
    cand = np.array([scores_b[k] for k in ids], dtype=np.float64)
    return ModelComparison(suite, a, b, paired_bootstrap(base, cand, better="higher", n_resamples=how.n_resamples,
                                                         confidence=how.confidence, seed=how.seed))


def pooled_scores(run: EvalRun) -> dict[str, float]:
    """Every suite's per-row scores, keyed "suite:row"."""
    return {f"{suite}:{row}": s for suite, result in run.suites.items() for row, s in result.scores.items()}


def scores_of(run: EvalRun, suite: str) -> Mapping[str, float]:
    """The per-row scores of `suite` ("all": `pooled_scores`); empty when the run has no such suite."""
    if suite == POOLED:
        return pooled_scores(run)
    return next((r.scores for name, r in run.suites.items() if name == suite), {})


def pairwise(runs: Mapping[str, EvalRun], how: Resampling) -> list[ModelComparison]:
    """Every pair of models (in the order given) on every suite, and on all suites' rows together."""
    names = list(runs)
    suites: list[str] = list(runs[names[0]].suites) if names else []
    out = []
    for suite in [*suites, *([POOLED] if len(suites) > 1 else [])]:
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                out.append(compare_models(suite, a, scores_of(runs[a], suite), b, scores_of(runs[b], suite), how))
    return out


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def latency(answers: Sequence[Answer]) -> dict[str, float | None]:
    """Median and 95th percentile latency of the answered calls (failures are counted in the failure rate)."""
    lat = np.array([a.latency_ms for a in answers if a.ok], dtype=np.float64)
    if not len(lat):
        return {"p50": None, "p95": None}
    return {"p50": round(float(np.percentile(lat, 50)), 3), "p95": round(float(np.percentile(lat, 95)), 3)}


def tokens(answers: Sequence[Answer]) -> dict[str, int]:
    """Prompt and completion tokens of every call, failed ones included (they are paid for too)."""
    completion = sum(a.completion_tokens for a in answers)
    return {"prompt": sum(a.tokens for a in answers) - completion, "completion": completion}


def repeat_agreement(result: SuiteResult) -> float | None:
    """Share of rows whose repeats all say the same thing (None with one repeat)."""
    lines = result.grid.answers
    if result.grid.repeats < 2 or not lines:
        return None
    return sum(all(same_answer(line[0], a) for a in line[1:]) for line in lines) / len(lines)


def per_decision(cost: float, decisions: int) -> float | None:
    """Cost of one decision (one answer asked for, failures included)."""
    return cost / decisions if decisions else None


def suite_summary(result: SuiteResult) -> dict[str, Any]:
    """One model's figures on one suite."""
    answers = result.answers
    cost = result.cost_usd
    return {
        "rows": len(result.grid.rows), "repeats": result.grid.repeats, "decisions": len(answers),
        "score": SCORES[result.suite], "mean_score": _finite(mean_score(result)),
        "metrics": {name: e.to_dict() for name, e in result.metrics.items()},
        "failures": result.failures, "failure_rate": result.metrics["failure_rate"].to_dict(),
        "errors": result.errors(), "latency_ms": latency(answers), "tokens": tokens(answers),
        "cost_usd": round(cost, 8), "cost_per_decision_usd": per_decision(cost, len(answers)),
        "repeat_agreement": repeat_agreement(result), "scores": result.scores,
    }


def model_summary(run: EvalRun, *, replayed: bool) -> dict[str, Any]:
    """One model's figures: per suite and over every suite (`replayed`: nothing was spent, answers came from
    the cassettes, and `cost_usd` is what they cost when recorded)."""
    answers = [a for r in run.suites.values() for a in r.answers]
    failures = sum(1 for a in answers if not a.ok)
    cost = sum(a.cost_usd for a in answers)
    return {
        "suites": {name: suite_summary(r) for name, r in run.suites.items()},
        "decisions": len(answers), "failures": failures,
        "failure_rate": failures / len(answers) if answers else None,
        "latency_ms": latency(answers), "tokens": tokens(answers), "cost_usd": round(cost, 8),
        "spent_usd": 0.0 if replayed else round(cost, 8), "cost_per_decision_usd": per_decision(cost, len(answers)),
    }
