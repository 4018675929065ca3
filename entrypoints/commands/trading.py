"""`quorum trading pause|resume|status`: stop and restart new cycles by hand (recorded in the event log)."""

from __future__ import annotations

import getpass
import json

import typer

from application.control import is_paused, set_paused
from domain.memory import DEFAULT_SCOPE
from entrypoints.bootstrap import run, start

app = typer.Typer(help="Pause or resume trading cycles.", no_args_is_help=True)


@app.command()
def pause(reason: str = typer.Option("", help="why"), by: str | None = typer.Option(None, help="who"),
          scope: str = typer.Option(DEFAULT_SCOPE)) -> None:
    """Pause trading: cycles are skipped (and say so in the event log) until resumed."""
    _, container = start()
    control = run(set_paused(container.uow_factory(), scope, paused=True, by=by or getpass.getuser(),
                             as_of=container.system_clock().now(), reason=reason))
    typer.echo(f"trading paused by {control.by}" + (f": {reason}" if reason else ""))


@app.command()
def resume(reason: str = typer.Option("", help="why"), by: str | None = typer.Option(None, help="who"),
           scope: str = typer.Option(DEFAULT_SCOPE)) -> None:
    """Resume trading after a pause (a tripped circuit breaker is resumed with `quorum breaker resume`)."""
    _, container = start()
    control = run(set_paused(container.uow_factory(), scope, paused=False, by=by or getpass.getuser(),
                             as_of=container.system_clock().now(), reason=reason))
    typer.echo(f"trading resumed by {control.by}")


@app.command()
def status(scope: str = typer.Option(DEFAULT_SCOPE), as_json: bool = typer.Option(False, "--json")) -> None:
    """Whether trading is paused."""
    _, container = start()
    paused = run(is_paused(container.uow_factory(), scope))
    typer.echo(json.dumps({"paused": paused}) if as_json else ("paused" if paused else "trading"))
