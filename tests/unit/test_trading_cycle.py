"""The trading cycle on the simulated world: atomicity, idempotent orders, breaker gating, bad LLM output."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from adapters.calendar.nyse import NEW_YORK
from application.control import approve_breaker_resume
from application.cycle.trading_cycle import BREAKER_DOC, client_order_id_for, cycle_id_for
from domain import breaker as brk
from domain.events import EventType
from domain.ports.llm import Decision, LLMRequest, LLMUsage
from domain.ports.repositories import EventQuery
from domain.verdict import Verdict
from entrypoints.settings import load_settings
from tests.support.world import CALENDAR, World, feed_close, feed_open, make_world

SESSIONS = CALENDAR.sessions(date(2024, 3, 1), date(2024, 6, 28))


async def events(world: World, *types: EventType) -> list[Any]:
    async with world.uow_factory() as uow:
        return await uow.events.query(EventQuery(scope=world.app.cycle.scope, types=tuple(types), limit=10_000))


async def first_trading_day(world: World) -> tuple[date, Any]:
    """Run sessions until a cycle sends at least one order; return that day and the result."""
    for day in SESSIONS:
        feed_open(world, day)
        result = await world.app.cycle.run(as_of=CALENDAR.session_open(day))
        assert result.status == "completed", result.error
        if result.orders:
            return day, result
        feed_close(world, day)
    raise AssertionError("no orders in the whole period")


def test_ids_are_deterministic() -> None:
    at = datetime(2024, 3, 4, 14, 30, tzinfo=CALENDAR.session_open(date(2024, 3, 4)).tzinfo)
    assert cycle_id_for("live", at, "scheduled", tz=NEW_YORK) == cycle_id_for("live", at, "scheduled", tz=NEW_YORK)
    assert cycle_id_for("live", at, "scheduled", tz=NEW_YORK) != cycle_id_for(
        "live", at + timedelta(minutes=1), "scheduled", tz=NEW_YORK)
    cid = cycle_id_for("live", at, "event", "TSLA", tz=NEW_YORK)
    assert client_order_id_for(cid, "TSLA", "BUY") == client_order_id_for(cid, "TSLA", "BUY")
    assert client_order_id_for(cid, "TSLA", "BUY") != client_order_id_for(cid, "MSFT", "BUY")


class CrashBeforeCommit:
    """Unit-of-work factory whose next N transactions fail at commit (after orders went out)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.remaining = 0

    def __call__(self) -> Any:
        uow = self.inner()
        if self.remaining > 0:
            self.remaining -= 1

            async def boom() -> None:
                raise RuntimeError("crash between submitting and committing")

            uow.commit = boom
        return uow


async def test_crash_after_submit_then_retry_never_double_submits() -> None:
    settings = load_settings(env="test", risk={"market_hours_only": False})
    probe = await make_world(settings=settings)
    target = None
    for day in SESSIONS:  # market closed at the cycle time: orders wait at the broker for the next open
        feed_open(probe, day)
        feed_close(probe, day)
        as_of = CALENDAR.session_close(day) + timedelta(hours=1)
        probe.app.clock.set(as_of)
        if (await probe.app.cycle.run(as_of=as_of)).orders:
            target = day
            break
    assert target is not None, "no orders were decided in the period"

    crash: dict[str, CrashBeforeCommit] = {}

    def factory(inner: Any) -> CrashBeforeCommit:
        crash["f"] = CrashBeforeCommit(inner)
        return crash["f"]

    world = await make_world(settings=settings, uow_factory=factory)
    broker = world.app.broker
    for day in SESSIONS[: SESSIONS.index(target) + 1]:
        feed_open(world, day)
        feed_close(world, day)
    as_of = CALENDAR.session_close(target) + timedelta(hours=1)
    world.app.clock.set(as_of)
    cid = cycle_id_for("backtest:test", as_of, "scheduled", tz=NEW_YORK)
    crash["f"].remaining = 1
    failed = await world.app.cycle.run(as_of=as_of, cycle_id=cid)
    assert failed.status == "failed" and "crash between" in (failed.error or "")
    sent = broker.all_orders()
    assert sent, "the crashed cycle had submitted its orders before the crash"
    async with world.uow_factory() as uow:
        assert await uow.orders.list("backtest:test") == []  # the crashed cycle's writes were rolled back
    assert [e.type for e in await events(world, EventType.SYSTEM_ERROR)] == [EventType.SYSTEM_ERROR]

    retried = await world.app.cycle.run(as_of=as_of, cycle_id=cid)
    assert retried.status == "completed"
    after = broker.all_orders()
    assert sorted(o.client_order_id for o in after) == sorted(o.client_order_id for o in sent)
    async with world.uow_factory() as uow:
        recorded = {r.order.client_order_id for r in await uow.orders.list("backtest:test")}
    assert recorded == {o.client_order_id for o in sent}


