"""`quorum breaker ...`: circuit-breaker status and manual resume approval."""

from __future__ import annotations

import getpass
import json

import typer

from application.control import approve_breaker_resume, breaker_state
from domain.memory import DEFAULT_SCOPE
from entrypoints.bootstrap import fail, run, start

app = typer.Typer(help="Circuit breaker: status and manual resume.", no_args_is_help=True)


@app.command()
def status(scope: str = typer.Option(DEFAULT_SCOPE), as_json: bool = typer.Option(False, "--json")) -> None:
    """Show the breaker state and the last auto-resume check."""
    _, container = start()
    state = run(breaker_state(container.uow_factory(), scope))
    if state is None:
        typer.echo(json.dumps({"status": "active", "note": "no cycle has run yet"}) if as_json
                   else "breaker: active (no cycle has run yet)")
        return
    if as_json:
        typer.echo(json.dumps(state.to_dict(), indent=2))
        return
    typer.echo(f"breaker: {state.status.value}")
    if state.trip_reason:
        typer.echo(f"tripped at {state.tripped_at}: {state.trip_trigger}: {state.trip_reason}")
    if state.last_check:
        typer.echo(f"last resume check: {json.dumps(state.last_check)}")
    for a in state.approvals[-3:]:
        typer.echo(f"approved by {a.by} at {a.at.isoformat()} {a.note}")


@app.command()
def resume(
    approve: bool = typer.Option(False, "--approve", help="required: confirms a person approves the resume"),
    by: str = typer.Option(None, "--by", help="who approves (default: the current user)"),
    note: str = typer.Option("", help="why"),
    scope: str = typer.Option(DEFAULT_SCOPE),
) -> None:
    """Resume trading after a trip. Refused unless the breaker is eligible."""
    if not approve:
        fail("resuming trading needs --approve (a person must approve it)")
    settings, container = start()
    who = by or getpass.getuser()
    state = run(approve_breaker_resume(container.uow_factory(), scope, by=who, as_of=container.system_clock().now(),
                                       settings=settings.risk.breaker, note=note))
    typer.echo(f"breaker {state.status.value}: resume approved by {who}")
