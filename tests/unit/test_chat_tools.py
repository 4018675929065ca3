"""The chat's six tools through `ChatTools.run`: arguments checked against the schema the model sees, each tool's
answer (text, data, table, citations), and refusals answered as ok=False, never raised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from application.chat.contracts import ToolBox
from application.chat.control_actions import pending_from
from domain.chat import UNPARSED_ARGUMENTS, ControlAction, ToolCall, ToolResult
from domain.event_factories import decision_made
from domain.events import EventType
from domain.ports.repositories import EventQuery
from domain.system_events import trading_switched
from domain.verdict import Verdict
from tests.support.chat_fakes import SCOPE, ChatWorld, make_chat_world

AT = datetime(2024, 7, 3, 15, 0, tzinfo=UTC)


async def call(world: ChatWorld, name: str, who: str = "alice", at: datetime = AT, **arguments: Any) -> ToolResult:
    return await world.tools.run(ToolCall("c1", name, arguments), who=who, as_of=at)


def test_the_six_tools_are_described_with_json_schemas() -> None:
    world = make_chat_world()
    box: ToolBox = world.tools
    specs = {s.name: s for s in box.specs()}
    assert set(specs) == {"query_sql", "search_events", "portfolio", "performance", "control", "patterns"}
    for s in specs.values():
        assert s.parameters["type"] == "object" and s.parameters["additionalProperties"] is False and s.description
    assert "- trades: one row per fill" in specs["query_sql"].description
    assert "- decisions: one row per decision" in specs["query_sql"].description
    assert specs["performance"].parameters["properties"]["window"]["enum"] == ["today", "week", "month", "all"]
    assert specs["control"].parameters["properties"]["action"]["enum"] == [a.value for a in ControlAction]


@pytest.mark.parametrize(("name", "arguments", "says"), [
    ("trade_now", {}, "unknown tool 'trade_now'"),
    ("performance", {}, "window is required"),
    ("performance", {"window": "year"}, "window must be one of today, week, month, all"),
    ("performance", {"window": "week", "symbol": "AAA"}, "unknown argument(s) symbol"),
    ("search_events", {"query": "why", "days": 0}, "days must be between 1 and 3650"),
    ("search_events", {"query": "why", "days": "seven"}, "days must be a whole number"),
    ("search_events", {"query": "   "}, "query must not be empty"),
    ("query_sql", {"sql": 42}, "sql must be a string"),
    ("control", {"action": "sell_everything"}, "action must be one of pause, resume"),
    ("patterns", {UNPARSED_ARGUMENTS: "{kind: all"}, "not a JSON object"),
])
async def test_bad_calls_are_refused_plainly_and_nothing_runs(name: str, arguments: dict[str, Any],
                                                              says: str) -> None:
    world = make_chat_world()
    result = await call(world, name, **arguments)
    assert not result.ok and says in result.text
    assert world.controls.pending_count == 0 and world.queue.jobs == []


async def test_query_sql_returns_the_table_and_the_sql_that_ran() -> None:
    world = make_chat_world()
    result = await call(world, "query_sql", sql="select symbol, count(*) n from trades group by 1")
    assert result.ok and result.columns == ("symbol", "n") and result.rows == (("AAA", 3), ("BBB", 1))
    assert result.data["sql"].endswith("LIMIT 200") and "LIMIT 200" in result.text
    refused = await call(world, "query_sql", sql="drop table trades")
    assert not refused.ok and "refused: only SELECT" in refused.text
    failed = await call(world, "query_sql", sql="select boom from trades")
    assert not failed.ok and "statement timeout" in failed.text


async def test_search_events_finds_the_reasoning_and_cites_time_and_cycle() -> None:
    world = make_chat_world()
    t0 = datetime(2024, 7, 2, 14, 0, tzinfo=UTC)
    await world.add_events(
        decision_made(at=t0, scope=SCOPE, cycle_id="c-20240702-1000-aaa", symbol="NVDA", verdict=Verdict.BUY,
                      reasoning="NVDA breakout above its 50-day average on rising volume", decision={"final": "BUY"}),
        decision_made(at=t0, scope=SCOPE, cycle_id="c-20240702-1000-aaa", symbol="KO", verdict=Verdict.SELL,
                      reasoning="KO lost its uptrend", decision={"final": "SELL"}),
        trading_switched(at=t0 - timedelta(days=20), scope=SCOPE, paused=True, by="bob", reason="earnings"))
    result = await call(world, "search_events", query="why did you buy NVDA breakout", symbol="nvda")
    assert result.ok and [c.symbol for c in result.citations] == ["NVDA"]
    [cite] = result.citations
    assert (cite.at, cite.cycle_id, cite.type) == (t0, "c-20240702-1000-aaa", "signal")
    assert "cycle c-20240702-1000-aaa" in result.text and "breakout" in result.text
    assert result.rows[0][:4] == (t0.isoformat(), "signal", "NVDA", "c-20240702-1000-aaa")
    recent = await call(world, "search_events", query="trading paused", days=7)
    assert all(c.type != "trading_paused" for c in recent.citations)
    older = await call(world, "search_events", query="trading paused", days=30)
    assert "trading_paused" in [c.type for c in older.citations]


async def test_portfolio_shows_positions_their_stops_and_the_open_orders() -> None:
    world = make_chat_world()
    at = await world.hold("AAA", "5", stop="95.00")
    result = await call(world, "portfolio", at=at)
    assert result.ok
    [row] = result.rows
    position = dict(zip(result.columns, row, strict=True))
    assert position["symbol"] == "AAA" and position["qty"] == "5" and position["stop_price"] == "95.00"
    [leg] = result.data["open_orders"]
    assert leg["protective_leg"] and leg["type"] == "stop" and leg["stop_price"] == "95.00" and leg["side"] == "sell"
    assert result.data["equity"] and "AAA 5 @" in result.text and "Open orders: 1 (1 protective legs)" in result.text
    assert result.data["paper"] is True


async def test_control_only_proposes_until_the_user_confirms() -> None:
    world = make_chat_world()
    result = await call(world, "control", who="alice", action="pause", reason="earnings week")
    pending = pending_from(result)
    assert result.ok and pending is not None and pending.action is ControlAction.PAUSE
    assert pending.requested_by == "alice" and pending.reason == "earnings week"
    assert "Nothing happens until it is confirmed" in result.text
    async with world.uow() as uow:
        assert not (await uow.trading.load(SCOPE)).control.paused
        assert await uow.events.query(EventQuery(SCOPE, types=(EventType.TRADING_PAUSED,))) == []
    done = await world.controls.confirm(pending.id, pending.id, by="alice", as_of=AT + timedelta(seconds=5))
    assert done.ok
    async with world.uow() as uow:
        assert (await uow.trading.load(SCOPE)).control.paused


async def test_control_refuses_evals_when_no_eval_queue_is_configured() -> None:
    world = make_chat_world(evals=False)
    result = await call(world, "control", action="run_evals")
    assert not result.ok and "not configured" in result.text and pending_from(result) is None


async def test_performance_and_patterns_answer_honestly_without_history() -> None:
    world = make_chat_world()
    perf = await call(world, "performance", window="week")
    assert perf.ok and "not enough valuations" in perf.text and perf.data["alpha"] is None
    patterns = await call(world, "patterns", kind="all")
    assert patterns.ok and patterns.text.startswith("0 round trips: too few to say")
    assert [s["kind"] for s in patterns.data["sections"]] == [
        "validator_concerns", "confidence", "holding_period", "exit_kind"]


async def test_a_failing_use_case_is_an_answer_not_an_exception() -> None:
    world = make_chat_world()

    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("socket closed")

    world.broker.account = broken  # type: ignore[method-assign]
    result = await call(world, "portfolio")
    assert not result.ok and result.text == "portfolio failed (RuntimeError); see the logs"
