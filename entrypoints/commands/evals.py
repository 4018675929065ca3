"""`quorum evals`: datasets, runs, bake-off, baselines. `build` writes the eval datasets from the shipped bars."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from application.evals.build import BuildParameters, BuiltDatasets, DataSource, build_datasets
from entrypoints.bootstrap import fail, run, start
from entrypoints.commands import evals_backtest, evals_bakeoff, evals_gate, evals_run
from entrypoints.commands.options import bar_files, check_data_dirs
from entrypoints.container import Container, close_container
from entrypoints.wiring.venue import NOT_STOCKS

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = (ROOT / "data" / "daily" / "sp500_2013_2018", ROOT / "data" / "daily" / "context")
DEFAULT_OUT = ROOT / "evals" / "datasets"
RESERVED = "sp500_2018_2024"
"""The held-out set: never a build input."""
SOURCE_FILES = ("PROVENANCE.md", "LICENSE.txt", "universe.json")

evals_app = typer.Typer(help="Evals: datasets, runs, bake-off, baselines", no_args_is_help=True)
evals_app.command("backtest")(evals_backtest.backtest)
evals_app.command("run")(evals_run.run_command)
evals_app.command("gate")(evals_gate.gate_command)
evals_app.command("history")(evals_gate.history_command)
evals_app.command("bakeoff")(evals_bakeoff.bakeoff_command)
err = Console(stderr=True)


def _shown(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


def _reserved(path: Path) -> bool:
    """Whether `path`, as given or wherever its links lead, names the held-out set."""
    return RESERVED in str(path) or RESERVED in str(path.resolve())


def _check_data(dirs: list[Path]) -> None:
    for d in dirs:
        if _reserved(d):
            fail(f"--data {d}: the 2018-2024 set is reserved for evaluation and never builds datasets")
        check_data_dirs([d])
        linked = next((f for f in bar_files(d) if _reserved(f)), None)
        if linked is not None:
            fail(f"--data {d}: {linked.name} links into the 2018-2024 set, reserved for evaluation")


def data_source(dirs: list[Path]) -> DataSource:
    """The data directories and the provenance and licence files beside them, with their hashes."""
    found: dict[str, str] = {}
    for d in dirs:
        for folder in (d, d.parent, d.parent.parent):
            for name in SOURCE_FILES:
                f = folder / name
                if f.is_file():
                    found[_shown(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return DataSource(tuple(_shown(d) for d in dirs), tuple(sorted(found.items())))


def write(built: BuiltDatasets, out: Path) -> list[Path]:
    """Write every file of the build into `out` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in sorted(built.files.items()):
        path = out / name
        path.write_bytes(data)
        paths.append(path)
    return paths


async def _build(container: Container, params: BuildParameters, source: DataSource) -> BuiltDatasets:
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err) as bar:
            err.print("loading bars…")
            market = container.market()
            tasks: dict[str, TaskID] = {}

            def progress(step: str, done: int, total: int) -> None:
                if step not in tasks:
                    tasks[step] = bar.add_task(step, total=total)
                bar.update(tasks[step], completed=done, total=total)

            return await build_datasets(market, container.calendar(), params=params, source=source,
                                        exclude=NOT_STOCKS, progress=progress)
    finally:
        await close_container(container)


@evals_app.command("build")
def build(
    data: list[Path] = typer.Option([], "--data", help="directory of daily OHLCV CSVs (repeatable; default: the "
                                    "shipped data/daily/sp500_2013_2018 and data/daily/context)"),
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="where the datasets are written"),
    seed: int = typer.Option(BuildParameters.seed, "--seed", help="seed of every draw"),
    as_json: bool = typer.Option(False, "--json", help="print the manifest as JSON"),
) -> None:
    """Build the eval datasets (JSONL and manifest.json), reproducibly, from real daily bars."""
    dirs = list(data) or list(DEFAULT_DATA)
    _check_data(dirs)
    _, container = start("backtest", params={"storage": "memory", "data_dirs": dirs}, env="backtest")
    began = time.perf_counter()
    built = run(_build(container, BuildParameters(seed=seed), data_source(dirs)))
    paths = write(built, out)
    took = time.perf_counter() - began
    if as_json:
        typer.echo(json.dumps(built.manifest, indent=2, sort_keys=True))
        return
    for name, entry in built.manifest["datasets"].items():
        err.print(f"{name:16} {entry['rows']:5} rows  {entry['version']}  {entry['labels']}")
    typer.echo(f"wrote {len(paths)} files to {_shown(out)} in {took:.1f} s")
