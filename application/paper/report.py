"""The paper campaign's daily report: after each session's close, a PAPER_REPORT event that the alerts job sends
to every channel (Discord and email): the day's equity against SPY, the campaign's return against SPY, the trades,
the breaker events, the LLM cost and the criteria table (`domain.alert_templates.paper_report`).

The job first probes the chat (when it is given a probe), so the chat criterion is measured every day. It reports
the active campaign of the scope (the latest not stopped) for each session from its first to its target, once a
session (a second run of the same slot writes nothing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from application.currency import CurrencyDisplay
from application.paper.campaign import ALL, drill_scope, measure, sessions_elapsed
from application.paper.store import load_campaigns
from application.performance_report import benchmark_closes
from application.round_trips import round_trips
from domain.events import Event, EventType, Severity
from domain.market_conditions import BENCHMARK
from domain.money import money
from domain.paper import CampaignStatus, PaperCampaign
from domain.ports.clock import MarketCalendar
from domain.ports.market_data import MarketData
from domain.ports.repositories import EventQuery
from domain.ports.uow import UnitOfWork, UnitOfWorkFactory

Probe = Callable[[datetime], Awaitable[object]]
_EPS = timedelta(microseconds=1)
_BREAKER = (EventType.BREAKER_TRIPPED, EventType.BREAKER_ELIGIBLE, EventType.BREAKER_RESUMED)


async def paper_report_job(uow_factory: UnitOfWorkFactory, calendar: MarketCalendar, scope: str, as_of: datetime, *,
                           market: MarketData | None = None, probe: Probe | None = None,
                           currency: CurrencyDisplay | None = None) -> Event | None:
    """Write the PAPER_REPORT event of the last session closed at or before `as_of`.

    Args:
        uow_factory: units of work.
        calendar: the exchange calendar.
        scope: the account scope.
        as_of: the job's slot (after the close).
        market: daily bars of SPY (None: the report has no SPY figures).
        probe: `await probe(as_of)` asks the chat its daily question (None: not probed).
        currency: the currency shown beside USD (None: USD only).

    Returns:
        The event, or None when there is no active campaign, the session is outside it or was reported already.
    """
    day = calendar.previous_session(as_of)
    open_, close = calendar.session_open(day), calendar.session_close(day)
    async with uow_factory() as uow:
        campaign = next((c for c in reversed(await load_campaigns(uow, scope)) if c.ended_at is None), None)
        if campaign is None or close <= campaign.started_at:
            return None
        if sessions_elapsed(calendar, campaign.started_at, close) > campaign.target_sessions:
            return None
        done = await uow.events.query(EventQuery(scope, types=(EventType.PAPER_REPORT,), since=open_, limit=50))
        if any(e.payload.get("day") == day.isoformat() and e.payload.get("campaign") == campaign.name for e in done):
            return None
    if probe is not None:
        await probe(as_of)
    async with uow_factory() as uow:
        status = await measure(uow, calendar, campaign, as_of=as_of, end=as_of)
        payload = await _figures(uow, campaign, day, open_, as_of)
    payload |= await _spy(market, calendar, campaign, day, as_of)
    shown = await currency.at(as_of) if currency is not None else None
    if shown is not None and shown.currency != "USD" and "equity" in payload:
        payload["display_currency"] = shown.to_json(end_equity=Decimal(payload["equity"]))
    payload |= {"campaign": campaign.name, "day": day.isoformat(), "sessions": status.sessions,
                "target_sessions": campaign.target_sessions, "met": status.met,
                "criteria": [{"name": k.name, "passed": k.passed, "detail": k.detail} for k in status.criteria]}
    event = Event(type=EventType.PAPER_REPORT, at=as_of, message=_text(payload, status), severity=Severity.INFO,
                  payload=payload, scope=scope)
    async with uow_factory() as uow:
        await uow.events.add([event])
        await uow.commit()
    return event


async def _figures(uow: UnitOfWork, c: PaperCampaign, day: date, open_: datetime, as_of: datetime) -> dict[str, Any]:
    until = as_of + _EPS
    before = await uow.equity.list(c.scope, until=open_)
    today = await uow.equity.list(c.scope, since=open_, until=until)
    at_start = await uow.equity.list(c.scope, until=c.started_at)
    fills = await uow.fills.list(c.scope, since=c.started_at, until=until)
    breaker = [*await uow.events.query(EventQuery(c.scope, types=_BREAKER, since=open_, until=until, limit=ALL)),
               *await uow.events.query(EventQuery(drill_scope(c.scope), types=_BREAKER, since=open_, until=until,
                                                  limit=ALL))]
    out: dict[str, Any] = {
        "fills": sum(1 for f in fills if f.fill.at >= open_),
        "round_trips": sum(1 for t in round_trips([f.fill for f in fills]) if t.closed_at >= open_),
        "breaker_events": len(breaker),
        "breaker": [f"{e.type.value} {e.payload.get('trigger') or ''}{' (drill)' if e.payload.get('drill') else ''}"
                    .strip() for e in sorted(breaker, key=lambda e: e.at)],
        "llm_cost_usd": round(await uow.llm_calls.spend(c.scope, since=open_ - timedelta(hours=12), until=as_of), 4),
        "llm_cost_campaign_usd": round(await uow.llm_calls.spend(c.scope, since=c.started_at, until=as_of), 4),
    }
    if not today:
        return out
    end = today[-1]
    start_point = before[-1] if before and before[-1].at >= c.started_at else None
    start_equity = start_point.equity if start_point else c.starting_equity
    start_deposits = (start_point or (at_start[-1] if at_start else today[0])).net_deposits
    campaign_deposits = at_start[-1].net_deposits if at_start else today[0].net_deposits
    out |= {"equity": str(money(end.equity)),
            "day_return_pct": _ret(end.equity - (end.net_deposits - start_deposits), start_equity),
            "campaign_return_pct": _ret(end.equity - (end.net_deposits - campaign_deposits), c.starting_equity)}
    return out


def _ret(value: Decimal, base: Decimal) -> float | None:
    return round(float(value / base) - 1.0, 6) if base > 0 else None


async def _spy(market: MarketData | None, calendar: MarketCalendar, c: PaperCampaign, day: date,
               as_of: datetime) -> dict[str, Any]:
    if market is None:
        return {}
    base = calendar.previous_session(c.started_at)
    prev = calendar.previous_session(calendar.session_open(day))
    closes = await benchmark_closes(market, calendar, BENCHMARK, [min(base, prev), day], as_of=as_of)
    out: dict[str, Any] = {}
    if day in closes and prev in closes and closes[prev] > 0:
        out["spy_day_return_pct"] = round(closes[day] / closes[prev] - 1.0, 6)
    if day in closes and base in closes and closes[base] > 0:
        out["spy_campaign_return_pct"] = round(closes[day] / closes[base] - 1.0, 6)
    return out


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value):+.2%}"


def _text(p: dict[str, Any], status: CampaignStatus) -> str:
    verdict = ("all criteria met" if status.met else
               f"{sum(1 for k in status.criteria if k.passed is True)} of {len(status.criteria)} criteria pass")
    equity = f"equity {p['equity']} USD" if "equity" in p else "no equity recorded"
    shown = p.get("display_currency") or {}
    if shown.get("end_equity") is not None:
        equity += f" ({shown['end_equity']} {shown['currency']})"
    return (f"{p['campaign']} session {p['sessions']}/{p['target_sessions']} ({p['day']}): {equity}, day "
            f"{_pct(p.get('day_return_pct'))} vs SPY {_pct(p.get('spy_day_return_pct'))}, campaign "
            f"{_pct(p.get('campaign_return_pct'))} vs SPY {_pct(p.get('spy_campaign_return_pct'))}; {p['fills']} "
            f"fills, {p['round_trips']} round trips closed, {p['breaker_events']} breaker events; LLM "
            f"{p['llm_cost_usd']:.2f} USD today ({p['llm_cost_campaign_usd']:.2f} USD campaign); {verdict}.")
