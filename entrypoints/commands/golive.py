"""`quorum golive`: the final gates before real money, and the switch to live (docs/go-live.md).

`quorum golive --check` runs every gate and prints one line each with a fix; exit code 1 when one fails.
`quorum golive` runs them too and, only when every gate passed, writes the go-live record
(`<data_dir>/golive.json`: who, when, the gate results, the live account) that live trading requires besides
QUORUM_LIVE_TRADING=I_UNDERSTAND, and prints the environment to set. Everything printed goes through `redact`.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Sequence

import typer

from application.golive import GateOutcome, GoLiveRecord
from application.preflight import CheckResult, all_ok, run_checks
from domain.errors import ConfigurationError
from entrypoints.bootstrap import register_secrets
from entrypoints.commands.preflight import SETTINGS_HINT, report_json
from entrypoints.container import close_container
from entrypoints.golive_checks import GoLiveChecks, system_container
from entrypoints.golive_record import account_fingerprint, write_record
from entrypoints.logging_setup import configure_logging, redact
from entrypoints.settings import LIVE_TRADING_ACK, Settings, load_settings

DEFAULT_TIMEOUT_S = 300.0


def _line(text: str) -> str:
    return redact(" ".join(text.split()))


def render_table(results: Sequence[CheckResult]) -> str:
    """One line per gate (✓ pass, ✗ fail) with its fix below it, then a summary; secrets masked."""
    width = max((len(r.name) for r in results), default=0)
    lines = []
    for r in results:
        mark = typer.style("✓", fg="green") if r.ok else typer.style("✗", fg="red", bold=True)
        lines.append(f"{mark} {r.name:<{width}}  {_line(r.detail)}  ({r.duration_ms / 1000:.1f} s)")
        if r.hint:
            lines.append(f"  {'':<{width}}  {'fix' if not r.ok else 'note'}: {_line(r.hint)}")
    failures = sum(1 for r in results if not r.ok)
    lines.append(f"\ngolive: {len(results) - failures} gates passed, {failures} failed"
                 + (" - ready for live" if not failures else " - fix the lines marked ✗"))
    return redact("\n".join(lines))


async def _gates(settings: Settings, timeout_s: float) -> tuple[list[CheckResult], GoLiveChecks]:
    container = system_container(settings)
    gates = GoLiveChecks(settings, container)
    try:
        results = await run_checks(gates.checks(), timeout_s=timeout_s,
                                   timeout_hint=f"rerun with `quorum golive --check --timeout {timeout_s * 2:g}`",
                                   error_hint="rerun with QUORUM_LOG_LEVEL=DEBUG to see the full error")
    finally:
        await close_container(container)
    return results, gates


def switch_instructions(settings: Settings, path: str) -> str:
    """What to set (and run) to trade live once the record is written."""
    return "\n".join([
        f"go-live record written: {path}",
        "To trade live, set in the environment (or .env) of every Quorum process and restart them:",
        "  QUORUM_BROKER__PROVIDER=alpaca",
        "  QUORUM_BROKER__PAPER=false",
        "  QUORUM_BROKER__ALPACA_API_KEY=<the live key these gates used>",
        "  QUORUM_BROKER__ALPACA_SECRET_KEY=<its secret>",
        f"  QUORUM_LIVE_TRADING={LIVE_TRADING_ACK}",
        f"  QUORUM_DATA_DIR={settings.data_dir}   (where the record is)",
        "then `quorum preflight` and `docker compose -f docker-compose.prod.yml up -d` (or restart `quorum serve`).",
        "The record must be used within 7 days; back to paper: QUORUM_BROKER__PAPER=true (docs/go-live.md).",
    ])


def golive(
    check: bool = typer.Option(False, "--check", help="only run the gates; switch nothing"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output: {ok, checks: [...]}"),
    by: str | None = typer.Option(None, help="who switches (default: the login name); kept in the record"),
    timeout: float = typer.Option(DEFAULT_TIMEOUT_S, "--timeout", min=1.0, help="seconds allowed for each gate"),
) -> None:
    """Run the go-live gates (safety rules, breaker, rollback, hard limits, LLM retries and cap, pipeline, chat,
    evals, paper campaign, backups, alerts, live account); without --check, write the go-live record when all pass."""
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        results = [CheckResult("settings", False, str(exc), SETTINGS_HINT)]
        typer.echo(redact(json.dumps(report_json(results), indent=2)) if as_json else render_table(results))
        raise typer.Exit(1) from None
    register_secrets(settings)
    configure_logging(settings.log_level if settings.log_level == "DEBUG" else "CRITICAL", settings.log_format)
    try:
        results, gates = asyncio.run(_gates(settings, timeout))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    typer.echo(redact(json.dumps(report_json(results), indent=2)) if as_json else render_table(results))
    if not all_ok(results):
        if not check:
            typer.secho(f"refusing to switch to live: {sum(not r.ok for r in results)} gates failed",
                        fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    if check:
        return
    account = gates.account
    if account is None:  # every gate passed, so the live account gate read it
        raise typer.Exit(1)
    record = GoLiveRecord(account_fingerprint(settings), account.equity, account.cash, account.currency,
                          gates.clock.now(), by or getpass.getuser(),
                          tuple(GateOutcome(r.name, r.ok, _line(r.detail)) for r in results))
    path = write_record(settings.data_dir, record)
    typer.echo(switch_instructions(settings, str(path)), err=as_json)