async def test_exception_rolls_back_the_cycle_and_records_a_system_error() -> None:
    world = await make_world()
    day = SESSIONS[5]
    feed_open(world, day)

    async def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("quote feed exploded")

    world.app.market.latest_quotes = broken  # type: ignore[method-assign]
    result = await world.app.cycle.run(as_of=CALENDAR.session_open(day))
    assert result.status == "failed" and "quote feed exploded" in (result.error or "")
    assert world.app.broker.all_orders() == []
    errors = await events(world, EventType.SYSTEM_ERROR)
    assert len(errors) == 1 and errors[0].cycle_id == result.cycle_id
    assert await events(world, EventType.CYCLE_STARTED) == []  # the failed cycle's own events rolled back
    async with world.uow_factory() as uow:
        cycle = await uow.cycles.get(result.cycle_id)
        state = brk.BreakerState.from_dict(await uow.state.load("backtest:test", BREAKER_DOC) or {})
    assert cycle is not None and cycle.status == "failed"
    assert state.recent_errors[-1] is True


async def test_repeated_system_errors_trip_the_breaker_and_shadow_mode_sends_no_orders() -> None:
    world = await make_world()
    real = world.app.market.latest_quotes

    async def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("feed down")

    world.app.market.latest_quotes = broken  # type: ignore[method-assign]
    for day in SESSIONS[:3]:
        feed_open(world, day)
        assert (await world.app.cycle.run(as_of=CALENDAR.session_open(day))).status == "failed"
        feed_close(world, day)
    trips = await events(world, EventType.BREAKER_TRIPPED)
    assert len(trips) == 1 and trips[0].payload["trigger"] == "system_errors"
    world.app.market.latest_quotes = real  # type: ignore[method-assign]
    shadow_cycles = 0
    for day in SESSIONS[3:40]:
        feed_open(world, day)
        result = await world.app.cycle.run(as_of=CALENDAR.session_open(day))
        assert result.status == "completed" and result.shadow
        shadow_cycles += 1
        feed_close(world, day)
    assert world.app.broker.all_orders() == [], "a tripped breaker must not send entries"
    assert shadow_cycles and await events(world, EventType.SHADOW_FILL), "decisions continue on the shadow book"


async def _day_with_orders() -> date:
    probe = await make_world()
    day, _ = await first_trading_day(probe)
    return day


async def test_eligible_but_unapproved_does_not_trade_and_approval_resumes() -> None:
    day = await _day_with_orders()
    world = await make_world()
    for d in SESSIONS[: SESSIONS.index(day)]:
        feed_open(world, d)
        feed_close(world, d)
    eligible = brk.BreakerState(status=brk.BreakerStatus.ELIGIBLE, peak_equity=world.app.broker.equity(),
                                tripped_at=CALENDAR.session_open(SESSIONS[0]), trip_trigger="drawdown",
                                trip_reason="test", equity_at_trip=world.app.broker.equity(),
                                eligible_since=CALENDAR.session_open(SESSIONS[0]))
    async with world.uow_factory() as uow:
        await uow.state.save("backtest:test", BREAKER_DOC, eligible.to_dict(), at=CALENDAR.session_open(day))
        await uow.commit()
    feed_open(world, day)
    blocked = await world.app.cycle.run(as_of=CALENDAR.session_open(day))
    assert blocked.status == "completed" and blocked.shadow and blocked.orders == 0
    assert world.app.broker.all_orders() == []
    with pytest.raises(brk.BreakerNotEligibleError):  # the shadow record does not justify a resume
        await approve_breaker_resume(world.uow_factory, "backtest:test", by="ops", as_of=blocked.as_of,
                                     settings=world.settings.risk.breaker)
    async with world.uow_factory() as uow:
        await uow.state.save("backtest:test", BREAKER_DOC, eligible.to_dict(), at=blocked.as_of)
        await uow.commit()
    resumed = await approve_breaker_resume(world.uow_factory, "backtest:test", by="ops", as_of=blocked.as_of,
                                           settings=None)  # type: ignore[arg-type]
    assert resumed.status is brk.BreakerStatus.ACTIVE and resumed.approvals[-1].by == "ops"
    again = await world.app.cycle.run(as_of=CALENDAR.session_open(day) + timedelta(minutes=1), kind="manual")
    assert again.status == "completed" and not again.shadow and again.orders > 0
    assert [e.payload["approved_by"] for e in await events(world, EventType.BREAKER_RESUMED)] == ["ops"]


