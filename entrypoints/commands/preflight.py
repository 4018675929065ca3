"""`quorum preflight`: is everything Quorum needs configured and reachable? One line per check, with a fix.

Exit code 0 when every check passes (skipped ones included), 1 otherwise. Everything
printed goes through `redact`, so no registered secret reaches the terminal or a log
collector reading `--json`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import typer

from application.preflight import CheckResult, all_ok, run_checks
from domain.errors import ConfigurationError
from entrypoints.bootstrap import register_secrets
from entrypoints.container import build_container
from entrypoints.logging_setup import configure_logging, redact
from entrypoints.preflight_checks import PreflightChecks
from entrypoints.settings import load_settings

DEFAULT_TIMEOUT_S = 60.0
SETTINGS_HINT = "fix each setting named here (environment variable or .env file)"


def _one_line(text: str) -> str:
    return redact(" ".join(text.split()))


def _redacted(result: CheckResult) -> CheckResult:
    hint = _one_line(result.hint) if result.hint else None
    return dataclasses.replace(result, name=_one_line(result.name), detail=_one_line(result.detail), hint=hint)


def check_json(r: CheckResult) -> dict[str, Any]:
    """One check: {"name", "ok", "skipped", "detail", "hint", "duration_ms"} (milliseconds to 0.1)."""
    return {"name": r.name, "ok": r.ok, "skipped": r.skipped, "detail": r.detail, "hint": r.hint,
            "duration_ms": round(r.duration_ms, 1)}


def report_json(results: Sequence[CheckResult]) -> dict[str, Any]:
    """The machine-readable report: {"ok": bool, "checks": [each check, in order]}."""
    return {"ok": all_ok(results), "checks": [check_json(r) for r in results]}


def render_json(results: Sequence[CheckResult]) -> str:
    """The JSON document {"ok": bool, "checks": [...]}, each text on one line, secrets masked."""
    return redact(json.dumps(report_json([_redacted(r) for r in results]), indent=2))


def render_table(results: Sequence[CheckResult]) -> str:
    """One line per check (✓ pass, ✗ fail, - skipped) with its hint below it, then a summary; secrets masked."""
    width = max((len(r.name) for r in results), default=0)
    lines = []
    for r in map(_redacted, results):
        mark = typer.style("-", fg="yellow") if r.skipped else (
            typer.style("✓", fg="green") if r.ok else typer.style("✗", fg="red", bold=True))
        lines.append(f"{mark} {r.name:<{width}}  {r.detail}  ({r.duration_ms:.0f} ms)")
        if r.hint:
            lines.append(f"  {'':<{width}}  {'fix' if not r.ok else 'note'}: {r.hint}")
    failures = sum(1 for r in results if not r.ok)
    skips = sum(1 for r in results if r.skipped)
    lines.append(f"\npreflight: {len(results) - failures - skips} passed, {failures} failed, {skips} skipped"
                 + (" - ready" if not failures else " - fix the lines marked ✗"))
    return redact("\n".join(lines))


def _results(timeout: float) -> list[CheckResult]:
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        return [CheckResult("settings", False, str(exc), SETTINGS_HINT)]
    register_secrets(settings)
    configure_logging(settings.log_level if settings.log_level == "DEBUG" else "ERROR", settings.log_format)
    checks = PreflightChecks(settings, build_container(settings, "live")).checks()
    return asyncio.run(run_checks(
        checks, timeout_s=timeout,
        timeout_hint=f"rerun with `quorum preflight --timeout {timeout * 2:g}`; if it still overruns, "
                     "the service named by this check is not answering",
        error_hint="rerun with QUORUM_LOG_LEVEL=DEBUG to see the full error",
    ))


def preflight(
    as_json: bool = typer.Option(False, "--json", help="machine-readable output: {ok, checks: [...]}"),
    timeout: float = typer.Option(DEFAULT_TIMEOUT_S, "--timeout", min=1.0, help="seconds allowed for each check"),
) -> None:
    """Check database, migrations, vector extension, embedding model, broker, LLMs, Redis and market calendar."""
    try:
        results = _results(timeout)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    typer.echo(render_json(results) if as_json else render_table(results))
    if not all_ok(results):
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(preflight)
