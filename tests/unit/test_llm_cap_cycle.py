"""A cap that never strands a signal (issue 15): a cycle holds the money of its signal, risk and validator calls
before asking the signal agent, asks only about the symbols the cap carries through every stage and says which it
skipped; the default cap follows the account (0.05 USD a day for 650 USD); the process has one ledger; a run's
report gives its LLM cost per decision and per trade."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from adapters.llm.offline_policy import OfflinePolicyLLM
from application.agents import SKIPPED_BY_CAP, Agents, answered_by_agent
from application.llm_gateway import LLMGateway
from domain.agents.schemas import MarketConditions, SymbolFeatures
from domain.events import EventType
from domain.ports.llm import Decision, LLMRequest, LLMUsage
from domain.ports.repositories import EventQuery
from domain.trading_state import DayStart, TradingState
from entrypoints.container import build_container
from entrypoints.settings import load_settings
from entrypoints.wiring.system import spend_ledger
from tests.support.world import CALENDAR, World, make_world, run_day

SCOPE = "backtest:test"
BASE, PER_SYMBOL = 0.001, 0.0002
CAP = 0.0045  # one entry candidate's three calls cost 0.0036, two's 0.0042, three's 0.0048


@dataclass
class PaidPolicy:
    """The offline policy's answers at a price: a call about n symbols may cost, and costs, BASE + n * PER_SYMBOL."""

    provider: str = "openai"
    asked: dict[str, list[tuple[str, tuple[str, ...]]]] = field(default_factory=lambda: defaultdict(list))

    @staticmethod
    def symbols(request: LLMRequest[Any]) -> tuple[str, ...]:
        ctx: Any = request.context
        return tuple(i.symbol for i in (ctx.symbols if request.agent == "signal" else ctx.candidates))

    def estimate_cost_usd(self, request: LLMRequest[Any]) -> float:
        return BASE + PER_SYMBOL * len(self.symbols(request))

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        self.asked[request.cycle_id or ""].append((request.agent, self.symbols(request)))
        answer = await OfflinePolicyLLM().complete(request)
        return Decision(answer.output, LLMUsage("openai", "openai/paid", 100, 50,
                                                cost_usd=self.estimate_cost_usd(request)), raw=answer.raw)


async def paid_world(policy: PaidPolicy, cap: float | None) -> World:
    llm = {} if cap is None else {"daily_cap_usd": cap}
    return await make_world(settings=load_settings(env="test", llm=llm), llms={"default": policy})


async def stored_events(world: World, kind: EventType) -> list[Any]:
    async with world.uow_factory() as uow:
        return await uow.events.query(EventQuery(SCOPE, types=(kind,), limit=10_000))


async def test_a_tight_cap_asks_only_what_it_can_carry_through_every_stage_and_never_strands_a_signal() -> None:
    policy = PaidPolicy()
    world = await paid_world(policy, CAP)
    results = [await run_day(world, day) for day in CALENDAR.sessions(date(2024, 3, 1), date(2024, 4, 30))]
    assert all(r.status == "completed" for r in results)
    async with world.uow_factory() as uow:
        calls = await uow.llm_calls.list(SCOPE, limit=10_000)
    per_day: dict[date, float] = defaultdict(float)
    for call in calls:
        per_day[call.at.astimezone(CALENDAR.tz).date()] += call.cost_usd
    assert max(per_day.values()) <= CAP + 1e-12, "no day spends past the cap"
    judged = [o for r in results for o in r.outcomes if o.validation is not None]
    assert judged, "entries were judged"
    assert all(o.assessment is not None and o.verdict is not None for o in judged), \
        "every entry signal got its risk and validator verdicts"
    skips = await stored_events(world, EventType.LLM_CAP_SKIPPED)
    assert skips, "the cap kept symbols from the agents"
    for event in skips:
        skipped = set(event.payload["skipped"])
        asked = {s for _, symbols in policy.asked[event.cycle_id] for s in symbols}
        assert skipped and not skipped & asked, "a skipped symbol is not asked at all"
        assert "skipped: daily LLM cap" in event.message
        result = next(r for r in results if r.cycle_id == event.cycle_id)
        signals = {o.symbol: o.signal for o in result.outcomes}
        assert all(signals[s].reasoning == SKIPPED_BY_CAP or signals[s].action == "SELL" for s in skipped)
        assert not any(answered_by_agent(signals[s]) for s in skipped)
    assert any(r.orders for r in results), "entries still happen under the cap"


