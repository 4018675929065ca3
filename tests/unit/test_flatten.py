"""The kill switch on the strict in-memory broker: every order cancelled, every position closed (queued for the
open when the market is closed, said plainly), trading paused, a CRITICAL event for the alerts."""

from __future__ import annotations

from datetime import date, timedelta

from application.flatten import flatten
from domain.events import EventType, Severity
from domain.ports.repositories import EventQuery
from domain.trading_state import StopKeeper
from tests.support.world import CALENDAR, feed_close, feed_fills, feed_open, make_world, run_day

SESSIONS = CALENDAR.sessions(date(2024, 3, 1), date(2024, 8, 30))
SCOPE = "backtest:test"


async def _holding_world() -> tuple[object, int]:
    world = await make_world(end=date(2024, 8, 30))
    for i, day in enumerate(SESSIONS):
        await run_day(world, day)
        if len(await world.app.broker.positions()) >= 2:
            return world, i + 1
    raise AssertionError("never held two positions")


async def test_flatten_while_the_market_is_closed_queues_the_sells_for_the_open_and_pauses() -> None:
    world, nxt = await _holding_world()
    broker = world.app.broker  # type: ignore[attr-defined]
    held = {p.symbol: p.qty for p in await broker.positions()}
    at = CALENDAR.session_close(SESSIONS[nxt - 1]) + timedelta(hours=2)
    world.app.clock.set(at)  # type: ignore[attr-defined]
    result = await flatten(world.uow_factory, broker, CALENDAR, scope=SCOPE, as_of=at, by="ops",  # type: ignore
                           reason="test")
    assert not result.market_open and "queued for the next market open" in result.message
    assert {o.symbol: o.request.qty for o in result.sells} == held and not result.failed
    assert all(o.request.side.value == "sell" for o in await broker.open_orders())
    async with world.uow_factory() as uow:  # type: ignore[attr-defined]
        state = await uow.trading.load(SCOPE)
        [kill] = await uow.events.query(EventQuery(SCOPE, types=(EventType.KILL_SWITCH,)))
    assert state.control.paused and state.control.by == "ops"
    assert all(t.stop_keeper is StopKeeper.QUORUM and t.stop_price for t in state.open_trades.values())
    assert kill.severity is Severity.CRITICAL and "ops" in kill.message
    feed_open(world, SESSIONS[nxt])  # type: ignore[arg-type]
    feed_fills(world, SESSIONS[nxt])  # type: ignore[arg-type]
    feed_close(world, SESSIONS[nxt])  # type: ignore[arg-type]
    assert await broker.positions() == []
    result = await world.app.cycle.run(as_of=CALENDAR.session_open(SESSIONS[nxt + 1]))  # type: ignore[attr-defined]
    assert result.status == "completed" and result.orders == 0  # paused: no entry
