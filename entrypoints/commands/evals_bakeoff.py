"""`quorum evals bakeoff`: several LLMs on the same eval rows (and backtest) at once, compared honestly.

Each `--model` is a litellm model id (or `offline`, the rule policy), optionally with its own server:
`--model openai/gpt-4o-mini=http://127.0.0.1:8001/v1`. Every answer is recorded under
`<cassettes>/<model-slug>/repeat-<k>/` (failures too), the backtest's under `<model-slug>/backtest/<run>/`, so that
`--replay` re-runs the whole bake-off offline, for free, with the same figures. The suites' calls of every model
share one bound (`--concurrency`); the backtests run after them, as many models at a time as the bound allows,
the bound split between them. See docs/evals.md, "Bake-off".
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from adapters.llm.failure_cassette import FailureCassette
from adapters.llm.litellm_adapter import LiteLLM
from adapters.llm.offline_policy import OfflinePolicyLLM
from adapters.llm.price_table import price_entries
from adapters.llm.replay import ReplayLLM
from application.evals.bakeoff import BakeoffConfig, Contender, pairwise, run_bakeoff
from application.evals.bakeoff_report import MIN_REPEATS, BakeoffReport
from application.evals.blind_sample import COLUMNS, SAMPLE_SIZE, BlindSample, blind_sample
from application.evals.suites import SUITES, SuiteName
from domain.ports.llm import LLM
from entrypoints.bootstrap import fail, run, start
from entrypoints.commands.evals_backtest import DEFAULT_DATA, backtest_suite
from entrypoints.commands.evals_inputs import read_datasets
from entrypoints.commands.evals_run import DATASETS, StepProgress, step_progress
from entrypoints.commands.options import check_data_dirs
from entrypoints.settings import LLMSettings, Settings
from entrypoints.wiring.system import daily_cap_usd

ROOT = Path(__file__).resolve().parents[2]
CASSETTES = ROOT / "evals" / "cassettes" / "bakeoff"
OFFLINE = "offline"
err = Console(stderr=True)


@dataclass(frozen=True)
class ModelChoice:
    """One `--model`: the litellm model id (or "offline") and the server it is asked on (None: the provider's)."""

    model: str
    api_base: str | None = None

    @property
    def slug(self) -> str:
        """The model id as a directory name."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.model).strip("-")


def parse_model(text: str) -> ModelChoice:
    """`MODEL` or `MODEL=http(s)://SERVER/v1`.

    Raises:
        ValueError: not "offline" nor a litellm model id with a known provider prefix.
    """
    model, _, base = text.partition("=")
    if base and not base.startswith(("http://", "https://")):
        raise ValueError(f"{text!r}: the part after '=' must be the server's http(s) URL")
    LLMSettings(signal_model=model)  # validates the provider prefix
    return ModelChoice(model, base or None)


def choices(models: list[str]) -> list[ModelChoice]:
    """The `--model` options, checked: at least two, each once."""
    try:
        chosen = [parse_model(m) for m in models]
    except ValueError as exc:
        fail(f"--model: {exc}")
    if len(chosen) < 2:
        fail("--model: a bake-off needs at least two models (repeat --model)")
    names = [c.model for c in chosen]
    if len(set(names)) != len(names) or len({c.slug for c in chosen}) != len(chosen):
        fail(f"--model: each model once, got {', '.join(names)}")
    return chosen


def _keys(settings: Settings) -> dict[str, str]:
    s = settings.llm
    return {name: k.get_secret_value() for name, k in (("anthropic", s.anthropic_api_key),
                                                       ("openai", s.openai_api_key),
                                                       ("gemini", s.gemini_api_key)) if k is not None}


def contender(settings: Settings, choice: ModelChoice, *, repeats: int, cassettes: Path, record: bool) -> Contender:
    """The model's LLM for each repeat: its answers (and failures) recorded or replayed apart."""
    if choice.model == OFFLINE:
        return Contender(OFFLINE, [OfflinePolicyLLM()])
    s = settings.llm
    lite = (LiteLLM(models={"default": choice.model}, api_keys=_keys(settings),
                    api_base=choice.api_base or s.api_base, timeout_s=s.timeout_seconds, max_retries=s.max_retries)
            if record else None)
    llms: list[LLM] = [
        FailureCassette(ReplayLLM(cassettes / choice.slug / f"repeat-{k + 1}", {"default": choice.model},
                                  mode="record" if record else "replay", inner=lite, report_original_cost=True))
        for k in range(repeats)]
    return Contender(choice.model, llms)


def backtest_settings(settings: Settings, choice: ModelChoice, *, cassettes: Path, record: bool,
                      concurrency: int) -> Settings:
    """The settings of one model's backtest: its server, its cassettes, its share of the bound."""
    update: dict[str, Any] = {"api_base": choice.api_base or settings.llm.api_base, "concurrency": concurrency}
    if choice.model != OFFLINE:
        update |= {"replay_dir": cassettes / choice.slug / "backtest", "record": record, "replay_reports_cost": True}
    return settings.model_copy(update={"llm": settings.llm.model_copy(update=update)})


@dataclass(frozen=True)
class BacktestOptions:
    """`--backtest` and its window."""

    data: list[Path]
    months: int
    symbols: int
    seed: int


async def backtests(settings: Settings, chosen: list[ModelChoice], options: BacktestOptions, *, cassettes: Path,
                    record: bool, concurrency: int, progress: StepProgress) -> dict[str, dict[str, Any]]:
    """Each model's backtest over the same window and symbols: as many at a time as `concurrency` allows, each
    with its share of it, so that the calls in flight never exceed it."""
    lanes = max(1, min(len(chosen), concurrency))
    gate = asyncio.Semaphore(lanes)

    async def one(choice: ModelChoice) -> dict[str, Any]:
        async with gate:
            s = backtest_settings(settings, choice, cassettes=cassettes, record=record,
                                  concurrency=max(1, concurrency // lanes))

            def told(step: str, done: int, total: int) -> None:
                progress(f"{choice.model} backtest {step}", done, total)

            try:
                return await backtest_suite(s, data_dirs=options.data, llm=choice.model, months=options.months,
                                            symbols=options.symbols, seed=options.seed, progress=told)
            except ValueError as exc:
                err.print(f"[red]{choice.model}: backtest failed:[/] {exc}")
                return {"error": str(exc)}

    found = await asyncio.gather(*(one(c) for c in chosen))
    return {c.model: r for c, r in zip(chosen, found, strict=True)}


@dataclass(frozen=True)
class Plan:
    """Everything one bake-off run needs."""

    chosen: list[ModelChoice]
    suites: list[SuiteName]
    datasets: Path
    config: BakeoffConfig
    cassettes: Path
    record: bool
    backtest: BacktestOptions | None


async def bakeoff(settings: Settings, plan: Plan) -> BakeoffReport:
    """The suites through every model at once, then the backtests; every pair of models compared."""
    data = read_datasets(plan.datasets)
    config = plan.config
    contenders = [contender(settings, c, repeats=config.repeats, cassettes=plan.cassettes, record=plan.record)
                  for c in plan.chosen]
    with step_progress() as progress:
        runs = await run_bakeoff(contenders, data, plan.suites, config, progress)
        found = ({} if plan.backtest is None else
                 await backtests(settings, plan.chosen, plan.backtest, cassettes=plan.cassettes, record=plan.record,
                                 concurrency=config.concurrency, progress=progress))
    return BakeoffReport(runs, pairwise(runs, config.resampling), found, replayed=not plan.record,
                         resampling=config.resampling, repeats=config.repeats)


def write_sample(sample: BlindSample, directory: Path) -> tuple[Path, Path]:
    """`sample.csv` (for the raters) and `key.json` (for whoever joins the ratings back) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    rows, key = directory / "sample.csv", directory / "key.json"
    with rows.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(sample.rows)
    key.write_text(json.dumps(sample.key, indent=2) + "\n", encoding="utf-8")
    return rows, key


def _money(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"${x:.6f}" if x < 0.01 else f"${x:,.4f}"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def table(document: dict[str, Any]) -> Table:
    """One row per model: mean score per suite, failures, latency, tokens, cost."""
    t = Table(title=f"Bake-off ({document['repeats']} repeats)")
    suites = list(next(iter(document["models"].values()))["suites"])
    for col in ("model", *suites, "failures", "p50 ms", "p95 ms", "tokens in/out", "cost", "per decision",
                "per trade"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for name, m in document["models"].items():
        scores = [f"{s['mean_score']:.3f}" if s["mean_score"] is not None else "n/a" for s in m["suites"].values()]
        trade = m.get("backtest", {}).get("cost_per_trade_usd")
        t.add_row(name, *scores, f"{m['failures']}/{m['decisions']}", _ms(m["latency_ms"]["p50"]),
                  _ms(m["latency_ms"]["p95"]), f"{m['tokens']['prompt']:,}/{m['tokens']['completion']:,}",
                  _money(m["cost_usd"]), _money(m["cost_per_decision_usd"]),
                  _money(trade) if "backtest" in m else "—")
    return t


def suite_names(suite: list[str]) -> list[SuiteName]:
    """The dataset suites asked for (every one by default)."""
    bad = [s for s in suite if s not in (*SUITES, "all")]
    if bad:
        fail(f"--suite must be one of {', '.join((*SUITES, 'all'))}, got {', '.join(bad)} (the backtest: "
             "--backtest)")
    return list(SUITES) if not suite or "all" in suite else [s for s in SUITES if s in suite]


def backtest_data(data: list[Path]) -> list[Path]:
    """The backtest's bar directories, checked (the shipped bars by default)."""
    check_data_dirs(data)
    return list(data) or list(DEFAULT_DATA)


def _print(document: dict[str, Any]) -> None:
    Console().print(table(document))
    for c in document["comparisons"]:
        typer.echo(c["summary"])
    for note in document["notes"]:
        typer.echo(f"- {note}")


def bakeoff_command(
    model: list[str] = typer.Option(..., "--model", help="a litellm model id (or 'offline'), optionally "
                                    "MODEL=http://server/v1 for its own OpenAI-compatible server; at least two"),
    suite: list[str] = typer.Option([], "--suite", help="signal, traps, risk, validator or all (the default); "
                                    "repeatable"),
    repeats: int = typer.Option(MIN_REPEATS, "--repeats", min=1, max=50, help="answers per row and model"),
    concurrency: int | None = typer.Option(None, "--concurrency", min=1, max=64, help="LLM calls in flight, every "
                                           "model together (default: QUORUM_LLM__CONCURRENCY)"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the first N rows of each suite"),
    backtest: bool = typer.Option(False, "--backtest/--no-backtest", help="also backtest each model over the "
                                  "same window and symbols"),
    months: int = typer.Option(6, "--months", min=1, max=120, help="backtest: the last N months of the data"),
    symbols: int = typer.Option(10, "--symbols", min=1, max=500, help="backtest: symbols traded"),
    data: list[Path] = typer.Option([], "--data", help="backtest: directory of daily OHLCV CSVs (repeatable; "
                                    "default: the shipped 2013-2018 bars)"),
    datasets: Path = typer.Option(DATASETS, "--datasets", help="directory written by `quorum evals build`"),
    cassettes: Path = typer.Option(CASSETTES, "--cassettes", help="where every answer is recorded, one "
                                   "directory per model"),
    record: bool = typer.Option(True, "--record/--replay", help="call the models and record every answer, or "
                                "replay the recorded answers offline and for free"),
    sample_out: Path | None = typer.Option(None, "--sample-out", help="write a blind, stratified sample of "
                                           "decisions for people to rate here (sample.csv and key.json)"),
    sample_size: int = typer.Option(SAMPLE_SIZE, "--sample-size", min=1, help="decisions in the sample"),
    seed: int = typer.Option(7, "--seed", help="seed of the sample and the backtest"),
    max_cost: float | None = typer.Option(None, "--max-cost", min=0, help="USD each model may spend on the "
                                          "suites (default: QUORUM_LLM__DAILY_CAP_USD); calls beyond it fail"),
    as_json: bool = typer.Option(False, "--json", help="print the JSON document"),
    out: Path | None = typer.Option(None, "--out", help="also write the JSON document to this file"),
) -> None:
    """Several LLMs on the same eval rows (and backtest) at once: per-model metrics, latency, tokens and cost,
    and a paired comparison of every pair; every answer recorded for a free, offline replay."""
    chosen, names = choices(model), suite_names(suite)
    if repeats < MIN_REPEATS:
        err.print(f"[yellow]warning:[/] {repeats} repeat(s) is not a bake-off: use {MIN_REPEATS} or more to see how "
                  "consistent each model is")
    settings, _ = start("backtest", params={"storage": "memory"}, env="backtest")
    config = BakeoffConfig(repeats=repeats, concurrency=concurrency or settings.llm.concurrency, limit=limit,
                           max_cost_usd=daily_cap_usd(settings) if max_cost is None else max_cost)
    options = BacktestOptions(backtest_data(data), months, symbols, seed) if backtest else None
    report = run(bakeoff(settings, Plan(chosen, names, datasets, config, cassettes, record, options)))
    document = report.to_dict({
        "suites_run": list(names), "limit": limit, "concurrency": config.concurrency,
        "cassettes": {"dir": str(cassettes), "mode": "record" if record else "replay"},
        "prices": price_entries(c.model for c in chosen),
        "backtest_options": None if options is None else {"months": months, "symbols": symbols, "seed": seed}})
    if sample_out is not None:
        rows, key = write_sample(blind_sample(report.runs, sample_size, seed), sample_out)
        document["sample"] = {"rows": str(rows), "key": str(key), "seed": seed}
    text = json.dumps(document, indent=2, allow_nan=False)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    if as_json:
        typer.echo(text)
    else:
        _print(document)
