"""The nightly evals' dependencies: the suite runner on the committed datasets, the baseline key, the committed
baseline and the git commit (see `application.evals.nightly`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from adapters.llm.price_table import price_entries
from application.evals.baseline import BaselineKey, agent_models, baseline_key, prompt_templates
from application.evals.nightly import EvalJob
from application.evals.results import DocumentError, EvalDocument, parse_document
from application.llm_spend import SpendLedger
from domain.events import Event
from domain.ports.clock import Clock
from domain.ports.uow import UnitOfWorkFactory
from entrypoints.settings import Settings

log = structlog.get_logger(__name__)
ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT / "evals" / "datasets"
BASELINE = ROOT / "evals" / "baseline.json"


def read_baseline(path: Path) -> EvalDocument:
    """The eval run document of a JSON file.

    Raises:
        DocumentError: the file is missing, is not JSON, or is not an eval run document.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DocumentError(f"{path}: not readable as JSON ({exc})") from None
    return parse_document(data, what=str(path))


def committed_baseline(path: Path) -> Callable[[], EvalDocument | None]:
    """Reads the committed baseline each time it is asked for; None (logged) when it is missing or unreadable."""

    def read() -> EvalDocument | None:
        try:
            return read_baseline(path)
        except DocumentError as exc:
            log.warning("eval_baseline_unreadable", error=str(exc))
            return None

    return read


def key_of(document: EvalDocument) -> BaselineKey:
    """The baseline key of a run: this code's prompts, the run's models with their litellm prices, its datasets."""
    models = agent_models(document.llm)
    return baseline_key(prompts=prompt_templates(), models=models, prices=price_entries(models.values()),
                        datasets=document.datasets)


def git_sha(settings: Settings) -> str | None:
    """QUORUM_EVALS__GIT_SHA, else the checkout's HEAD, else None."""
    if settings.evals.git_sha:
        return settings.evals.git_sha
    if not (ROOT / ".git").exists():
        return None
    try:
        found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,  # noqa: S603, S607
                               timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None


async def _suites(settings: Settings, datasets: Path, llm: str, ledger: SpendLedger | None = None) -> dict[str, Any]:
    from application.evals.runner import EvalRunner, RunConfig
    from application.evals.suites import SUITES
    from application.llm_gateway import LLMGateway
    from entrypoints.commands.evals_inputs import eval_settings, llm_label, read_datasets
    from entrypoints.wiring.system import daily_cap_usd, llms

    chosen = eval_settings(settings, llm, None, False)
    gateway = LLMGateway(llms(chosen), daily_cap_usd(chosen), "evals", UTC, ledger=ledger)
    result = await EvalRunner(gateway, RunConfig()).run(read_datasets(datasets), list(SUITES))
    return result.to_dict(llm_label(chosen) if llm != "offline" else "offline")


def suite_runner(settings: Settings, datasets: Path,
                 ledger: SpendLedger | None = None) -> Callable[[str], Awaitable[Mapping[str, Any]]]:
    """`await run(llm)`: every dataset suite on `datasets`, in a thread of its own (the offline policy is CPU work
    that would otherwise hold up the API and the scheduler of `quorum serve`); paid calls reserve on `ledger`, the
    process's (None: a ledger of their own)."""

    async def run(llm: str) -> Mapping[str, Any]:
        return await asyncio.to_thread(asyncio.run, _suites(settings, datasets, llm, ledger))

    return run


def eval_job(settings: Settings, uow_factory: UnitOfWorkFactory, clock: Clock, scope: str,
             notify: Callable[[Event], Awaitable[object]] | None, ledger: SpendLedger | None = None) -> EvalJob:
    """The nightly eval job of the settings (QUORUM_EVALS__*); its paid calls count on the process's `ledger`."""
    e = settings.evals
    return EvalJob(run_suites=suite_runner(settings, e.datasets_dir or DATASETS, ledger), key_of=key_of,
                   uow_factory=uow_factory, clock=clock, scope=scope, llm=e.nightly_llm,
                   committed_baseline=committed_baseline(e.baseline_file or BASELINE), notify=notify,
                   git_sha=git_sha(settings))


def evals_runner(settings: Settings, job: EvalJob) -> Callable[[datetime, str], Awaitable[object]] | None:
    """What the scheduler runs at 02:00 New York time (and the API on request); None when QUORUM_EVALS__NIGHTLY
    is false."""
    return job.run if settings.evals.nightly else None
