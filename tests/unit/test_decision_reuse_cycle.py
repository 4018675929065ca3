"""Ask only what is new (issue 15): the live schedule's cycles on the in-memory world reuse the agents' decisions
of the session until a symbol's inputs change, and say so in the event log."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from adapters.llm.offline_policy import OfflinePolicyLLM
from application.cycle.reuse import REUSE_DOC
from domain.errors import LLMError
from domain.events import EventType
from domain.ports.llm import Decision, LLMRequest
from domain.ports.repositories import EventQuery
from domain.trading_state import StopKeeper
from domain.verdict import Verdict
from entrypoints.settings import load_settings
from tests.support.world import CALENDAR, World, feed_close, feed_open, make_world

SESSIONS = CALENDAR.sessions(date(2024, 3, 1), date(2024, 6, 28))
SCOPE = "backtest:test"


@dataclass
class CountingLLM:
    """The offline policy, counting the symbols each agent is asked about; `fail` makes every call fail."""

    provider: str = "offline"
    asked: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    fail: bool = False

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        ctx: Any = request.context
        items = ctx.symbols if request.agent == "signal" else ctx.candidates
        self.asked.append((request.agent, tuple(i.symbol for i in items)))
        if self.fail:
            raise LLMError("provider down")
        return await OfflinePolicyLLM().complete(request)

    def symbols(self, agent: str, since: int = 0) -> list[str]:
        """Symbols `agent` was asked about in calls `since` onwards."""
        return sorted(s for a, syms in self.asked[since:] if a == agent for s in syms)


async def world_with(counter: CountingLLM, *, reuse: bool = True) -> World:
    return await make_world(settings=load_settings(env="test", llm={"reuse_decisions": reuse}),
                            llms={"default": counter})


def slot(day: date, minutes: int) -> datetime:
    """The live schedule's cycle `minutes` after the open."""
    return CALENDAR.session_open(day) + timedelta(minutes=minutes)


async def decisions_event(world: World, cycle_id: str) -> Any:
    async with world.uow_factory() as uow:
        found = await uow.events.query(EventQuery(SCOPE, types=(EventType.LLM_DECISIONS,), cycle_id=cycle_id))
    assert len(found) == 1, "one LLM_DECISIONS event per cycle"
    return found[0]


async def close_day(world: World, day: date) -> None:
    feed_fills_at(world, slot(day, 1))
    feed_close(world, day)
    await world.app.cycle.reconcile(as_of=CALENDAR.session_close(day))


def feed_fills_at(world: World, at: datetime) -> None:
    """A price update at `at`: what was sent before fills."""
    world.app.clock.set(at)
    world.app.broker.on_prices(at, world.app.market.opens_on(at.astimezone(CALENDAR.tz).date()))


async def day_with_orders(world: World) -> tuple[date, Any]:
    """Run sessions (first cycle five minutes after the open) until that cycle sends orders; the day is left open."""
    for day in SESSIONS:
        feed_open(world, day)
        result = await world.app.cycle.run(as_of=slot(day, 5))
        assert result.status == "completed", result.error
        if result.orders:
            return day, result
        await close_day(world, day)
    raise AssertionError("no cycle sent an order in the period")


def finals(result: Any) -> list[tuple[str, str, str]]:
    return [(o.symbol, str(o.final), o.reason) for o in result.outcomes]


async def test_the_second_cycle_of_a_session_asks_nothing_when_nothing_changed_and_decides_the_same() -> None:
    on, off = CountingLLM(), CountingLLM()
    worlds = await world_with(on), await world_with(off, reuse=False)
    results = []
    for world, counter in zip(worlds, (on, off), strict=True):
        day, first = await day_with_orders(world)
        calls = len(counter.asked)
        second = await world.app.cycle.run(as_of=slot(day, 35))
        results.append((day, first, second, len(counter.asked) - calls))
    (day_on, first, second, new_calls), (day_off, _, second_off, calls_off) = results
    assert day_on == day_off and finals(second) == finals(second_off), "reuse decides as asking again does"
    assert new_calls == 0 and calls_off > 0, "with reuse the second cycle asks no agent; without it, it asks again"
    asked_first = (await decisions_event(worlds[0], first.cycle_id)).payload
    event = (await decisions_event(worlds[0], second.cycle_id)).payload
    assert asked_first["asked"] > 0 and asked_first["reused"] == 0
    assert event["asked"] == 0 and event["reused"] == asked_first["asked"]
    assert event["skipped_by_filters"] == asked_first["skipped_by_filters"]
    assert all(v["decision"] == "reused" and "inputs unchanged since" in v["reason"] for v in event["symbols"].values())
    off_event = (await decisions_event(worlds[1], second_off.cycle_id)).payload
    assert off_event["reused"] == 0 and off_event["reuse"] is False
    assert {v["reason"] for v in off_event["symbols"].values()} == {"reuse off"}


async def test_a_fill_makes_the_next_cycle_ask_again_about_that_symbol_only() -> None:
    counter = CountingLLM()
    world = await world_with(counter)
    day, _ = await day_with_orders(world)
    await world.app.cycle.run(as_of=slot(day, 35))
    before = {p.symbol: p.qty for p in await world.app.broker.positions()}
    feed_fills_at(world, slot(day, 36))
    after = {p.symbol: p.qty for p in await world.app.broker.positions()}
    filled = sorted(s for s in set(before) | set(after) if before.get(s) != after.get(s))
    assert filled, "the entries of the first cycle filled"
    calls = len(counter.asked)
    third = await world.app.cycle.run(as_of=slot(day, 65))
    assert counter.symbols("signal", calls) == filled
    event = (await decisions_event(world, third.cycle_id)).payload
    for sym in filled:
        assert event["symbols"][sym]["decision"] == "asked"
        assert event["symbols"][sym]["reason"].startswith("position changed")
    reused = {s for s, v in event["symbols"].items() if v["decision"] == "reused"}
    assert reused and not reused & set(filled)


