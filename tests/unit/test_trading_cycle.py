"""The trading cycle on the simulated world: atomicity, idempotent orders, breaker gating, bad LLM output."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from application.control import approve_breaker_resume
from application.cycle.trading_cycle import BREAKER_DOC, client_order_id_for, cycle_id_for
from domain import breaker as brk
from domain.events import EventType
from domain.ports.llm import Decision, LLMRequest, LLMUsage
from domain.ports.repositories import EventQuery
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
    assert cycle_id_for("live", at, "scheduled") == cycle_id_for("live", at, "scheduled")
    assert cycle_id_for("live", at, "scheduled") != cycle_id_for("live", at + timedelta(minutes=1), "scheduled")
    cid = cycle_id_for("live", at, "event", "TSLA")
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
    cid = cycle_id_for("backtest:test", as_of, "scheduled")
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
        assert all(o.final == "HOLD" for o in result.outcomes)
        feed_close(world, day)
    assert world.app.broker.all_orders() == []
    failures = await events(world, EventType.LLM_FAILED)
    assert failures and "ValidationError" in failures[0].payload["error"]
