"""Reusing the agents' decisions (issue 15) on real sessions (tests/fixtures/market): the trades are the ones asking
again would give, the LLM is asked far less on the live schedule, and the report counts it."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.inmemory.market_data import ReplayMarketData
from adapters.llm.offline_policy import OfflinePolicyLLM
from domain.ports.llm import Decision, LLMRequest
from entrypoints.rehearsal import Rehearsal, RehearsalOptions
from entrypoints.settings import load_settings
from tests.support.world import CALENDAR, World, feed_close, feed_open, make_world

pytestmark = pytest.mark.integration
MARKET = Path(__file__).resolve().parents[1] / "fixtures" / "market"
START, END = date(2016, 3, 1), date(2016, 3, 31)
LIVE_SLOTS = [5 + 30 * i for i in range(13)]  # 09:35, then every 30 minutes: the live schedule's 13 cycles


class CountingLLM:
    """The offline policy, counting the calls of each agent."""

    provider = "offline"

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        self.calls[request.agent] = self.calls.get(request.agent, 0) + 1
        return await OfflinePolicyLLM().complete(request)


async def real_world(counter: CountingLLM, *, reuse: bool) -> World:
    market = ReplayMarketData([MARKET / "daily", MARKET / "context"], CALENDAR)
    return await make_world(start=START, end=END, n=14, market=market, llms={"default": counter},
                            settings=load_settings(env="test", llm={"reuse_decisions": reuse}),
                            scope="backtest:reuse")


def trades(world: World) -> list[list[str]]:
    return [[f.client_order_id, f.symbol, f.side.value, str(f.qty), str(f.price), f.at.isoformat()]
            for f in world.app.broker.fills]


async def live_schedule(world: World) -> list[list[Any]]:
    """Every session of the window on the live schedule: 13 cycles, what each sent filled a minute later (at the
    day's open price, the only intraday price daily data has), the close and the reconciliation at the close."""
    app, decided = world.app, []
    for day in CALENDAR.sessions(START, END):
        feed_open(world, day)
        for minutes in LIVE_SLOTS:
            at = CALENDAR.session_open(day) + timedelta(minutes=minutes)
            result = await app.cycle.run(as_of=at)
            assert result.status == "completed", result.error
            decided.append([at.isoformat(), [(o.symbol, str(o.final), o.reason) for o in result.outcomes]])
            app.clock.set(at + timedelta(minutes=1))
            app.broker.on_prices(at + timedelta(minutes=1), app.market.opens_on(day))
        feed_close(world, day)
        await app.cycle.reconcile(as_of=CALENDAR.session_close(day))
    return decided


async def test_the_live_schedule_trades_the_same_and_asks_the_llm_far_less_with_reuse() -> None:
    on, off = CountingLLM(), CountingLLM()
    with_reuse, without = await real_world(on, reuse=True), await real_world(off, reuse=False)
    decided_on, decided_off = await live_schedule(with_reuse), await live_schedule(without)
    assert trades(with_reuse), "the window should trade"
    assert trades(with_reuse) == trades(without), "reuse must not change a trade"
    assert decided_on == decided_off, "nor any decision of any cycle"
    asked_on, asked_off = sum(on.calls.values()), sum(off.calls.values())
    assert on.calls["signal"] * 4 <= off.calls["signal"], (on.calls, off.calls)
    assert asked_on * 3 <= asked_off, f"LLM calls with reuse {on.calls}, without {off.calls}"


async def test_a_daily_backtest_decides_the_same_with_reuse_and_reports_the_counts() -> None:
    results = []
    for reuse in (True, False):
        world = await real_world(CountingLLM(), reuse=reuse)
        results.append(await world.app.runner.run(run_id=f"reuse-{reuse}", start=START, end=END,
                                                  symbols=world.app.symbols))
    on, off = results
    assert on.decisions == off.decisions and on.fills == off.fills and on.fills
    counts_on, counts_off = on.extra["llm_decisions"], off.extra["llm_decisions"]
    assert counts_on == counts_off, "one cycle a session: nothing to reuse, every session asks afresh"
    assert counts_on["asked"] > 0 and counts_on["reused"] == 0 and counts_on["skipped_by_filters"] > 0
    assert set(counts_on) == {"asked", "reused", "skipped_by_filters"}


async def test_a_rehearsal_of_the_live_stack_reports_the_llm_decisions_in_its_summary(tmp_path: Path) -> None:
    opts = RehearsalOptions(date(2016, 3, 1), date(2016, 3, 2), tmp_path / "report",
                            (MARKET / "daily", MARKET / "context"), symbols=14)
    summary = await Rehearsal(load_settings(env="test"), opts, run_id="reuse", storage="memory").run()
    counts = json.loads((tmp_path / "report" / "summary.json").read_text())["llm_decisions"]
    assert summary["llm_decisions"] == counts and summary["cycles"] == 2 * 13
    assert counts["asked"] > 0 and counts["reused"] >= 5 * counts["asked"], counts