class GarbageLLM:
    """Answers every agent with something that fails the schema."""

    provider = "test"

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        bad: dict[str, Any] = {"proposals": [{"symbol": "", "action": "YOLO", "confidence": 7}],
                               "assessments": "lots", "verdicts": None}
        out: BaseModel = request.output_schema.model_validate(bad)
        return Decision(out, LLMUsage("test", "garbage"))


async def test_malformed_llm_output_becomes_a_logged_hold() -> None:
    world = await make_world(llms={"default": GarbageLLM()})
    for day in SESSIONS[:5]:
        feed_open(world, day)
        result = await world.app.cycle.run(as_of=CALENDAR.session_open(day))
        assert result.status == "completed"
        assert all(o.final is Verdict.HOLD for o in result.outcomes)
        feed_close(world, day)
    assert world.app.broker.all_orders() == []
    failures = await events(world, EventType.LLM_FAILED)
    assert failures and "ValidationError" in failures[0].payload["error"]


async def test_every_stage_is_named_in_the_event_log_at_debug() -> None:
    from domain.alerts import is_alert_worthy
    from domain.events import Severity

    world = await make_world()
    _, result = await first_trading_day(world)
    async with world.uow_factory() as uow:
        logged = await uow.events.query(EventQuery(scope=world.app.cycle.scope, cycle_id=result.cycle_id,
                                                   limit=10_000))
        calls = [c for c in await uow.llm_calls.list(world.app.cycle.scope, limit=10_000)
                 if c.cycle_id == result.cycle_id]
    by_type: dict[EventType, list[Any]] = {}
    for e in logged:
        by_type.setdefault(EventType(e.type), []).append(e)
    steps = (EventType.MARKET_CONDITIONS, EventType.RECALL, EventType.RISK, EventType.VALIDATION, EventType.LLM_CALL)
    assert all(by_type.get(t) for t in steps), sorted(by_type)
    assert all(e.severity is Severity.DEBUG and not is_alert_worthy(e) for t in steps for e in by_type[t])

    [conditions] = by_type[EventType.MARKET_CONDITIONS]
    assert conditions.payload["spy_trend"] in ("up", "down", "sideways")
    [recall] = by_type[EventType.RECALL]
    entries = {o.symbol: o for o in result.outcomes if o.validation is not None}
    assert entries and all(recall.payload["trades"][s] == len(o.evidence) for s, o in entries.items())
    sized = {e.symbol: e.payload["assessment"] for e in by_type[EventType.RISK]}
    assert sized == {s: o.assessment.model_dump(mode="json") if o.assessment else None for s, o in entries.items()}
    judged = {e.symbol: e.payload for e in by_type[EventType.VALIDATION]}
    assert set(judged) == set(entries)
    for sym, o in entries.items():
        assert judged[sym]["rules"]["approved"] == o.validation.approved  # type: ignore[union-attr]
        assert judged[sym]["agent"] == (o.verdict.model_dump(mode="json") if o.verdict else None)
    assert sorted(e.payload["agent"] for e in by_type[EventType.LLM_CALL]) == sorted(c.agent for c in calls)
    assert {e.payload["agent"] for e in by_type[EventType.LLM_CALL]} == {"signal", "risk", "validator"}
    assert any(o.final is Verdict.BUY for o in result.outcomes)


async def test_a_paused_cycle_asks_no_agent_and_says_so() -> None:
    from application.control import set_paused

    world = await make_world()
    day = SESSIONS[0]
    await set_paused(world.uow_factory, "backtest:test", paused=True, by="ops", as_of=CALENDAR.session_open(day),
                     reason="maintenance")
    feed_open(world, day)
    result = await world.app.cycle.run(as_of=CALENDAR.session_open(day))
    assert result.status == "completed" and result.outcomes == []
    async with world.uow_factory() as uow:
        logged = await uow.events.query(EventQuery(scope="backtest:test", cycle_id=result.cycle_id, limit=1000))
    types = [EventType(e.type) for e in logged]
    assert EventType.MARKET_CONDITIONS in types
    assert not {EventType.RECALL, EventType.RISK, EventType.VALIDATION, EventType.LLM_CALL} & set(types)
    [skipped] = [e for e in logged if e.type == EventType.CYCLE_SKIPPED]
    assert skipped.message == ("trading paused by ops: maintenance; only reconciliation, protective stops and rule "
                               "exits ran") and skipped.payload == {"reason": "paused"}
