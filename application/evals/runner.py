"""`EvalRunner`: put each dataset row to its agent, as the trading cycle would, and score the answers.

Each request is the production one: the row's typed context rendered by `application.agents.render` (the
agent's system prompt and output schema, the context as JSON) and sent through the `LLMGateway` (spend cap,
usage records). The row's context is sent as it is, so an anonymised row stays "day 0" and `as_of` comes from
the row, never the clock. Answers run concurrently under one bound, each row `repeats` times. A call that
failed, was refused by the spend cap or did not answer the row is a failure: counted, reported and scored 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from application.agents import render
from application.evals.grid import Grid, Resampling
from application.evals.run_results import EvalRun, SuiteResult, TwinComparison, compare_twins
from application.evals.scoring import row_scores, suite_metrics
from application.evals.suites import SPECS, TWINNED, Answer, EvalRow, SuiteName, read_answer, request_time
from application.llm_gateway import LLMGateway
from domain.errors import DataError
from domain.ports.llm import LLMRequest

Progress = Callable[[str, int, int], None]
"""progress(step, done, total): answers done of a dataset."""
REFUSED = "refused: the LLM spend cap is reached"
CYCLE_PREFIX = "eval"


def eval_cycle_id(dataset: str, row_id: str, repeat: int) -> str:
    """The cycle id of one answer: its usage records, and which repeat a request belongs to (`repeat_of`)."""
    return f"{CYCLE_PREFIX}:{dataset}:{row_id}:{repeat}"


def repeat_of(cycle_id: str | None) -> int:
    """The repeat of an eval request's cycle id (0 for any other request)."""
    if cycle_id is None or not cycle_id.startswith(f"{CYCLE_PREFIX}:"):
        return 0
    tail = cycle_id.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


@dataclass(frozen=True)
class RunConfig:
    """How a run asks and scores.

    Attributes:
        repeats: answers per row (>= 1).
        concurrency: requests in flight at once (>= 1).
        limit: the first `limit` rows of each dataset only (None: every row).
        memorisation: also run the named twins and compare (suites that have them).
        resampling: bootstrap resamples, confidence and seed of every interval.
    """

    repeats: int = 1
    concurrency: int = 4
    limit: int | None = None
    memorisation: bool = True
    resampling: Resampling = field(default_factory=Resampling)

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")


@dataclass(frozen=True)
class EvalDatasets:
    """Parsed dataset rows and their versions.

    Attributes:
        rows: dataset name ("signal", "signal_named", "traps", ...) -> rows in file order.
        versions: dataset name -> content-hash version.
    """

    rows: Mapping[str, Sequence[EvalRow]]
    versions: Mapping[str, str]


def _named_twins(anonymised: Sequence[EvalRow], named: Sequence[EvalRow], dataset: str) -> list[EvalRow]:
    by_id = {r.id: r for r in named}
    missing = [r.id for r in anonymised if r.id not in by_id]
    if missing:
        raise DataError(f"{dataset}: no named twin for {', '.join(missing[:5])}")
    return [by_id[r.id] for r in anonymised]


class EvalRunner:
    """Runs the dataset suites.

    Args:
        gateway: routes each agent to its LLM (the offline policy, configured models, or cassettes).
        config: repeats, concurrency, row limit, memorisation probe, resampling.
        progress: told after every answer.
    """

    def __init__(self, gateway: LLMGateway, config: RunConfig | None = None,
                 progress: Progress | None = None) -> None:
        self._gateway = gateway
        self._config = config or RunConfig()
        self._progress = progress
        self._sem = asyncio.Semaphore(self._config.concurrency)

    def _plan(self, data: EvalDatasets, suites: Sequence[SuiteName]) -> list[tuple[SuiteName, str, list[EvalRow]]]:
        plan: list[tuple[SuiteName, str, list[EvalRow]]] = []
        for suite in suites:
            if suite not in data.rows:
                raise DataError(f"no {suite} dataset to run")
            rows = list(data.rows[suite])[: self._config.limit]
            if not rows:
                raise DataError(f"the {suite} dataset has no rows")
            plan.append((suite, suite, rows))
            named = f"{suite}_named"
            if self._config.memorisation and suite in TWINNED and named in data.rows:
                plan.append((suite, named, _named_twins(rows, data.rows[named], named)))
        return plan

    async def run(self, data: EvalDatasets, suites: Sequence[SuiteName]) -> EvalRun:
        """Ask, score and compare every suite.

        Raises:
            DataError: a suite's dataset is missing or empty, or a named twin is missing.
        """
        plan = self._plan(data, suites)
        grids = await asyncio.gather(*(self._answer_all(suite, name, rows) for suite, name, rows in plan))
        how = self._config.resampling
        results: dict[str, SuiteResult] = {}
        for (suite, name, _), grid in zip(plan, grids, strict=True):
            results[name] = SuiteResult(suite, name, data.versions.get(name, "unknown"), grid,
                                        suite_metrics(suite, grid, how), row_scores(suite, grid))
        memorisation: dict[SuiteName, TwinComparison] = {
            suite: compare_twins(results[suite], results[name], how)
            for suite, name, _ in plan if name != suite}
        used = {name: data.versions.get(name, "unknown") for _, name, _ in plan}
        return EvalRun(used, {s: results[s] for s in suites}, memorisation)

    async def _answer_all(self, suite: SuiteName, dataset: str, rows: list[EvalRow]) -> Grid:
        repeats = self._config.repeats
        total = len(rows) * repeats
        done = 0

        async def one(row: EvalRow, repeat: int) -> Answer:
            nonlocal done
            answer = await self.ask(suite, dataset, row, repeat)
            done += 1
            if self._progress is not None:
                self._progress(dataset, done, total)
            return answer

        answers = await asyncio.gather(*(one(r, k) for r in rows for k in range(repeats)))
        return Grid.of(rows, answers, repeats)

    async def ask(self, suite: SuiteName, dataset: str, row: EvalRow, repeat: int = 0) -> Answer:
        """One answer of the suite's agent to the row, with what it cost."""
        spec = SPECS[suite]
        cycle_id = eval_cycle_id(dataset, row.id, repeat)
        request = LLMRequest(agent=spec.agent, messages=render(spec.agent, row.context, spec.schema),
                             output_schema=spec.schema, context=row.context, as_of=request_time(row),
                             cycle_id=cycle_id)
        async with self._sem:
            decision = await self._gateway.ask(request)
        calls = self._gateway.calls(cycle_id)
        self._gateway.discard(cycle_id)
        answer = (read_answer(row, decision.output, repeat) if decision is not None else
                  Answer(row.id, repeat, error=next((c.error for c in calls if c.error), None) or REFUSED))
        return replace(answer, latency_ms=sum(c.latency_ms for c in calls),
                       tokens=sum(c.prompt_tokens + c.completion_tokens for c in calls),
                       completion_tokens=sum(c.completion_tokens for c in calls),
                       cost_usd=sum(c.cost_usd for c in calls))
