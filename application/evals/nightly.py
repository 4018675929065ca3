"""The nightly eval job (and a run asked for through the API): run the suites, store the run, gate it against
the baseline of its key, alert on a regression, log the verdict.

The baseline of a run is, in order: the latest stored run of kind "baseline" with the same baseline key (the
same prompts, models, prices and datasets); else the committed `evals/baseline.json`. The first nightly run of
a key that is not a regression is stored as that key's baseline, so later nights are held to it. A regression
writes an EVAL_REGRESSION event (WARNING) to the event log and sends its alert at once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from application.evals.baseline import BaselineKey
from application.evals.gate import GateConfig, GateReport, gate
from application.evals.results import EvalDocument, parse_document
from application.queries import Page, check_page
from domain.events import Event, EventType, Severity
from domain.ports.clock import Clock
from domain.ports.repositories import EvalRunRecord, EventQuery
from domain.ports.uow import UnitOfWorkFactory

log = structlog.get_logger(__name__)
RunSuites = Callable[[str], Awaitable[Mapping[str, Any]]]
KeyOf = Callable[[EvalDocument], BaselineKey]
CommittedBaseline = Callable[[], EvalDocument | None]
Notify = Callable[[Event], Awaitable[object]]
COMMITTED = "committed evals/baseline.json"


def eval_run_id(scope: str, kind: str, as_of: datetime) -> str:
    """The id of the run of `kind` for `as_of` in `scope`: the same request gives the same id (stored once)."""
    stamp = as_of.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.blake2b(scope.encode(), digest_size=4).hexdigest()
    return f"ev-{kind}-{stamp}-{digest}"


def finite_json(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


@dataclass(frozen=True)
class EvalJobOutcome:
    """What one eval job did.

    Attributes:
        run_id: the stored run.
        verdict: ok, noise, regression, refused or no_baseline.
        baseline: what it was compared with ("run <id>", the committed file, or "none").
        key: the run's baseline key.
        kind: the kind it was stored as ("baseline" when it became its key's baseline).
        report: the gate's report (None without a baseline).
        duplicate: the run was already stored (a retry): nothing was run again.
    """

    run_id: str
    verdict: str
    baseline: str
    key: str
    kind: str
    report: GateReport | None = None
    duplicate: bool = False


def regression_event(*, at: datetime, scope: str, run_id: str, key: str, baseline: str, report: GateReport) -> Event:
    """The EVAL_REGRESSION event of a run whose gate found a real regression (WARNING)."""
    worse = [v for v in report.suites if v.status == "regression"]
    lines = [f"eval run {run_id} regressed against {baseline}:"]
    lines += [f"- {v.suite}: {v.reason}" for v in worse]
    payload: dict[str, Any] = {"run_id": run_id, "baseline": baseline, "baseline_key": key,
                               "suites": ", ".join(v.suite for v in worse)}
    for v in worse:
        payload[f"{v.suite}_drop_pct"] = None if v.relative_drop is None else round(v.relative_drop, 4)
    return Event(type=EventType.EVAL_REGRESSION, at=at, message="\n".join(lines), severity=Severity.WARNING,
                 payload=payload, scope=scope)


@dataclass
class EvalJob:
    """Runs the suites and gates the result (see the module docstring).

    Attributes:
        run_suites: `await run_suites(llm)` runs every dataset suite and returns the JSON document.
        key_of: the baseline key of a run's document.
        uow_factory: where runs and events are stored.
        clock: the time of the stored run and of the event.
        scope: whose runs.
        llm: what answers: "offline", "settings" or a litellm model string.
        committed_baseline: the committed `evals/baseline.json` (None when absent).
        notify: sends an event's alert at once (None: the alerts job forwards it from the event log).
        git_sha: the code's commit, when known.
        gate_config: the gate's thresholds.
    """

    run_suites: RunSuites
    key_of: KeyOf
    uow_factory: UnitOfWorkFactory
    clock: Clock
    scope: str
    llm: str = "offline"
    committed_baseline: CommittedBaseline = field(default=lambda: None)
    notify: Notify | None = None
    git_sha: str | None = None
    gate_config: GateConfig = field(default_factory=GateConfig)

    async def _stored(self, run_id: str) -> EvalRunRecord | None:
        async with self.uow_factory() as uow:
            return await uow.eval_runs.get(run_id)

    async def _baseline(self, key: str) -> tuple[str, str | None, EvalDocument | None]:
        """(label, stored baseline id, document) of the run a run of `key` is held to."""
        async with self.uow_factory() as uow:
            found = await uow.eval_runs.list(self.scope, kind="baseline", baseline_key=key, limit=1)
        if found:
            return f"run {found[0].id}", found[0].id, parse_document(found[0].document, what=f"run {found[0].id}")
        committed = self.committed_baseline()
        return (COMMITTED, None, committed) if committed is not None else ("none", None, None)

    async def run(self, as_of: datetime, kind: str = "nightly") -> EvalJobOutcome:
        """Run, store and gate the eval run of `kind` ("nightly" or "manual") for `as_of`."""
        run_id = eval_run_id(self.scope, kind, as_of)
        done = await self._stored(run_id)
        if done is not None:
            log.info("eval_run_duplicate", run_id=run_id, verdict=done.verdict)
            return EvalJobOutcome(run_id, done.verdict, str(done.comparison.get("baseline", "none")),
                                  done.baseline_key, done.kind, duplicate=True)
        raw = finite_json(dict(await self.run_suites(self.llm)))
        doc = parse_document(raw, what=f"eval run {run_id}")
        key = self.key_of(doc)
        label, baseline_id, baseline = await self._baseline(key.key)
        report = gate(baseline, doc, self.gate_config) if baseline is not None else None
        verdict = report.status if report is not None else "no_baseline"
        stored_kind = "baseline" if kind == "nightly" and baseline_id is None and verdict != "regression" else kind
        comparison = {**(report.to_json() if report else {}), "baseline": label, "baseline_id": baseline_id,
                      "key_parts": key.parts}
        at = self.clock.now()
        record = EvalRunRecord(id=run_id, scope=self.scope, at=at, kind=stored_kind, baseline_key=key.key,
                               llm=doc.llm_label, document=raw, verdict=verdict, git_sha=self.git_sha,
                               comparison=finite_json(comparison))
        async with self.uow_factory() as uow:
            await uow.eval_runs.add(record)
            await uow.commit()
        log.info("eval_run", run_id=run_id, kind=stored_kind, verdict=verdict, baseline=label, key=key.key,
                 llm=doc.llm_label, suites={v.suite: v.status for v in report.suites} if report else {})
        if report is not None and report.regression:
            await self._alert(regression_event(at=at, scope=self.scope, run_id=run_id, key=key.key, baseline=label,
                                               report=report))
        return EvalJobOutcome(run_id, verdict, label, key.key, stored_kind, report)

    async def _alert(self, event: Event) -> None:
        """Log the event, then send its alert at once (with its id, so the alerts job does not send it again)."""
        async with self.uow_factory() as uow:
            await uow.events.add([event])
            stored = await uow.events.query(EventQuery(self.scope, types=(EventType.EVAL_REGRESSION,),
                                                       since=event.at, limit=20))
            await uow.commit()
        event = next((e for e in stored if e.message == event.message), event)
        log.warning("eval_regression", run_id=event.payload.get("run_id"), suites=event.payload.get("suites"))
        if self.notify is not None:
            await self.notify(event)


async def eval_runs_page(uow_factory: UnitOfWorkFactory, scope: str, *, limit: int = 20, offset: int = 0,
                         kind: str | None = None) -> Page[EvalRunRecord]:
    """Stored eval runs of `scope`, newest first, without their documents (the verdicts and the gate's figures).

    Raises:
        ValueError: a page outside 1 <= limit <= MAX_PAGE, offset >= 0.
    """
    check_page(limit, offset)
    async with uow_factory() as uow:
        items = await uow.eval_runs.list(scope, kind=kind, limit=limit, offset=offset, documents=False)
        total = await uow.eval_runs.count(scope, kind=kind)
    return Page(items, total, limit, offset)
