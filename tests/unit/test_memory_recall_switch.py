"""The no-memory switch of the evals: with `memory_recall` off the trade memory is never queried and no entry
candidate, rule validator or validator agent sees memory evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from application.cycle.context import CycleSettings
from domain.memory import MemoryKind, MemoryRecord
from entrypoints.container import build_container
from entrypoints.settings import load_settings
from tests.support.world import CALENDAR, World, make_world, run_day

START = date(2024, 3, 1)
SESSIONS = CALENDAR.sessions(START, date(2024, 4, 30))
SETUP = ("uptrend, price 10.00 vs 50-day average 9.00; 20-day return +5.0%, 5-day +1.0%; volatility 20% annualised, "
         "ATR 2.0%; volume 1.0x average")


async def _world(*, recall: bool) -> tuple[World, list[int], list[Any]]:
    """A world whose trade memory holds five losing trades and counts its queries, and whose validator agent's
    candidates are recorded."""
    world = await make_world(start=START)
    cycle = world.app.cycle
    cycle.settings = replace(cycle.settings, memory_recall=recall)
    memory = world.container.memory_db().trade_memory
    queries: list[int] = []
    real_many, real_one = memory.similar_many, memory.similar

    async def similar_many(queries_: Any, **kw: Any) -> Any:
        queries.append(len(queries_))
        return await real_many(queries_, **kw)

    async def similar(query: Any, **kw: Any) -> Any:
        queries.append(1)
        return await real_one(query, **kw)

    memory.similar_many, memory.similar = similar_many, similar  # type: ignore[method-assign,assignment]
    before = CALENDAR.session_open(START) - timedelta(days=30)
    async with world.uow_factory() as uow:
        await uow.trade_memory.store([MemoryRecord(
            MemoryKind.TRADE, f"BUY X at 10: {SETUP}. Reasoning: a losing setup {i}", before - timedelta(days=i),
            symbol="X", action="BUY", outcome="LOSS", return_pct=-0.05, outcome_at=before, scope=cycle.scope)
            for i in range(5)])  # closed trades of five days, alike to any uptrend setup
        await uow.commit()
    asked: list[Any] = []
    agents = world.container.agents()
    real_validate = agents.validate

    async def validate(candidates: Any, *args: Any, **kw: Any) -> Any:
        asked.extend(candidates)
        return await real_validate(candidates, *args, **kw)

    agents.validate = validate  # type: ignore[method-assign]
    return world, queries, asked


async def _outcomes(world: World) -> list[Any]:
    out = []
    for day in SESSIONS:
        out += (await run_day(world, day)).outcomes
    return out


async def test_with_recall_on_candidates_carry_the_memory_evidence() -> None:
    world, queries, asked = await _world(recall=True)
    outcomes = await _outcomes(world)
    assert queries, "the trade memory should be queried"
    assert any(o.evidence for o in outcomes)
    assert asked and all(len(c.similar_trades) == 5 for c in asked)


async def test_with_recall_off_the_memory_is_never_queried_and_nobody_sees_evidence() -> None:
    world, queries, asked = await _world(recall=False)
    outcomes = await _outcomes(world)
    assert outcomes, "the cycle should still decide"
    assert queries == []
    assert all(o.evidence == () for o in outcomes)
    assert all(o.validation is None or o.validation.evidence == () for o in outcomes)
    assert asked, "the validator agent should still be asked"
    assert all(c.similar_trades == () for c in asked)


def test_the_container_reads_the_switch_from_the_run_configuration() -> None:
    settings = load_settings(env="test")
    on = build_container(settings, "backtest", storage="memory", start=START, end=START, symbols=["AAA"])
    off = build_container(settings, "backtest", storage="memory", start=START, end=START, symbols=["AAA"],
                          memory_recall=False)
    assert on.cycle().settings.memory_recall is True
    assert off.cycle().settings.memory_recall is False
    assert CycleSettings().memory_recall is True
