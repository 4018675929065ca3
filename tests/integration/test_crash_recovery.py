"""Crash injection: a cycle dies before, between and after submitting orders, or before committing.
After the restart no order is ever submitted twice and the database matches the broker."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from adapters.calendar.nyse import NEW_YORK
from application.cycle.trading_cycle import cycle_id_for
from domain.events import EventType
from domain.ports.repositories import EventQuery
from tests.support.crash import CrashingBroker, CrashingCommit
from tests.support.world import CALENDAR, World, feed_close, feed_open, make_world

SESSIONS = CALENDAR.sessions(date(2024, 3, 1), date(2024, 6, 28))
SCOPE = "backtest:test"


_PROBED: list[date] = []


async def _probe_day() -> date:
    """First session on which a fresh world sends at least two orders (computed once per module)."""
    if _PROBED:
        return _PROBED[0]
    probe = await make_world()
    for day in SESSIONS:
        feed_open(probe, day)
        if (await probe.app.cycle.run(as_of=CALENDAR.session_open(day))).orders >= 2:
            _PROBED.append(day)
            return day
        feed_close(probe, day)
    raise AssertionError("no session with two orders")


async def _world(commit: dict[str, CrashingCommit]) -> tuple[World, CrashingBroker]:
    def factory(inner: Any) -> CrashingCommit:
        commit["f"] = CrashingCommit(inner)
        return commit["f"]

    world = await make_world(uow_factory=factory)
    crashing = CrashingBroker(world.app.broker)
    world.app.cycle._broker = crashing  # the cycle talks to the broker through the crashing proxy
    return world, crashing


async def _assert_database_matches_broker(world: World) -> None:
    broker = world.app.broker
    async with world.uow_factory() as uow:
        orders = {r.order.client_order_id for r in await uow.orders.list(SCOPE) if not r.shadow}
        fills = [(r.fill.client_order_id, r.fill.qty, r.fill.price) for r in await uow.fills.list(SCOPE)]
        positions = {p.symbol: p.qty for p in await uow.positions.list(SCOPE)}
    sent = [o.client_order_id for o in broker.all_orders() if not o.is_leg]
    assert len(sent) == len(set(sent)), "an order was submitted twice"
    assert orders == set(sent)
    assert sorted(fills) == sorted((f.client_order_id, f.qty, f.price) for f in broker.fills)
    assert positions == {p.symbol: p.qty for p in await broker.positions()}


@pytest.mark.parametrize("point", ["before_first_submit", "between_submits", "before_commit"])
@pytest.mark.parametrize("restart", ["same_cycle_retried", "next_cycle"])
async def test_no_double_submit_and_database_matches_broker(point: str, restart: str) -> None:
    day = await _probe_day()
    commit: dict[str, CrashingCommit] = {}
    world, crashing = await _world(commit)
    for d in SESSIONS[: SESSIONS.index(day)]:
        feed_open(world, d)
        feed_close(world, d)
    feed_open(world, day)
    at = CALENDAR.session_open(day)
    cid = cycle_id_for(SCOPE, at, "scheduled", tz=NEW_YORK)
    if point == "before_commit":
        commit["f"].armed = True
    else:
        crashing.point = point
    failed = await world.app.cycle.run(as_of=at, cycle_id=cid)
    assert failed.status == "failed" and "killed" in (failed.error or "")
    if point == "before_first_submit":
        assert world.app.broker.all_orders() == []
    else:
        assert world.app.broker.all_orders(), "orders reached the broker before the crash"

    if restart == "same_cycle_retried":
        again = await world.app.cycle.run(as_of=at, cycle_id=cid)
    else:
        again = await world.app.cycle.run(as_of=at + timedelta(minutes=30))
    assert again.status == "completed", again.error
    await _assert_database_matches_broker(world)
    bought = [o.symbol for o in world.app.broker.all_orders() if o.request.side.value == "buy" and not o.is_leg]
    assert len(bought) == len(set(bought)), "the same entry was bought twice"
    if point != "before_first_submit":
        async with world.uow_factory() as uow:
            diffs = await uow.events.query(EventQuery(scope=SCOPE, types=(EventType.RECONCILIATION_DIFF,)))
        assert diffs or restart == "same_cycle_retried", "orders found only at the broker are reported"
    feed_close(world, day)
    nxt = CALENDAR.next_session(day)
    feed_open(world, nxt)
    assert (await world.app.cycle.run(as_of=CALENDAR.session_open(nxt))).status == "completed"
    await _assert_database_matches_broker(world)
