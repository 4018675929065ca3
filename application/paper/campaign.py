"""Start, stop and measure a paper campaign (`domain.paper`), from what the system records in its scope.

A campaign is kept in the scope's `paper_campaigns` state document (`application.paper.store`). Its status is
measured whenever asked, never cached: the sessions elapsed, then each criterion of `application.paper.criteria`
from the event log (cycles, system errors, start-ups, breaker trips, chat probes), the equity curve, the fills
and the eval runs, all between the start and `as_of` (or the stop).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from application.cycle.ids import cycle_id_for
from application.paper import criteria as crit
from application.paper.store import load_campaigns, save_campaigns
from application.performance_report import daily_points
from application.round_trips import round_trips
from application.schedule import ScheduleConfig, session_slots
from domain.errors import QuorumError
from domain.events import Event, EventType
from domain.paper import CampaignStatus, PaperCampaign
from domain.ports.broker import Broker
from domain.ports.clock import MarketCalendar
from domain.ports.repositories import EventQuery
from domain.ports.uow import UnitOfWork, UnitOfWorkFactory

DEFAULT_SESSIONS = 10
ALL = 100_000
CYCLE_GRACE = timedelta(minutes=15)
"""A scheduled cycle counts as due once this long has passed since its slot (a queued cycle may run this late)."""
_EPS = timedelta(microseconds=1)
_STATUS_TYPES = (EventType.CYCLE_STARTED, EventType.CYCLE_SKIPPED, EventType.SYSTEM_ERROR, EventType.PROCESS_STARTED,
                 EventType.BREAKER_TRIPPED, EventType.CHAT_PROBE)


class CampaignError(QuorumError):
    """A campaign cannot be started or stopped as asked; the message says why."""


class CampaignNotFoundError(QuorumError):
    """There is no such campaign in the scope."""


def drill_scope(scope: str) -> str:
    """The scope the breaker drills of `scope` write to (`application.paper.drill`), apart from its trading."""
    return f"{scope}:breaker-drill"


async def start_campaign(uow_factory: UnitOfWorkFactory, broker: Broker, scope: str, *, name: str, days: int,
                         settings_snapshot: dict[str, Any], as_of: datetime, account_id: str = "",
                         calendar: MarketCalendar | None = None) -> PaperCampaign:
    """Record the start of a paper campaign: the account's equity now and the settings it runs under.

    Args:
        uow_factory: units of work.
        broker: the account (must be a paper account).
        scope: the account scope the campaign measures.
        name: its name, unique in the scope.
        days: how many trading sessions it runs (at least 1).
        settings_snapshot: the settings that matter for the verdict (JSON-compatible; `cycle_minutes` is read to
            know which cycles were due).
        as_of: now (timezone-aware).
        account_id: what names the account (default "paper").
        calendar: with it, a campaign that ran its sessions no longer counts as active.

    Raises:
        CampaignError: a live (non-paper) account, a bad name or number of days, a campaign of that name, or
            another campaign still active in the scope.
    """
    if not broker.is_paper:
        raise CampaignError("a paper campaign runs on a paper account: this broker trades real money "
                            "(set QUORUM_BROKER__PAPER=true)")
    if not name.strip() or days < 1:
        raise CampaignError(f"a campaign needs a name and at least one session, got {name!r} and {days}")
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    account = await broker.account()
    campaign = PaperCampaign(name=name.strip(), scope=scope, started_at=as_of, target_sessions=days,
                             account_id=account_id or "paper", starting_equity=account.equity,
                             settings=dict(settings_snapshot))
    async with uow_factory() as uow:
        campaigns = await load_campaigns(uow, scope)
        if any(c.name == campaign.name for c in campaigns):
            raise CampaignError(f"scope {scope} already has a campaign named {campaign.name!r}")
        active = [c for c in campaigns if _active(c, calendar, as_of)]
        if active:
            raise CampaignError(f"campaign {active[-1].name!r} is still active in scope {scope}: stop it first "
                                "(`quorum paper stop`)")
        await save_campaigns(uow, scope, [*campaigns, campaign], at=as_of)
        await uow.commit()
    return campaign


async def stop_campaign(uow_factory: UnitOfWorkFactory, scope: str, *, as_of: datetime,
                        name: str | None = None) -> PaperCampaign:
    """Stop a campaign (the latest one by default): it is measured up to `as_of` from then on.

    Raises:
        CampaignNotFoundError: no such campaign.
        CampaignError: it was stopped already.
    """
    async with uow_factory() as uow:
        campaigns = await load_campaigns(uow, scope)
        found = _pick(campaigns, scope, name)
        if found.ended_at is not None:
            raise CampaignError(f"campaign {found.name!r} was stopped at {found.ended_at.isoformat()}")
        stopped = replace(found, ended_at=as_of)
        await save_campaigns(uow, scope, [stopped if c.name == found.name else c for c in campaigns], at=as_of)
        await uow.commit()
    return stopped


async def list_campaigns(uow_factory: UnitOfWorkFactory, scope: str) -> list[PaperCampaign]:
    """Every campaign of `scope`, oldest first."""
    async with uow_factory() as uow:
        return await load_campaigns(uow, scope)


async def find_campaign(uow_factory: UnitOfWorkFactory, scope: str, *, name: str | None = None) -> PaperCampaign:
    """The campaign called `name`, or the latest started one.

    Raises:
        CampaignNotFoundError: there is none.
    """
    return _pick(await list_campaigns(uow_factory, scope), scope, name)


def _pick(campaigns: list[PaperCampaign], scope: str, name: str | None) -> PaperCampaign:
    found = [c for c in campaigns if name is None or c.name == name]
    if not found:
        what = f"no campaign named {name!r}" if name else "no paper campaign"
        raise CampaignNotFoundError(f"{what} in scope {scope}: start one with `quorum paper start`")
    return found[-1]


def _active(c: PaperCampaign, calendar: MarketCalendar | None, as_of: datetime) -> bool:
    if c.ended_at is not None:
        return False
    return calendar is None or sessions_elapsed(calendar, c.started_at, as_of) < c.target_sessions


def sessions_elapsed(calendar: MarketCalendar, start: datetime, end: datetime) -> int:
    """Trading sessions that closed after `start` and at or before `end`."""
    return len(closed_sessions(calendar, start, end))


def closed_sessions(calendar: MarketCalendar, start: datetime, end: datetime) -> list[date]:
    """The sessions that closed after `start` and at or before `end`, oldest first."""
    if end <= start:
        return []
    days = calendar.sessions(start.astimezone(calendar.tz).date(), end.astimezone(calendar.tz).date())
    return [d for d in days if start < calendar.session_close(d) <= end]


def expected_cycles(calendar: MarketCalendar, scope: str, start: datetime, end: datetime,
                    config: ScheduleConfig) -> list[str]:
    """Ids of the scheduled cycles due between `start` and `end` (each `CYCLE_GRACE` past its slot)."""
    if end <= start:
        return []
    days = calendar.sessions(start.astimezone(calendar.tz).date(), end.astimezone(calendar.tz).date())
    return [cycle_id_for(scope, slot, "scheduled", tz=calendar.tz) for d in days
            for slot in session_slots("cycle", d, calendar, config) if start <= slot and slot + CYCLE_GRACE <= end]


def schedule_of(c: PaperCampaign) -> ScheduleConfig:
    """The schedule the campaign's cycles ran on (its settings' `cycle_minutes`, else the default)."""
    minutes = c.settings.get("cycle_minutes")
    return ScheduleConfig(cycle_minutes=int(minutes)) if isinstance(minutes, int) and minutes >= 1 else ScheduleConfig()


async def campaign_status(uow_factory: UnitOfWorkFactory, calendar: MarketCalendar, scope: str, *,
                          as_of: datetime, name: str | None = None) -> CampaignStatus:
    """Measure a campaign (the latest of `scope` by default) at `as_of`: sessions elapsed and every criterion.

    Raises:
        CampaignNotFoundError: there is no such campaign.
    """
    c = await find_campaign(uow_factory, scope, name=name)
    end = as_of if c.ended_at is None else min(as_of, c.ended_at)
    async with uow_factory() as uow:
        return await measure(uow, calendar, c, as_of=as_of, end=end)


async def measure(uow: UnitOfWork, calendar: MarketCalendar, c: PaperCampaign, *, as_of: datetime,
                  end: datetime) -> CampaignStatus:
    """The status of `c` from the records between its start and `end`, inside `uow`."""
    start, until = c.started_at, end + _EPS
    events = await uow.events.query(EventQuery(c.scope, types=_STATUS_TYPES, since=start, until=until, limit=ALL))
    drills = await uow.events.query(EventQuery(drill_scope(c.scope), types=(EventType.BREAKER_TRIPPED,), since=start,
                                               until=until, limit=ALL))
    before = await uow.equity.list(c.scope, until=start)
    points = await uow.equity.list(c.scope, since=start, until=until)
    fills = await uow.fills.list(c.scope, since=start, until=until)
    runs = [r for r in await uow.eval_runs.list(c.scope, limit=200, documents=False) if start <= r.at <= end]
    sessions = closed_sessions(calendar, start, end)
    closes = [(p.equity, p.net_deposits) for d, p in daily_points(points, calendar.tz) if d in set(sessions)]
    deposits = before[-1].net_deposits if before else (points[0].net_deposits if points else Decimal(0))
    trips = round_trips([r.fill for r in fills])
    criteria = (
        crit.no_crash(expected_cycles(calendar, c.scope, start, end, schedule_of(c)),
                      [e for e in events if e.type not in (EventType.BREAKER_TRIPPED, EventType.CHAT_PROBE)
                       and not (e.type is EventType.PROCESS_STARTED and e.at <= start)]),
        crit.sharpe(crit.daily_returns(c.starting_equity, deposits, closes)),
        crit.win_rate(trips),
        crit.worst_trade(trips),
        crit.breaker_rules(_of(events, EventType.BREAKER_TRIPPED), drills),
        crit.chat_answering(_of(events, EventType.CHAT_PROBE)),
        crit.evals_passing(runs),
    )
    return CampaignStatus(campaign=c, as_of=as_of, sessions=len(sessions), criteria=criteria)


def _of(events: list[Event], kind: EventType) -> list[Event]:
    return [e for e in events if e.type is kind]


def status_to_json(status: CampaignStatus) -> dict[str, Any]:
    """The status as JSON (CLI `--json`, `GET /api/paper`)."""
    c = status.campaign
    return {"name": c.name, "scope": c.scope, "account_id": c.account_id, "started_at": c.started_at.isoformat(),
            "ended_at": None if c.ended_at is None else c.ended_at.isoformat(), "as_of": status.as_of.isoformat(),
            "starting_equity": str(c.starting_equity), "sessions": status.sessions,
            "target_sessions": c.target_sessions, "complete": status.complete, "met": status.met,
            "criteria": [{"name": k.name, "passed": k.passed, "detail": k.detail} for k in status.criteria],
            "settings": c.settings}
