"""`quorum flatten`: the kill switch from the command line."""

from __future__ import annotations

import getpass
import json

import typer

from application.flatten import FlattenResult, flatten
from domain.memory import DEFAULT_SCOPE
from entrypoints.api.shapes import flatten_json
from entrypoints.bootstrap import run, start
from entrypoints.container import Container, close_container


async def _flatten(container: Container, *, scope: str, by: str, reason: str) -> FlattenResult:
    try:
        return await flatten(container.uow_factory(), container.broker(), container.calendar(), scope=scope,
                             as_of=container.clock().now(), by=by, reason=reason)
    finally:
        await close_container(container)


def flatten_command(
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    reason: str = typer.Option("", help="why (kept in the event log and the alert)"),
    by: str | None = typer.Option(None, help="who (default: the login name)"),
    scope: str = typer.Option(DEFAULT_SCOPE),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Kill switch: pause trading, cancel every open order and close every position at market (queued for the
    next open when the market is closed). Asks for confirmation unless --yes."""
    settings, container = start(kill_switch=True)
    account = "LIVE (real money)" if settings.broker.provider == "alpaca" and not settings.broker.paper else (
        "paper" if settings.broker.provider == "alpaca" else "simulated")
    if not yes and not typer.confirm(f"Cancel every order and close every position of the {account} account "
                                     f"({scope})?", default=False):
        typer.echo("nothing done")
        raise typer.Exit(1)
    result = run(_flatten(container, scope=scope, by=by or getpass.getuser(), reason=reason))
    typer.echo(json.dumps(flatten_json(result), indent=2) if as_json else result.message)
    if result.failed:
        raise typer.Exit(1)
