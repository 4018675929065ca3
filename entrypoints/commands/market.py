"""`quorum market-closed`: may a deploy restart Quorum now? Only outside the NYSE session.

deploy/deploy.sh runs it (with the image about to be deployed) before it touches anything and refuses to go on
while it fails, unless forced. It needs no settings, database or network: only the exchange calendar.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import typer

from domain.ports.clock import MarketCalendar

DEFAULT_MARGIN_MINUTES = 15


def deploy_blocked(now: datetime, calendar: MarketCalendar, margin: timedelta) -> str | None:
    """Why a restart must wait at `now`, or None when the market is closed and does not open within `margin`.

    Args:
        now: the time of the deploy (timezone-aware).
        calendar: the exchange calendar (holidays and early closes included).
        margin: how long before the open a restart is already refused (a restart takes minutes, and the first
            cycle runs soon after the open).

    Returns:
        A one-line reason naming the session and its close, or None.
    """
    day = now.astimezone(calendar.tz).date()
    if not calendar.sessions(day, day):
        return None
    opens, closes = calendar.session_open(day), calendar.session_close(day)
    if not opens - margin <= now < closes:
        return None
    local = calendar.tz
    state = "open" if now >= opens else f"opens at {opens.astimezone(local):%H:%M %Z}"
    return (f"the NYSE session of {day:%a %Y-%m-%d} is {state}, closing at {closes.astimezone(local):%H:%M %Z} "
            f"(deploys wait for the close; a restart during the session could cut a cycle short)")


def market_closed(
    margin: int = typer.Option(DEFAULT_MARGIN_MINUTES, "--margin", min=0, max=240,
                               help="minutes before the open from which a deploy is already refused"),
) -> None:
    """Exit 0 when the NYSE is closed now (and does not open within --margin minutes), 1 during the session.
    deploy/deploy.sh runs it before restarting anything (FORCE=1 overrides)."""
    from adapters.calendar.nyse import NyseCalendar, SystemClock

    calendar = NyseCalendar()
    now = SystemClock().now()
    reason = deploy_blocked(now, calendar, timedelta(minutes=margin))
    if reason is not None:
        typer.echo(f"market open: {reason}", err=True)
        raise typer.Exit(1)
    typer.echo(f"market closed at {now.astimezone(calendar.tz):%Y-%m-%d %H:%M %Z}: a deploy may restart Quorum")