async def test_a_price_move_over_the_threshold_asks_again_about_that_symbol() -> None:
    counter = CountingLLM()
    world = await world_with(counter)
    for day in SESSIONS[:5]:
        feed_open(world, day)
        await world.app.cycle.run(as_of=slot(day, 5))
        await close_day(world, day)
    day = SESSIONS[5]
    feed_open(world, day)
    first = await world.app.cycle.run(as_of=slot(day, 5))
    asked = (await decisions_event(world, first.cycle_id)).payload["symbols"]
    small, big = sorted(asked)[:2]
    market = world.app.market
    quotes = market.latest_quotes

    async def moved(symbols: Any, *, as_of: datetime) -> Any:
        out = await quotes(symbols, as_of=as_of)
        bumps = {small: 1.005, big: 1.02}
        return {s: replace(q, last=q.last * bumps.get(s, 1.0)) for s, q in out.items()}

    market.latest_quotes = moved
    calls = len(counter.asked)
    second = await world.app.cycle.run(as_of=slot(day, 35))
    assert counter.symbols("signal", calls) == [big]
    event = (await decisions_event(world, second.cycle_id)).payload["symbols"]
    assert event[big] == {"decision": "asked", "reason": "price moved 2.00% since asked (threshold 1%)"}
    assert event[small]["decision"] == "reused"


async def test_an_event_cycle_asks_about_its_symbol_and_reuses_the_rest() -> None:
    counter = CountingLLM()
    world = await world_with(counter)
    day, first = await day_with_orders(world)
    asked = (await decisions_event(world, first.cycle_id)).payload["symbols"]
    held = {p.symbol for p in await world.app.broker.positions()}
    symbol = next(s for s in sorted(asked) if s not in held)
    calls = len(counter.asked)
    result = await world.app.cycle.run(as_of=slot(day, 40), kind="event", symbol=symbol)
    assert counter.symbols("signal", calls) == [symbol]
    event = (await decisions_event(world, result.cycle_id)).payload["symbols"]
    assert event[symbol] == {"decision": "asked", "reason": "event cycle for this symbol"}


async def test_the_next_session_asks_afresh() -> None:
    counter = CountingLLM()
    world = await world_with(counter)
    day, _ = await day_with_orders(world)
    await world.app.cycle.run(as_of=slot(day, 35))
    await close_day(world, day)
    nxt = SESSIONS[SESSIONS.index(day) + 1]
    feed_open(world, nxt)
    result = await world.app.cycle.run(as_of=slot(nxt, 5))
    event = (await decisions_event(world, result.cycle_id)).payload
    assert event["reused"] == 0 and event["asked"] > 0
    assert {v["reason"] for v in event["symbols"].values()} <= {"no decision earlier this session"}


async def test_the_kept_decisions_survive_a_restart() -> None:
    counter = CountingLLM()
    world = await world_with(counter)
    day, _ = await day_with_orders(world)
    async with world.uow_factory() as uow:
        doc = await uow.state.load(SCOPE, REUSE_DOC)
    assert doc is not None and doc["session"] == day.isoformat() and doc["decisions"]
    world.container.cycle.reset()
    restarted = world.container.cycle()
    assert restarted is not world.app.cycle
    calls = len(counter.asked)
    await restarted.run(as_of=slot(day, 35))
    assert len(counter.asked) == calls, "a new process on the same storage reuses the session's decisions"


async def test_a_failed_answer_is_never_reused() -> None:
    counter = CountingLLM()
    world = await world_with(counter)
    day = SESSIONS[10]
    for d in SESSIONS[:10]:
        feed_open(world, d)
        await world.app.cycle.run(as_of=slot(d, 5))
        await close_day(world, d)
    feed_open(world, day)
    counter.fail = True
    first = await world.app.cycle.run(as_of=slot(day, 5))
    assert first.status == "completed" and first.orders == 0
    counter.fail = False
    calls = len(counter.asked)
    second = await world.app.cycle.run(as_of=slot(day, 35))
    asked = (await decisions_event(world, first.cycle_id)).payload["asked"]
    assert len(counter.symbols("signal", calls)) == asked > 0
    event = (await decisions_event(world, second.cycle_id)).payload
    assert event["reused"] == 0 and Counter(v["reason"] for v in event["symbols"].values()) == \
        Counter({"no decision earlier this session": asked})


async def test_a_stop_reached_between_cycles_exits_at_once_while_the_agents_are_not_asked() -> None:
    counter = CountingLLM()
    world = await world_with(counter)
    day, _ = await day_with_orders(world)
    feed_fills_at(world, slot(day, 6))
    await world.app.cycle.run(as_of=slot(day, 20))
    async with world.uow_factory() as uow:
        st = await uow.trading.load(SCOPE)
        sym, trade = next((s, t) for s, t in sorted(st.open_trades.items()) if t.stop_keeper is StopKeeper.QUORUM)
        await uow.trading.save(SCOPE, st.with_trade(replace(trade, stop_price=Decimal("100000"))),
                               at=slot(day, 21))
        await uow.commit()
    calls = len(counter.asked)
    result = await world.app.cycle.run(as_of=slot(day, 35))
    stop = [o for o in result.outcomes if o.symbol == sym]
    assert stop and stop[0].is_stop_exit and stop[0].final is Verdict.SELL
    assert sym not in counter.symbols("signal", calls), "a stop exit is decided by the rule, never by an agent"
