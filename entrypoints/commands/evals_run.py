"""`quorum evals run`: the agents on the eval datasets (or on datasets built from any bars), with honest intervals.

Prints a table (metric, value, 95% interval, n) or, with `--json`, the run's document; `--out` also writes the
document to a file. The backtest suite (`--suite backtest`) comes from `entrypoints.commands.evals_backtest`.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from application.evals.run_results import EvalRun
from application.evals.runner import EvalRunner, RunConfig
from application.evals.suites import SUITES, SuiteName
from application.llm_gateway import LLMGateway
from entrypoints.bootstrap import fail, run, start
from entrypoints.commands.evals_inputs import build_in_memory, eval_settings, llm_label, read_datasets
from entrypoints.commands.options import check_data_dirs
from entrypoints.container import Container, close_container
from entrypoints.settings import Settings
from entrypoints.wiring.system import daily_cap_usd, llms

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT / "evals" / "datasets"
CHOICES = (*SUITES, "all", "backtest")
BACKTEST_MODULE = "entrypoints.commands.evals_backtest"
UNAVAILABLE = "backtest suite not available"
err = Console(stderr=True)
StepProgress = Callable[[str, int, int], None]


@contextmanager
def step_progress() -> Iterator[StepProgress]:
    """A progress bar per step on stderr; yields the callback progress(step, done, total)."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        yield progress


def chosen_suites(suite: list[str]) -> tuple[list[SuiteName], bool]:
    """The dataset suites asked for (all of them by default) and whether the backtest suite is."""
    bad = [s for s in suite if s not in CHOICES]
    if bad:
        fail(f"--suite must be one of {', '.join(CHOICES)}, got {', '.join(bad)}")
    if not suite or "all" in suite:
        names: list[SuiteName] = list(SUITES)
    else:
        names = [s for s in SUITES if s in suite]
    return names, "backtest" in suite


def backtest_part(name: str) -> Callable[..., Any] | None:
    """`name` (`backtest_suite`, `table`) of the backtest eval module, or None while it does not exist."""
    try:
        module = importlib.import_module(BACKTEST_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != BACKTEST_MODULE:
            raise
        return None
    found = getattr(module, name, None)
    return found if callable(found) else None


def _fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.4f}" if abs(x) < 10 else f"{x:,.1f}"


def table(document: dict[str, Any]) -> Table:
    """Every metric of every dataset suite with its interval."""
    t = Table(title=f"Quorum evals ({document['llm']})")
    for column in ("suite", "metric", "value", "95% CI", "n"):
        t.add_column(column, justify="left" if column in ("suite", "metric") else "right")
    for name, suite in document["suites"].items():
        for metric, e in suite.get("metrics", {}).items():
            ci = f"[{_fmt(e['low'])}, {_fmt(e['high'])}]" if e["low"] is not None else "n/a"
            t.add_row(name, metric, _fmt(e["value"]), ci, str(e["n"]))
        t.add_section()
    return t


def footer(document: dict[str, Any]) -> list[str]:
    """Failures, latency, tokens and cost per suite; the memorisation verdicts; the datasets used."""
    lines = []
    for name, s in document["suites"].items():
        if "failures" not in s:
            if "error" in s:
                lines.append(f"{name}: {s['error']}")
            continue
        lat = s["latency_ms"]
        lines.append(f"{name}: {s['rows']} rows x {s['repeats']}, {s['failures']} failures, latency p50 "
                     f"{_fmt(lat['p50'])} ms p95 {_fmt(lat['p95'])} ms, {s['tokens']} tokens, ${s['cost_usd']:.4f}"
                     + (f"; e.g. {s['errors'][0]}" if s["errors"] else ""))
    lines += [f"memorisation ({name}): {m['verdict']}" for name, m in document["memorisation"].items()]
    lines.append("datasets: " + ", ".join(f"{n} {v}" for n, v in document["datasets"].items()))
    return lines


async def _run(settings: Settings, container: Container, *, data: list[Path], datasets: Path,
               suites: list[SuiteName], config: RunConfig, max_cost: float,
               backtest: dict[str, Any] | None) -> tuple[EvalRun, dict[str, Any]]:
    """The dataset suites, then the backtest suite when asked (`backtest`: its options)."""
    try:
        with step_progress() as progress:
            result = EvalRun({}, {}, {})
            if suites:
                loaded = (await build_in_memory(container, data, config.limit, progress) if data
                          else read_datasets(datasets))
                gateway = LLMGateway(llms(settings), max_cost, "evals", UTC)
                result = await EvalRunner(gateway, config, progress).run(loaded, suites)
            others = {} if backtest is None else {"backtest": await _backtest(settings, data, backtest, progress)}
    finally:
        await close_container(container)
    return result, others


