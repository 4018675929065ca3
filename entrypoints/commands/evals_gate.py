"""`quorum evals gate` (a candidate run against a baseline run: exit 1 on a real regression) and `quorum evals
history` (the stored runs and their verdicts)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from application.evals.gate import GateConfig, GateReport, gate
from application.evals.nightly import eval_runs_page
from application.evals.results import DocumentError
from application.queries import MAX_PAGE, Page
from domain.ports.repositories import EVAL_RUN_KINDS, EvalRunRecord
from entrypoints.api.routes_evals import eval_run_json
from entrypoints.bootstrap import fail, run, start
from entrypoints.container import Container, close_container
from entrypoints.wiring.evals import read_baseline

REGRESSION_EXIT = 1
REFUSED_EXIT = 2
err = Console(stderr=True)


def exit_code(report: GateReport) -> int:
    """1 on a regression, 2 when the gate could not compare the runs, else 0."""
    if report.status == "regression":
        return REGRESSION_EXIT
    return REFUSED_EXIT if report.status == "refused" else 0


def gate_command(
    baseline: Path = typer.Option(..., "--baseline", help="the baseline run's JSON (e.g. evals/baseline.json)"),
    candidate: Path = typer.Option(..., "--candidate", help="the candidate run's JSON (`quorum evals run --json`)"),
    as_json: bool = typer.Option(False, "--json", help="print the gate's report as JSON"),
    max_drop: float = typer.Option(GateConfig.max_drop, "--max-drop", min=0.001, max=0.999,
                                   help="a drop of a suite's score larger than this may be a regression"),
    min_rows: int = typer.Option(GateConfig.min_rows, "--min-rows", min=2, help="fewer rows in common and the "
                                 "suite is refused"),
    seed: int = typer.Option(GateConfig.seed, "--seed", help="seed of the paired bootstrap"),
) -> None:
    """Gate a candidate eval run against a baseline, suite by suite, paired by dataset row: a REGRESSION (exit 1)
    needs a score drop over 10% whose 95% paired bootstrap interval excludes zero. Exit 2 when the runs cannot
    be compared (a suite missing, too few rows in common), 0 otherwise."""
    try:
        base, cand = read_baseline(baseline), read_baseline(candidate)
    except DocumentError as exc:
        fail(str(exc))
    report = gate(base, cand, GateConfig(max_drop=max_drop, min_rows=min_rows, seed=seed))
    code = exit_code(report)
    if as_json:
        typer.echo(json.dumps({**report.to_json(), "baseline_file": str(baseline), "candidate_file": str(candidate),
                               "exit_code": code}, indent=2))
    else:
        typer.echo(report.summary())
    if code == REGRESSION_EXIT:
        worse = ", ".join(v.suite for v in report.suites if v.status == "regression")
        err.print(f"[red]REGRESSION[/] in {worse}: {candidate} is worse than {baseline} beyond noise")
    elif code == REFUSED_EXIT:
        err.print(f"[yellow]REFUSED[/]: {candidate} and {baseline} cannot be compared (see the suites above)")
    raise typer.Exit(code)


async def _history(container: Container, limit: int, offset: int, kind: str | None) -> Page[EvalRunRecord]:
    try:
        return await eval_runs_page(container.uow_factory(), container.scope(), limit=limit, offset=offset,
                                    kind=kind)
    finally:
        await close_container(container)


def _suite_cell(name: str, figures: object) -> str:
    if not isinstance(figures, dict):
        return name
    drop = figures.get("relative_drop")
    change = f" {0.0 - drop:+.1%}" if isinstance(drop, float) and drop != 0 else ""
    return f"{name} {figures.get('status')}{change}"


def history_table(page: Page[EvalRunRecord]) -> Table:
    """One line per run: id, time, kind, verdict, LLM, each suite's status and score change, the baseline."""
    t = Table(title=f"Eval runs ({len(page.items)} of {page.total}, newest first)")
    t.add_column("id", no_wrap=True)
    for column in ("at (UTC)", "kind", "verdict", "llm", "suites", "held to"):
        t.add_column(column, overflow="fold")
    for r in page.items:
        suites = r.comparison.get("suites") or {}
        shown = ", ".join(_suite_cell(name, s) for name, s in suites.items())
        t.add_row(r.id, r.at.strftime("%Y-%m-%d %H:%M"), r.kind, r.verdict, r.llm, shown or "-",
                  str(r.comparison.get("baseline", "")))
    return t


def history_command(
    limit: int = typer.Option(20, "--limit", min=1, max=MAX_PAGE, help="runs shown"),
    offset: int = typer.Option(0, "--offset", min=0, help="runs skipped"),
    kind: str | None = typer.Option(None, "--kind", help=f"only runs of this kind ({', '.join(EVAL_RUN_KINDS)})"),
    as_json: bool = typer.Option(False, "--json", help="print the page as JSON"),
) -> None:
    """The stored eval runs (nightly, manual, baseline...), newest first, with their verdicts."""
    if kind is not None and kind not in EVAL_RUN_KINDS:
        fail(f"--kind must be one of {', '.join(EVAL_RUN_KINDS)}, got {kind}")
    _, container = start()
    page = run(_history(container, limit, offset, kind))
    if as_json:
        typer.echo(json.dumps({"items": [eval_run_json(r) for r in page.items], "total": page.total,
                               "limit": page.limit, "offset": page.offset}, indent=2))
        return
    if not page.items:
        typer.echo("no eval runs stored yet (the nightly evals run at 02:00 New York time; POST /api/evals/run "
                   "starts one now)")
        return
    Console().print(history_table(page))
