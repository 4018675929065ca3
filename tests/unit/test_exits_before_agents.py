"""Rule exits never wait for an LLM (issue 15): a reached Quorum-kept stop is at the broker before any agent is
asked, a refused exit still lets the agents run, and a cycle that dies after its exit went out neither sends it
twice nor cancels it when retried."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from adapters.llm.offline_policy import OfflinePolicyLLM
from application.cycle.ids import client_order_id_for, cycle_id_for
from domain.errors import ForbiddenError
from domain.events import EventType
from domain.models.trading import OrderType, Side
from domain.ports.llm import Decision, LLMRequest
from domain.ports.repositories import EventQuery
from domain.trading_state import StopKeeper
from domain.verdict import Verdict
from tests.support.crash import Crash
from tests.support.world import CALENDAR, World, feed_fills, feed_open, make_world, run_day

SESSIONS = CALENDAR.sessions(date(2024, 3, 1), date(2024, 6, 28))
SCOPE = "backtest:test"


async def stop_hit_world() -> tuple[World, date, str]:
    """A world holding a position whose Quorum-kept stop the next session's price is through; returns the world,
    that session and the symbol."""
    world = await make_world()
    for i, day in enumerate(SESSIONS):
        await run_day(world, day)
        if await world.app.broker.positions():
            nxt = SESSIONS[i + 1]
            break
    else:
        raise AssertionError("no position was ever opened")
    async with world.uow_factory() as uow:
        state = await uow.trading.load(SCOPE)
        sym, trade = next(iter(state.open_trades.items()))
        assert trade.stop_keeper is StopKeeper.QUORUM
        await uow.trading.save(SCOPE, state.with_trade(replace(trade, stop_price=Decimal("100000"))),
                               at=CALENDAR.session_open(nxt))
        await uow.commit()
    return world, nxt, sym


def exit_sells(world: World, sym: str) -> list[Any]:
    return [o for o in world.app.broker.all_orders()
            if o.symbol == sym and o.request.side is Side.SELL and o.request.type is OrderType.MARKET]


class HeldAgents:
    """The offline policy behind a gate: the first agent call notes the broker's orders and which agent it is,
    then every call waits until the test opens the gate."""

    provider = "test"

    def __init__(self, world: World) -> None:
        self.world = world
        self.offline = OfflinePolicyLLM()
        self.asked = asyncio.Event()
        self.gate = asyncio.Event()
        self.agents: list[str] = []
        self.orders_when_asked: list[Any] | None = None

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        if self.orders_when_asked is None:
            self.orders_when_asked = self.world.app.broker.all_orders()
        self.agents.append(request.agent)
        self.asked.set()
        await self.gate.wait()
        return await self.offline.complete(request)


async def test_a_reached_stop_is_at_the_broker_before_the_signal_agent_answers() -> None:
    world, day, sym = await stop_hit_world()
    llm = HeldAgents(world)
    world.app.cycle._agents._gateway.llms = {"default": llm}
    feed_open(world, day)
    cycle = asyncio.create_task(world.app.cycle.run(as_of=CALENDAR.session_open(day)))
    asked = asyncio.create_task(llm.asked.wait())
    await asyncio.wait({cycle, asked}, return_when=asyncio.FIRST_COMPLETED)
    assert llm.asked.is_set() and not cycle.done(), "the signal agent should be asked, and its answer awaited"
    assert llm.agents == ["signal"]
    exit_id = client_order_id_for(cycle_id(world, day), sym, "SELL")
    assert [o.client_order_id for o in llm.orders_when_asked or [] if o.symbol == sym
            and o.request.side is Side.SELL] == [exit_id], "the stop's sell was not at the broker when asked"

    llm.gate.set()
    result = await cycle
    assert result.status == "completed", result.error
    assert result.outcomes[0].symbol == sym and result.outcomes[0].is_stop_exit
    assert result.outcomes[0].final is Verdict.SELL
    assert [o.client_order_id for o in exit_sells(world, sym)] == [exit_id]  # sent once, not again by execute


def cycle_id(world: World, day: date) -> str:
    return cycle_id_for(SCOPE, CALENDAR.session_open(day), "scheduled", tz=CALENDAR.tz)


class RefusingSells:
    """The broker, except that it refuses every market sell."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def submit(self, request: Any) -> Any:
        if request.side is Side.SELL and request.type is OrderType.MARKET:
            raise ForbiddenError("Alpaca refused POST /v2/orders (403); Alpaca said: account is restricted")
        return await self.inner.submit(request)


async def test_a_refused_stop_exit_is_rejected_with_its_reason_and_the_agents_still_run() -> None:
    world, day, sym = await stop_hit_world()
    llm = HeldAgents(world)
    llm.gate.set()
    world.app.cycle._agents._gateway.llms = {"default": llm}
    world.app.cycle._broker = RefusingSells(world.app.broker)
    feed_open(world, day)
    result = await world.app.cycle.run(as_of=CALENDAR.session_open(day))
    assert result.status == "completed", result.error
    first = result.outcomes[0]
    assert first.symbol == sym and first.is_stop_exit
    assert first.final is Verdict.REJECTED and "restricted" in first.reason
    assert "signal" in llm.agents, "a refused exit must not keep the agents from running"
    assert [o for o in result.outcomes[1:] if o.symbol == sym] == []
    async with world.uow_factory() as uow:
        refused = await uow.events.query(EventQuery(SCOPE, types=(EventType.ORDER_REJECTED,), limit=100))
    assert [e.symbol for e in refused if e.cycle_id == result.cycle_id] == [sym]


class CrashingRecall:
    """The market conditions service, except that its next recall dies (after the exits went out, before any
    agent is asked)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.armed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def recall(self, *args: Any, **kwargs: Any) -> Any:
        if self.armed:
            self.armed = False
            raise Crash("killed while the agents were being asked")
        return await self.inner.recall(*args, **kwargs)


async def test_a_cycle_that_dies_after_its_exit_went_out_neither_resends_nor_cancels_it_when_retried() -> None:
    world, day, sym = await stop_hit_world()
    cycle = world.app.cycle
    cycle._conditions = CrashingRecall(cycle._conditions)
    feed_open(world, day)
    at, cid = CALENDAR.session_open(day), cycle_id(world, day)
    failed = await cycle.run(as_of=at, cycle_id=cid)
    assert failed.status == "failed" and "killed" in (failed.error or "")
    exit_id = client_order_id_for(cid, sym, "SELL")
    assert [o.client_order_id for o in exit_sells(world, sym)] == [exit_id], "the exit went out before the crash"

    again = await cycle.run(as_of=at, cycle_id=cid)
    assert again.status == "completed", again.error
    assert [o.client_order_id for o in exit_sells(world, sym)] == [exit_id]
    assert [o.client_order_id for o in await world.app.broker.open_orders() if o.symbol == sym] == [exit_id], \
        "the retried cycle cancelled its own exit"
    async with world.uow_factory() as uow:
        recorded = {r.order.client_order_id for r in await uow.orders.list(SCOPE) if not r.shadow}
    assert recorded == {o.client_order_id for o in world.app.broker.all_orders() if not o.is_leg}
    feed_fills(world, day)
    assert sym not in {p.symbol for p in await world.app.broker.positions()}