async def _backtest(settings: Settings, data: list[Path], options: dict[str, Any],
                    progress: StepProgress) -> dict[str, Any]:
    suite = backtest_part("backtest_suite")
    if suite is None:
        err.print(f"[yellow]warning:[/] {UNAVAILABLE}")
        return {"error": UNAVAILABLE}
    from entrypoints.commands.evals import DEFAULT_DATA  # here: evals imports this module's command

    try:
        found: dict[str, Any] = await suite(settings, data_dirs=data or list(DEFAULT_DATA), progress=progress,
                                            **options)
    except ValueError as exc:
        err.print(f"[red]backtest suite failed:[/] {exc}")
        return {"error": str(exc)}
    return found


def _check(data: list[Path], cassettes: Path | None, llm: str) -> None:
    check_data_dirs(data)
    if cassettes is not None and llm == "offline":
        err.print("[yellow]note:[/] --cassettes has no effect with --llm offline (the offline policy is free and "
                  "deterministic)")


def run_command(
    suite: list[str] = typer.Option([], "--suite", help="signal, traps, risk, validator, all (the dataset "
                                    "suites, the default) or backtest; repeatable"),
    llm: str = typer.Option("offline", "--llm", help="offline (the rule policy), settings (the configured "
                            "models) or a litellm model id for every agent, e.g. openai/gpt-4o-mini"),
    data: list[Path] = typer.Option([], "--data", help="directory of daily OHLCV CSVs in the shipped format "
                                    "(repeatable): build the datasets from it in memory and run on them"),
    datasets: Path = typer.Option(DATASETS, "--datasets", help="directory written by `quorum evals build`"),
    as_json: bool = typer.Option(False, "--json", help="print the run's JSON document"),
    repeats: int = typer.Option(1, "--repeats", min=1, max=50, help="answers per row"),
    concurrency: int | None = typer.Option(None, "--concurrency", min=1, max=64, help="LLM requests in flight "
                                           "at once (default: QUORUM_LLM__CONCURRENCY)"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the first N rows of each dataset "
                                     "(with --data: build N scenarios per dataset)"),
    out: Path | None = typer.Option(None, "--out", help="also write the JSON document to this file"),
    cassettes: Path | None = typer.Option(None, "--cassettes", help="record or replay every LLM answer here"),
    record: bool = typer.Option(False, "--record/--replay", help="with --cassettes: call the LLMs and record, "
                                "or replay the recorded answers (default) offline and for free"),
    memorisation: bool = typer.Option(True, "--memorisation/--no-memorisation", help="also run the named twins "
                                      "and compare with the anonymised rows"),
    max_cost: float | None = typer.Option(None, "--max-cost", min=0, help="USD the run may spend on paid LLMs "
                                          "(default: QUORUM_LLM__DAILY_CAP_USD); calls beyond it fail"),
    months: int = typer.Option(6, "--months", min=1, help="backtest suite: months of history"),
    symbols: int = typer.Option(20, "--symbols", min=1, help="backtest suite: symbols traded"),
    seed: int = typer.Option(7, "--seed", help="backtest suite: seed"),
) -> None:
    """Run the agents on the eval datasets: metrics with bootstrap intervals, per-row scores, cost."""
    names, with_backtest = chosen_suites(suite)
    _check(data, cassettes, llm)
    settings, container = start("backtest", params={"storage": "memory", "data_dirs": list(data)}, env="backtest")
    try:
        settings = eval_settings(settings, llm, cassettes, record)
    except ValueError as exc:
        fail(f"--llm: {exc}")
    config = RunConfig(repeats=repeats, concurrency=concurrency or settings.llm.concurrency, limit=limit,
                       memorisation=memorisation)
    options = {"llm": llm, "months": months, "symbols": symbols, "seed": seed} if with_backtest else None
    result, others = run(_run(settings, container, data=list(data), datasets=datasets, suites=names, config=config,
                              max_cost=daily_cap_usd(settings) if max_cost is None else max_cost,
                              backtest=options))
    document = result.to_dict(llm_label(settings) if llm != "offline" else "offline", others)
    if cassettes is not None:
        document["cassettes"] = {"dir": str(cassettes), "mode": "record" if record else "replay"}
    if data:
        document["data"] = [str(d) for d in data]
    text = json.dumps(document, indent=2, allow_nan=False)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    if as_json:
        typer.echo(text)
        return
    console = Console()
    console.print(table(document))
    backtest_table = backtest_part("table")
    if "strategies" in document["suites"].get("backtest", {}) and backtest_table is not None:
        console.print(backtest_table(document["suites"]["backtest"]))
    for line in footer(document):
        typer.echo(line)
    if out is not None:
        typer.echo(f"written: {out}")