async def test_with_free_models_nothing_is_held_or_skipped() -> None:
    world = await make_world(settings=load_settings(env="test", llm={"daily_cap_usd": 0.0}))
    results = [await run_day(world, day) for day in CALENDAR.sessions(date(2024, 3, 1), date(2024, 4, 30))]
    assert any(r.orders for r in results)
    assert await stored_events(world, EventType.LLM_CAP_SKIPPED) == []


async def test_symbols_the_cap_skips_keep_their_rule_exits_and_hold_the_rest() -> None:
    gateway = LLMGateway({"default": PaidPolicy()}, 0.0, SCOPE, CALENDAR.tz)
    agents = Agents(gateway, exit_rules=OfflinePolicyLLM())
    market = MarketConditions(vix=30.0, vix_is_proxy=False, spy_return_20d=-0.1, spy_above_sma_50=False,
                              spy_trend="down")
    falling = SymbolFeatures(symbol="HELD", price=8, return_1d=-0.05, return_5d=-0.1, return_20d=-0.2,
                             return_60d=-0.3, sma_20=10, sma_50=11, volatility_20d=0.6, atr_pct=0.06,
                             avg_dollar_volume_20d=1e7, volume_ratio=2, held_qty=3.0)
    new = falling.model_copy(update={"symbol": "NEW", "held_qty": 0.0})
    got = await agents.skipped_by_cap([falling, new], market, as_of=datetime(2024, 3, 4, 15, tzinfo=CALENDAR.tz),
                                      cycle_id="c")
    assert got["HELD"].action == "SELL" and got["NEW"].action == "HOLD" and got["NEW"].reasoning == SKIPPED_BY_CAP


async def test_the_default_cap_is_five_cents_a_day_for_650_usd_and_follows_the_accounts_equity() -> None:
    settings = load_settings(env="test")
    assert settings.llm.daily_cap_usd is None
    ledger = spend_ledger(settings, "live", CALENDAR)
    assert ledger.cap_usd == pytest.approx(0.05)
    db = InMemoryDatabase(HashingEmbedder())
    as_of = datetime(2024, 3, 4, 15, tzinfo=CALENDAR.tz)
    async with InMemoryUnitOfWork(db) as uow:
        await uow.trading.save("live", TradingState(day_start=DayStart(as_of.date(), Decimal("1300"))), at=as_of)
        await uow.commit()
    async with InMemoryUnitOfWork(db) as uow:
        await ledger.load(uow, as_of)
    assert ledger.cap_usd == pytest.approx(0.10)
    fixed = spend_ledger(load_settings(env="test", llm={"daily_cap_usd": 0.5}), "live", CALENDAR)
    async with InMemoryUnitOfWork(db) as uow:
        await fixed.load(uow, as_of)
    assert fixed.cap_usd == 0.5


def test_an_explicit_daily_cap_in_the_environment_still_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_LLM__DAILY_CAP_USD", "0.2")
    assert spend_ledger(load_settings(env="test"), "live", CALENDAR).cap_usd == 0.2


def test_the_process_has_one_ledger_for_the_agents_the_picker_and_the_chat() -> None:
    c = build_container(load_settings(env="test"), "backtest", storage="memory", scope=SCOPE,
                        start=date(2024, 3, 1), end=date(2024, 3, 29), cash=Decimal(650), symbols=["AAA"])
    ledger = c.spend_ledger()
    assert ledger is c.spend_ledger() and c.gateway().ledger is ledger
    assert c.discovery().runner._gateway is c.gateway()
    assert c.agents()._gateway is c.gateway()


async def test_a_backtest_reports_its_llm_cost_per_decision_and_per_trade() -> None:
    world = await paid_world(PaidPolicy(), 10.0)
    start, end = date(2024, 3, 1), date(2024, 4, 30)
    result = await world.app.runner.run(run_id="cost", start=start, end=end, symbols=world.app.symbols)
    extra, cost = result.extra, result.llm_cost_usd
    made = extra["llm_decisions"]["asked"] + extra["llm_decisions"]["reused"]
    assert cost > 0 and made > 0 and result.fills
    assert extra["llm_cost_per_decision_usd"] == round(cost / made, 6)
    assert extra["llm_cost_per_trade_usd"] == round(cost / len(result.fills), 6)
    assert extra["llm_calls"] > 0 and extra["llm_calls_failed"] == 0
