"""The paper campaign on in-memory repositories: starting it (refused on a live account or beside an active one),
its status measured from a constructed history (met, and not met), the breaker drill, the chat probe and the daily
report that goes to every alert channel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.chat.agent import ChatAssistant
from application.paper.campaign import (
    CampaignError,
    CampaignNotFoundError,
    campaign_status,
    drill_scope,
    expected_cycles,
    start_campaign,
    status_to_json,
    stop_campaign,
)
from application.paper.chat_probe import probe_chat
from application.paper.criteria import CRITERIA
from application.paper.drill import breaker_drill, untripped_rules
from application.paper.report import paper_report_job
from application.schedule import ScheduleConfig
from domain.alerts import AlertRoutes, render_alert
from domain.events import Event, EventType, Severity
from domain.models.account import Account
from domain.models.trading import Fill, Side
from domain.ports.repositories import EquityPoint, EvalRunRecord, EventQuery, FillRecord
from domain.risk.config import BreakerSettings
from tests.support.chat_fakes import SpyMarket, make_chat_world

CAL = NyseCalendar()
NY = ZoneInfo("America/New_York")
SCOPE = "live"
TUE, WED = date(2024, 3, 5), date(2024, 3, 6)
D = Decimal


def ny(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), NY).astimezone(UTC)


class FakeBroker:
    def __init__(self, *, is_paper: bool = True, equity: str = "1000") -> None:
        self.is_paper, self.equity = is_paper, D(equity)

    async def account(self) -> Account:
        return Account(cash=self.equity, equity=self.equity, buying_power=self.equity)


@pytest.fixture
def uow_factory() -> Any:
    db = InMemoryDatabase(HashingEmbedder())
    return lambda: InMemoryUnitOfWork(db)


async def start(uow_factory: Any, name: str = "two-days", days: int = 2, at: datetime = ny(TUE, 8), **kw: Any) -> Any:
    return await start_campaign(uow_factory, kw.pop("broker", FakeBroker()), SCOPE, name=name, days=days,
                                settings_snapshot={"cycle_minutes": 30}, as_of=at, **kw)


async def add(uow_factory: Any, *events: Event, equity: Sequence[EquityPoint] = (), fills: Sequence[Fill] = (),
              runs: Sequence[EvalRunRecord] = ()) -> None:
    async with uow_factory() as uow:
        await uow.events.add(list(events))
        for p in equity:
            await uow.equity.add(SCOPE, p)
        await uow.fills.add([FillRecord(f, SCOPE, None) for f in fills])
        for r in runs:
            await uow.eval_runs.add(r)
        await uow.commit()


async def good_history(uow_factory: Any, *, skip_cycle: bool = False) -> None:
    """Two sessions: every cycle ran, equity up twice, one winning round trip, chat answered, evals ok."""
    ids = expected_cycles(CAL, SCOPE, ny(TUE, 8), ny(WED, 17), ScheduleConfig())
    started = [Event(EventType.CYCLE_STARTED, ny(TUE, 10), "started", cycle_id=c, scope=SCOPE)
               for c in ids[1 if skip_cycle else 0:]]
    probes = [Event(EventType.CHAT_PROBE, ny(d, 16, 15), "probe", payload={"ok": True, "model": "router"},
                    scope=SCOPE) for d in (TUE, WED)]
    await add(uow_factory, *started, *probes,
              equity=[EquityPoint(ny(TUE, 15, 55), D(1010), D(900), D(110)),
                      EquityPoint(ny(WED, 15, 55), D(1030), D(1030), D(0))],
              fills=[Fill("b1", "AAA", Side.BUY, D(1), D(100), D(0), ny(TUE, 10)),
                     Fill("s1", "AAA", Side.SELL, D(1), D(120), D(0), ny(WED, 11))],
              runs=[EvalRunRecord("ev-1", SCOPE, ny(WED, 18), "nightly", "key", "offline", {}, "ok")])


async def test_a_campaign_starts_on_a_paper_account_only_and_one_at_a_time(uow_factory: Any) -> None:
    with pytest.raises(CampaignError, match="paper account"):
        await start(uow_factory, broker=FakeBroker(is_paper=False))
    campaign = await start(uow_factory)
    assert (campaign.starting_equity, campaign.target_sessions, campaign.account_id) == (D(1000), 2, "paper")
    with pytest.raises(CampaignError, match="still active"):
        await start(uow_factory, name="another")
    with pytest.raises(CampaignError, match="already has a campaign named"):
        await start(uow_factory)
    assert (await start(uow_factory, name="later", at=ny(WED, 20), calendar=CAL)).name == "later", \
        "a campaign that ran its sessions is no longer active"
    stopped = await stop_campaign(uow_factory, SCOPE, as_of=ny(WED, 21))
    assert stopped.name == "later" and stopped.ended_at == ny(WED, 21)
    with pytest.raises(CampaignError, match="was stopped"):
        await stop_campaign(uow_factory, SCOPE, as_of=ny(WED, 22))
    with pytest.raises(CampaignNotFoundError):
        await campaign_status(uow_factory, CAL, "nobody", as_of=ny(WED, 20))


async def test_a_history_that_meets_every_criterion_is_met(uow_factory: Any) -> None:
    await start(uow_factory)
    await good_history(uow_factory)
    await breaker_drill(uow_factory, SCOPE, equity=D(1030), settings=BreakerSettings(), as_of=ny(WED, 19))
    status = await campaign_status(uow_factory, CAL, SCOPE, as_of=ny(WED, 20))
    assert [k.name for k in status.criteria] == list(CRITERIA)
    assert {k.name: k.passed for k in status.criteria} == dict.fromkeys(CRITERIA, True), status.criteria
    assert status.sessions == 2 and status.complete and status.met
    assert status_to_json(status)["met"] is True


async def test_a_missed_cycle_and_no_drill_fail_the_campaign(uow_factory: Any) -> None:
    await start(uow_factory)
    await good_history(uow_factory, skip_cycle=True)
    status = await campaign_status(uow_factory, CAL, SCOPE, as_of=ny(WED, 20))
    verdicts = {k.name: k.passed for k in status.criteria}
    assert verdicts["no crash"] is False and verdicts["every breaker rule exercised"] is False
    assert verdicts["Sharpe > 0"] is True and status.complete and not status.met


async def test_in_the_middle_of_the_first_session_little_is_measurable(uow_factory: Any) -> None:
    await start(uow_factory)
    status = await campaign_status(uow_factory, CAL, SCOPE, as_of=ny(TUE, 9))
    assert status.sessions == 0 and not status.complete
    assert [k.passed for k in status.criteria] == [None, None, None, None, False, None, None]


async def test_the_drill_trips_every_rule_in_its_own_scope(uow_factory: Any) -> None:
    settings = BreakerSettings(max_daily_loss_pct=0.3, max_drawdown_pct=0.2)
    results = await breaker_drill(uow_factory, SCOPE, equity=D(650), settings=settings, as_of=ny(TUE, 12))
    assert [(r.rule, r.tripped) for r in results] == [("drawdown", True), ("daily_loss", True),
                                                       ("consecutive_losses", True), ("system_errors", True)]
    async with uow_factory() as uow:
        drilled = await uow.events.query(EventQuery(drill_scope(SCOPE), types=(EventType.BREAKER_TRIPPED,)))
        trading = await uow.events.query(EventQuery(SCOPE))
    assert sorted(e.payload["trigger"] for e in drilled) == sorted(r.rule for r in results)
    assert all(e.payload["drill"] for e in drilled) and trading == []
    assert await untripped_rules(uow_factory, SCOPE, since=ny(TUE, 8), until=ny(TUE, 12)) == ()


async def test_the_chat_probe_records_an_answer_and_a_failure() -> None:
    world = make_chat_world()
    assistant = ChatAssistant(world.tools, uow_factory=world.uow, scope="live", daily_cap_usd=0.0, tz=CAL.tz)
    ok = await probe_chat(assistant, world.uow, "live", as_of=world.clock.now())
    assert ok.payload["ok"] and ok.payload["model"] == "router" and "portfolio" in ok.payload["detail"]

    class Broken:
        async def answer(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("socket closed")

    failed = await probe_chat(Broken(), world.uow, "live", as_of=world.clock.now())
    assert not failed.payload["ok"] and failed.severity is Severity.WARNING and "socket closed" in failed.message


async def test_the_daily_report_is_written_once_a_session_and_goes_to_every_channel(uow_factory: Any) -> None:
    assert await paper_report_job(uow_factory, CAL, SCOPE, ny(TUE, 16, 15)) is None, "no campaign, no report"
    await start(uow_factory)
    await good_history(uow_factory)
    probed: list[datetime] = []

    async def probe(at: datetime) -> None:
        probed.append(at)

    market = SpyMarket({date(2024, 3, 4): 500.0, TUE: 505.0, WED: 500.0})
    event = await paper_report_job(uow_factory, CAL, SCOPE, ny(WED, 16, 15), market=market, probe=probe)
    assert event is not None and probed == [ny(WED, 16, 15)]
    p = event.payload
    assert (p["campaign"], p["day"], p["sessions"], p["equity"]) == ("two-days", "2024-03-06", 2, "1030.00")
    assert p["day_return_pct"] == pytest.approx(1030 / 1010 - 1, abs=1e-6)
    assert p["spy_day_return_pct"] == pytest.approx(500 / 505 - 1, abs=1e-6)
    assert p["spy_campaign_return_pct"] == pytest.approx(0.0)
    assert (p["fills"], p["round_trips"]) == (1, 1) and len(p["criteria"]) == len(CRITERIA)
    assert await paper_report_job(uow_factory, CAL, SCOPE, ny(WED, 16, 15), market=market) is None
    alert = render_alert(event)
    assert "two-days" in alert.title and "FAIL every breaker rule exercised" in alert.body
    assert "vs SPY -0.99%" in alert.body
    assert AlertRoutes.default().channels_for(alert) == ("discord", "email", "log")
    assert await paper_report_job(uow_factory, CAL, SCOPE, ny(date(2024, 3, 7), 16, 15)) is None, \
        "the campaign ran its two sessions"


async def test_the_daily_report_shows_equity_in_the_configured_currency_beside_usd(uow_factory: Any) -> None:
    from application.currency import CurrencyDisplay

    await start(uow_factory)
    await good_history(uow_factory)
    gbp = CurrencyDisplay("GBP", configured_rate=Decimal("0.8"))
    event = await paper_report_job(uow_factory, CAL, SCOPE, ny(WED, 16, 15), currency=gbp)
    assert event is not None and event.payload["display_currency"]["end_equity"] == "824.00"
    assert "equity 1030.00 USD (824.00 GBP)" in event.message
