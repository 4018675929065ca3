"""The chat over a recorded backtest run, on the in-memory unit of work: which run "latest" is, the run's portfolio
read from its records (never the broker), every tool read in the run's scope as of its end, and control refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.inmemory.event_memory import InMemoryEventMemory
from adapters.inmemory.hashing_embedder import HashingEmbedder
from application.chat.agent import ChatAssistant
from application.chat.contracts import NullStepSink
from application.chat.control_actions import ControlActions
from application.chat.event_index import EventSearch
from application.chat.recorded_portfolio import find_run, recorded_portfolio, recorded_portfolio_result, run_scope
from application.chat.recorded_run import RecordedRunControls, RecordedRunTools
from application.chat.tools import ChatTools
from application.queries import ReadModels
from domain.chat import ToolCall
from domain.errors import ActionConfirmationError
from domain.events import Event, EventType
from domain.models.trading import Order, OrderRequest, OrderStatus, OrderType, Position, Side
from domain.ports.repositories import EquityPoint, EventQuery, OrderRecord
from domain.trading_state import OpenTrade, StopKeeper, TradingState
from tests.support.chat_fakes import CAL, NY, SCOPE, FakeSql, make_chat_world

D = Decimal
RUN = "20240301-120000-aaaaaa"
OLD = "20250101-000000-zzzzzz"                    # a greater id, saved earlier: "latest" is by save time
FIRST, LAST = date(2024, 2, 26), date(2024, 2, 29)
SAVED = datetime(2026, 3, 1, 12, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 15, tzinfo=UTC)        # the chat's "now": long after the run


def close(day: date) -> datetime:
    return CAL.session_close(day)


async def record_run(world: Any, run_id: str = RUN, *, saved: datetime = SAVED, equity: bool = True,
                     held: bool = True) -> str:
    """What `quorum backtest` leaves behind: equity points, positions, trading state, an open stop order, events
    and the summary document."""
    scope = run_scope(run_id)
    async with world.uow() as uow:
        if equity:
            for n, day in enumerate(CAL.sessions(FIRST, LAST)):
                await uow.equity.add(scope, EquityPoint(close(day), D(650) + n, D(400) + n, D(250)))
        if held:
            opened = CAL.session_open(FIRST) + timedelta(minutes=1)
            await uow.positions.replace_all(scope, [Position("NVDA", D("2.5"), D("100.00"), D("92.00"), opened)])
            trade = OpenTrade("NVDA", D("2.5"), D("100.00"), opened, D("92.00"), D("130.00"), StopKeeper.QUORUM,
                              "entry-1")
            await uow.trading.save(scope, TradingState(open_trades={"NVDA": trade}), at=opened)
            stop = OrderRequest(f"{run_id}:stop-1", "NVDA", Side.SELL, D("2.5"), type=OrderType.STOP,
                                stop_price=D("92.00"))
            await uow.orders.upsert(OrderRecord(Order(stop, "b-1", OrderStatus.ACCEPTED, opened), scope, "c-1"))
            done = OrderRequest(f"{run_id}:entry-1", "NVDA", Side.BUY, D("2.5"))
            await uow.orders.upsert(OrderRecord(Order(done, "b-0", OrderStatus.FILLED, opened), scope, "c-1"))
            await uow.events.add([Event(EventType.SIGNAL, opened, "NVDA: BUY — uptrend with momentum",
                                        cycle_id="c-1", symbol="NVDA", scope=scope,
                                        payload={"final": "BUY", "reasoning": "breakout above the 50-day high"})])
        await uow.state.save(scope, "backtest_run", {"run_id": run_id, "start": str(FIRST), "end": str(LAST),
                                                     "sessions": 4, "starting_cash": "650", "alpha": 0.12,
                                                     "symbols": ["NVDA", "S0003"],
                                                     "beta": 0.8, "benchmarks": {"spy_buy_and_hold":
                                                                                 {"total_return": 0.01}}},
                             at=saved)
        await uow.commit()
    return scope


async def test_latest_is_the_run_saved_last_and_a_run_is_found_by_id_or_scope() -> None:
    world = make_chat_world()
    assert await find_run(world.uow, "latest", tz=CAL.tz) is None
    async with world.uow() as uow:                       # a live document of the same name is no backtest run
        await uow.state.save(SCOPE, "backtest_run", {"run_id": "live"}, at=SAVED + timedelta(days=9))
        await uow.commit()
    assert await find_run(world.uow, "latest", tz=CAL.tz) is None
    await record_run(world, OLD, saved=SAVED - timedelta(days=1))
    await record_run(world, RUN)
    latest = await find_run(world.uow, "latest", tz=CAL.tz)
    assert latest is not None and (latest.run_id, latest.scope) == (RUN, f"backtest:{RUN}")
    assert latest.last_session == LAST and latest.as_of == close(LAST) + timedelta(seconds=1)
    assert latest.label == f"backtest {RUN}, as of 2024-02-29"
    assert latest.period == "2024-02-26 to 2024-02-29, 4 sessions"
    by_id, by_scope = await find_run(world.uow, OLD, tz=CAL.tz), await find_run(world.uow, f"backtest:{OLD}", tz=CAL.tz)
    assert by_id is not None and by_id == by_scope and by_id.run_id == OLD
    assert await find_run(world.uow, "20990101-000000-nothere", tz=CAL.tz) is None
    with pytest.raises(ValueError, match="must not be empty"):
        await find_run(world.uow, " ", tz=CAL.tz)


async def test_a_run_without_valuations_is_read_as_of_when_it_was_saved() -> None:
    world = make_chat_world()
    await record_run(world, equity=False, held=False)
    run = await find_run(world.uow, "latest", tz=CAL.tz)
    assert run is not None and run.last_session is None and run.as_of == SAVED
    result = recorded_portfolio_result(await recorded_portfolio(world.uow, run))
    assert result.ok and "no valuation was recorded" in result.text.lower() and "no positions" in result.text


async def test_the_portfolio_is_the_runs_last_valuation_and_final_positions_not_the_brokers() -> None:
    world = make_chat_world()                            # the broker holds $10,000 and nothing else
    await record_run(world)
    run = await find_run(world.uow, "latest", tz=CAL.tz)
    assert run is not None
    pf = await recorded_portfolio(world.uow, run)
    assert pf.valuation is not None and pf.valuation.equity == D(653) and pf.valuation.cash == D(403)
    [nvda] = pf.positions
    assert (nvda.symbol, nvda.qty, nvda.cost, nvda.stop_price, nvda.stop_kept_by, nvda.take_profit_price) == (
        "NVDA", D("2.5"), D("250.00"), D("92.00"), "quorum", D("130.00"))
    assert pf.open_orders == 1
    result = recorded_portfolio_result(pf)
    assert result.ok and result.name == "portfolio"
    assert f"backtest {RUN}, as of 2024-02-29" in result.text and "not the live account" in result.text
    assert "Equity $653.00, cash $403.00, gross exposure $250.00 (38% of equity)" in result.text
    assert "NVDA 2.5 @ 100.00 (stop 92.00)" in result.text and "10000" not in result.text
    assert result.data["scope"] == f"backtest:{RUN}" and result.data["equity"] == "653.00"
    assert result.rows[0][:5] == ("NVDA", "2.5", "100.00", "250.00", "92.00")


def recorded_tools(world: Any, run: Any) -> RecordedRunTools:
    rm = ReadModels(world.uow, run.scope, world.broker, CAL, None)
    controls = ControlActions(world.uow, run.scope, broker=world.broker, calendar=CAL, cycles=None, evals=None,
                              confirm_timeout=timedelta(seconds=60))
    search = EventSearch(InMemoryEventMemory(HashingEmbedder(), events=world.db.events), world.uow, run.scope)
    return RecordedRunTools(ChatTools(rm, FakeSql(), search, controls), run, world.uow)


async def test_every_tool_reads_the_run_as_of_its_end_and_control_is_refused() -> None:
    world = make_chat_world()
    scope = await record_run(world)
    await world.add_events(Event(EventType.SIGNAL, datetime(2024, 2, 27, 15, tzinfo=NY), "NVDA: BUY live",
                                 cycle_id="live-1", symbol="NVDA", scope=SCOPE),
                           Event(EventType.SIGNAL, close(LAST) + timedelta(days=1), "NVDA: BUY after the run",
                                 cycle_id="c-9", symbol="NVDA", scope=scope))
    run = await find_run(world.uow, "latest", tz=CAL.tz)
    assert run is not None
    tools = recorded_tools(world, run)

    found = await tools.run(ToolCall("1", "search_events", {"query": "why did you buy NVDA", "symbol": "NVDA"}),
                            who="admin", as_of=NOW)
    assert found.ok and [c.cycle_id for c in found.citations] == ["c-1"]   # not the live one, nothing later

    today = await tools.run(ToolCall("2", "performance", {"window": "today"}), who="admin", as_of=NOW)
    assert today.ok and today.data["end"] == "2024-02-29" and D(today.data["end_equity"]) == 653
    assert "alpha +12.00% a year, beta 0.80, SPY buy and hold +1.00%" in today.text

    portfolio = await tools.run(ToolCall("3", "portfolio", {}), who="admin", as_of=NOW)
    assert portfolio.ok and portfolio.data["source"] == "recorded backtest run" and "NVDA" in portfolio.text
    bad = await tools.run(ToolCall("4", "portfolio", {"symbol": "NVDA"}), who="admin", as_of=NOW)
    assert not bad.ok and "bad arguments" in bad.text

    pause = await tools.run(ToolCall("5", "control", {"action": "pause"}), who="admin", as_of=NOW)
    assert not pause.ok and "cannot be paused" in pause.text and RUN in pause.text
    assert "pending" not in pause.data

    unscoped = await tools.run(ToolCall("6", "query_sql", {"sql": "select symbol from trades"}), who="admin",
                               as_of=NOW)
    assert unscoped.ok and f"does not filter on scope = '{scope}'" in unscoped.text
    sql = "select symbol from trades where scope = '" + scope + "'"  # noqa: S608 - the fake SQL reader's input
    scoped = await tools.run(ToolCall("7", "query_sql", {"sql": sql}), who="admin", as_of=NOW)
    assert scoped.ok and "does not filter" not in scoped.text

    specs = {s.name: s.description for s in tools.specs()}
    assert f"WHERE scope = '{scope}'" in specs["query_sql"] and all(RUN in d for d in specs.values())
    assert "refused" in specs["control"]


async def test_the_router_says_a_recorded_run_cannot_be_paused_and_nothing_is_pending_or_logged() -> None:
    world = make_chat_world()
    scope = await record_run(world)
    run = await find_run(world.uow, "latest", tz=CAL.tz)
    assert run is not None
    assistant = ChatAssistant(recorded_tools(world, run), uow_factory=world.uow, scope=SCOPE, daily_cap_usd=1.0,
                              tz=CAL.tz)
    answer = await assistant.answer([], "pause trading", who="admin", as_of=NOW, steps=NullStepSink())
    assert answer.pending is None and "cannot be paused" in answer.text
    async with world.uow() as uow:
        for s in (SCOPE, scope):
            assert await uow.events.query(EventQuery(scope=s, types=(EventType.TRADING_PAUSED,))) == []
            assert not (await uow.trading.load(s)).control.paused
    controls = RecordedRunControls(run)
    with pytest.raises(ActionConfirmationError, match="recorded run cannot be paused"):
        await controls.confirm("a", "a", by="admin", as_of=NOW)
    cancelled = await controls.cancel("a", by="admin", as_of=NOW)
    assert not cancelled.ok and "nothing was done" in cancelled.text


async def test_a_search_naming_one_of_the_runs_symbols_is_narrowed_to_it() -> None:
    world = make_chat_world()
    scope = await record_run(world)
    at = CAL.session_open(LAST)
    await world.add_events(Event(EventType.SIGNAL, at, "S0003: BUY — breakout", cycle_id="c-s3", symbol="S0003",
                                 scope=scope, payload={"final": "BUY"}))
    run = await find_run(world.uow, "latest", tz=CAL.tz)
    assert run is not None
    tools = recorded_tools(world, run)
    for query, cycles in (("why did you buy s0003?", ["c-s3"]), ("why did you buy NVDA?", ["c-1"])):
        found = await tools.run(ToolCall("1", "search_events", {"query": query}), who="admin", as_of=NOW)
        assert found.ok and [c.cycle_id for c in found.citations] == cycles, query
    both = await tools.run(ToolCall("2", "search_events", {"query": "NVDA or S0003: why?"}), who="admin", as_of=NOW)
    assert sorted(c.cycle_id or "" for c in both.citations) == ["c-1", "c-s3"]
    lower = await tools.run(ToolCall("3", "search_events", {"query": "why did you buy nvda"}), who="admin", as_of=NOW)
    assert "symbol" not in lower.arguments           # a lower-case word is not taken for a letters-only ticker


async def test_a_decision_repeated_every_session_does_not_crowd_out_the_entry() -> None:
    """Thirty identical HOLD decisions are closer to "why did you buy" than the entry; only one of them is shown."""
    world = make_chat_world()
    scope = await record_run(world)
    hold = [Event(EventType.SIGNAL, CAL.session_open(FIRST) + timedelta(minutes=n), "NVDA: HOLD — why buy? hold",
                  cycle_id=f"c-h{n}", symbol="NVDA", scope=scope, payload={"final": "HOLD"}) for n in range(30)]
    await world.add_events(*hold)
    run = await find_run(world.uow, "latest", tz=CAL.tz)
    assert run is not None
    found = await recorded_tools(world, run).run(
        ToolCall("1", "search_events", {"query": "why did you buy NVDA?", "symbol": "NVDA"}), who="admin", as_of=NOW)
    cycles = [c.cycle_id for c in found.citations]
    assert "c-1" in cycles and sum(1 for c in cycles if c and c.startswith("c-h")) == 1
