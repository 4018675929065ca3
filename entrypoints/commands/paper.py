"""`quorum paper start|status|stop|drill`: the paper campaign that must meet the go-live criteria (docs/paper.md)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from application.paper.campaign import campaign_status, start_campaign, status_to_json, stop_campaign
from application.paper.drill import breaker_drill
from domain.memory import DEFAULT_SCOPE
from domain.paper import CampaignStatus
from entrypoints.bootstrap import fail, run, start
from entrypoints.container import Container, close_container
from entrypoints.wiring.paper import account_label, settings_snapshot

app = typer.Typer(help="Paper campaign: start it, measure the go-live criteria, drill the breaker.",
                  no_args_is_help=True)
T = TypeVar("T")
MARKS = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: "[yellow]n/a[/]"}


async def _with(container: Container, body: Callable[[], Awaitable[T]]) -> T:
    try:
        return await body()
    finally:
        await close_container(container)


def campaign_table(doc: dict[str, Any]) -> Table:
    """The criteria of a campaign's status (`status_to_json`) as a table titled with its sessions and verdict."""
    verdict = "MET" if doc["met"] else ("complete, criteria not met" if doc["complete"] else "running")
    table = Table(title=f"paper campaign {doc['name']}: session {doc['sessions']}/{doc['target_sessions']}, "
                        f"{verdict}")
    for column in ("criterion", "verdict", "measured"):
        table.add_column(column)
    for k in doc["criteria"]:
        table.add_row(k["name"], MARKS[k["passed"]], k["detail"])
    return table


def print_status(status: CampaignStatus, *, as_json: bool) -> None:
    """Print the status as JSON or as the criteria table (and the campaign's start)."""
    doc = status_to_json(status)
    if as_json:
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    c = status.campaign
    Console(width=160).print(campaign_table(doc))
    typer.echo(f"started {c.started_at.isoformat()} on {c.account_id} with {c.starting_equity} USD (scope {c.scope})"
               + (f", stopped {c.ended_at.isoformat()}" if c.ended_at else ""))


@app.command("start")
def start_command(name: str | None = typer.Option(None, "--name", help="campaign name (default paper-<date>)"),
                  days: int = typer.Option(10, "--days", min=1, max=260, help="trading sessions it runs"),
                  scope: str = typer.Option(DEFAULT_SCOPE)) -> None:
    """Start a paper campaign on the configured paper account (refused on a live account or while one runs)."""
    settings, container = start()
    now: datetime = container.system_clock().now()
    label = name or f"paper-{now.date().isoformat()}"
    campaign = run(_with(container, lambda: start_campaign(
        container.uow_factory(), container.broker(), scope, name=label, days=days,
        settings_snapshot=settings_snapshot(settings), as_of=now, account_id=account_label(settings),
        calendar=container.calendar())))
    typer.echo(f"paper campaign {campaign.name} started at {campaign.started_at.isoformat()} on "
               f"{campaign.account_id}: {campaign.target_sessions} sessions from {campaign.starting_equity} USD")


@app.command("status")
def status_command(name: str | None = typer.Option(None, "--name", help="campaign (default: the latest)"),
                   scope: str = typer.Option(DEFAULT_SCOPE),
                   as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Measure the campaign's criteria now (exit code 0 whatever the verdict; see `met` in --json)."""
    _, container = start()
    status = run(_with(container, lambda: campaign_status(container.uow_factory(), container.calendar(), scope,
                                                          as_of=container.system_clock().now(), name=name)))
    print_status(status, as_json=as_json)


@app.command("stop")
def stop_command(name: str | None = typer.Option(None, "--name", help="campaign (default: the latest)"),
                 scope: str = typer.Option(DEFAULT_SCOPE)) -> None:
    """Stop a campaign: it is measured up to now from then on, and another may start."""
    _, container = start()
    stopped = run(_with(container, lambda: stop_campaign(container.uow_factory(), scope,
                                                         as_of=container.system_clock().now(), name=name)))
    typer.echo(f"paper campaign {stopped.name} stopped at {stopped.ended_at.isoformat() if stopped.ended_at else '?'}")


@app.command("drill")
def drill_command(scope: str = typer.Option(DEFAULT_SCOPE)) -> None:
    """Trip every circuit-breaker rule by an injected fault in the drill scope (the account keeps trading); exit
    code 1 when a rule did not trip."""
    settings, container = start()

    async def body() -> Any:
        equity = (await container.broker().account()).equity
        return await breaker_drill(container.uow_factory(), scope, equity=equity, settings=settings.risk.breaker,
                                   as_of=container.system_clock().now())

    results = run(_with(container, body))
    for r in results:
        typer.echo(f"{'tripped' if r.tripped else 'DID NOT TRIP'} {r.rule}: {r.reason}")
    if not all(r.tripped for r in results):
        fail("a breaker rule did not trip", 1)
