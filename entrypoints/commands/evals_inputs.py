"""What `quorum evals run` runs on and with: the datasets (committed files or built in memory) and the LLMs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from application.evals.build import BuildParameters, build_datasets
from application.evals.runner import EvalDatasets
from application.evals.suites import EvalRow
from domain.errors import DataError
from domain.evals.rows import RiskRow, SignalRow, TrapRow, ValidatorRow
from entrypoints.container import Container
from entrypoints.settings import LLMSettings, Settings
from entrypoints.wiring.venue import NOT_STOCKS

SCHEMAS: dict[str, type[BaseModel]] = {"signal": SignalRow, "traps": TrapRow, "risk": RiskRow,
                                       "validator": ValidatorRow}
MANIFEST = "manifest.json"
AGENTS = ("signal", "risk", "validator")
LATEST = datetime(2098, 12, 31, tzinfo=UTC)
"""An `as_of` after any bar (the calendar ends in 2099): asks the data for its last bar, not the clock."""


def parse_rows(name: str, text: str, where: str) -> list[EvalRow]:
    """The rows of one JSONL dataset (`name` picks the schema: "signal_named" is read as signal rows).

    Raises:
        DataError: a line is not a valid row.
    """
    schema = SCHEMAS.get(name.removesuffix("_named"))
    if schema is None:
        raise DataError(f"{where}: unknown dataset {name!r}")
    rows: list[EvalRow] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(schema.model_validate_json(line))  # type: ignore[arg-type]
        except ValidationError as exc:
            raise DataError(f"{where} line {number} is not a {schema.__name__}: {exc.errors()[0]['msg']}") from None
    return rows


def from_files(files: Mapping[str, bytes], manifest: Mapping[str, Any], where: str) -> EvalDatasets:
    """Datasets from a manifest and its files' bytes, each checked against its SHA-256.

    Raises:
        DataError: a file is missing or differs from its manifest entry.
    """
    rows: dict[str, list[EvalRow]] = {}
    versions: dict[str, str] = {}
    for name, entry in sorted(manifest.get("datasets", {}).items()):
        data = files.get(entry["file"])
        if data is None:
            raise DataError(f"{where}/{entry['file']} is missing")
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise DataError(f"{where}/{entry['file']} does not match its SHA-256 in {MANIFEST}: rebuild the "
                            "datasets with `quorum evals build`")
        rows[name] = parse_rows(name, data.decode(), f"{where}/{entry['file']}")
        versions[name] = str(entry["version"])
    return EvalDatasets(rows, versions)


def read_datasets(directory: Path) -> EvalDatasets:
    """The datasets of a directory written by `quorum evals build`.

    Raises:
        DataError: no manifest, or a file missing or changed.
    """
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} not found: build the datasets with `quorum evals build`") from None
    except ValueError as exc:
        raise DataError(f"{path} is not JSON: {exc}") from None
    files = {e["file"]: (directory / e["file"]).read_bytes() for e in manifest.get("datasets", {}).values()
             if (directory / e["file"]).is_file()}
    return from_files(files, manifest, str(directory))


async def last_day(container: Container) -> date:
    """The last session with stock bars in the container's market data.

    Raises:
        DataError: the data holds no stock bars.
    """
    market = container.market()
    stocks = [a.symbol for a in await market.assets() if a.asset_class == "us_equity" and a.symbol not in NOT_STOCKS]
    bars = await market.daily_bars(stocks, as_of=LATEST, lookback=1)
    days: list[date] = [b.days[-1] for b in bars.values() if len(b)]
    if not days:
        raise DataError("the data holds no stock bars")
    return max(days)


async def build_in_memory(container: Container, dirs: list[Path], rows: int | None,
                          progress: Callable[[str, int, int], None] | None) -> EvalDatasets:
    """Build every dataset from the container's market data (`--data`), up to its last bar, without writing.

    `rows` asks for that many scenarios per dataset (default: the committed sizes).
    """
    from entrypoints.commands.evals import data_source  # here: evals imports this module's command

    end = await last_day(container)
    base = BuildParameters()
    params = BuildParameters(n_signal=rows or base.n_signal, n_risk=rows or base.n_risk,
                             n_validator=rows or base.n_validator, end=end)

    def building(step: str, done: int, total: int) -> None:
        if progress is not None:
            progress(f"build {step}", done, total)

    try:
        built = await build_datasets(container.market(), container.calendar(), params=params,
                                     source=data_source(dirs), exclude=NOT_STOCKS, progress=building)
    except DataError as exc:
        raise DataError(f"{exc}; ask for fewer scenarios with --limit N") from None
    return from_files(built.files, built.manifest, "built from " + ", ".join(str(d) for d in dirs))


def eval_settings(settings: Settings, llm: str, cassettes: Path | None, record: bool) -> Settings:
    """The settings with `--llm` (offline, settings or one litellm model for every agent) and `--cassettes`.

    Raises:
        ValueError: `llm` is not offline, settings or a known litellm model string.
    """
    update: dict[str, Any] = {}
    if llm != "settings":
        model = LLMSettings(signal_model=llm).signal_model  # validates the provider prefix
        update = {f"{agent}_model": model for agent in (*AGENTS, "picker")}
    if cassettes is not None:
        update |= {"replay_dir": cassettes, "record": record}
    return settings.model_copy(update={"llm": settings.llm.model_copy(update=update)})


def llm_label(settings: Settings) -> str | dict[str, str]:
    """The model every agent uses, or agent -> model when they differ."""
    models = {agent: str(getattr(settings.llm, f"{agent}_model")) for agent in AGENTS}
    return models["signal"] if len(set(models.values())) == 1 else models
