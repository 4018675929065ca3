"""DiscoveryService end to end in memory on a synthetic market: suggestions stored, watchlist updated,
events emitted, the cycle universe is the watchlist; no look-ahead, memory recall as of the run,
LLM failures tolerated, retried runs not duplicated, the API surface, and a backtest with discovery on."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.clock import SimClock
from adapters.inmemory.fundamentals import InMemoryFundamentals
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.market_data import DailyBarMarketData, SyntheticMarket
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from adapters.llm.offline_policy import OfflinePolicyLLM
from adapters.reports.backtest_report import write_report
from adapters.reports.shapes import picker_performance_json
from application.discovery.service import DiscoveryService
from application.liquidity import most_liquid_before
from application.llm_gateway import LLMGateway
from application.market_conditions import MarketConditionService
from domain.discovery.config import DiscoverySettings
from domain.events import EventType, Severity
from domain.features import compute_features, setup_text
from domain.memory import MemoryKind, MemoryRecord
from domain.ports.discovery_api import DiscoveryApi
from domain.ports.llm import LLM, Decision, LLMRequest, OutputT
from domain.ports.repositories import EventQuery
from domain.ports.uow import UnitOfWork
from entrypoints.api.shapes import (
    discovery_performance_json,
    discovery_run_json,
    discovery_status_json,
    watchlist_edit_json,
)
from entrypoints.commands.discover import add_picker_performance_html
from entrypoints.container import build_container
from entrypoints.settings import load_settings
from entrypoints.wiring.venue import NOT_STOCKS

NY = ZoneInfo("America/New_York")
CAL = NyseCalendar()
DAY = date(2024, 6, 3)
SCOPE = "live"


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(seed=11, n_symbols=30, start=date(2023, 1, 2), end=date(2024, 8, 30), calendar=CAL)


@dataclass
class Env:
    db: InMemoryDatabase
    service: DiscoveryService
    clock: SimClock

    def uow(self) -> UnitOfWork:
        return InMemoryUnitOfWork(self.db)


def make_env(market: DailyBarMarketData, fundamentals: object, llm: LLM | None = None,
             **settings: object) -> Env:
    db = InMemoryDatabase(HashingEmbedder())
    clock = SimClock(CAL.session_open(DAY))
    gateway = LLMGateway({"default": llm or OfflinePolicyLLM()}, 0.5, SCOPE, NY)
    service = DiscoveryService(lambda: InMemoryUnitOfWork(db), market, fundamentals, HashingEmbedder(),  # type: ignore[arg-type]
                               gateway, MarketConditionService(market, scope=SCOPE), CAL,
                               DiscoverySettings(**settings), SCOPE, clock=clock)  # type: ignore[arg-type]
    return Env(db, service, clock)


@pytest.fixture
def env(market: SyntheticMarket) -> Env:
    return make_env(market, market.fundamentals())


async def events(env: Env, *types: EventType) -> list:
    async with env.uow() as uow:
        return await uow.events.query(EventQuery(SCOPE, types=types, limit=1000))


async def test_a_run_stores_suggestions_updates_the_watchlist_and_emits_events(env: Env,
                                                                             market: SyntheticMarket) -> None:
    out = discovery_run_json(await env.service.run(CAL.session_open(DAY)))
    assert out["status"] == "completed" and out["universe_size"] == 30
    async with env.uow() as uow:
        runs = await uow.suggestions.runs(SCOPE)
        rows = await uow.suggestions.list(SCOPE, limit=10_000)
        watchlist = await uow.watchlist.list(SCOPE)
    assert [r.id for r in runs] == [out["run_id"]]
    assert {s.picker for s in rows} == {"metric", "fuzzy", "llm", "ensemble"}
    ensemble = sorted((s for s in rows if s.picker == "ensemble"), key=lambda s: s.rank)
    assert [s.score for s in ensemble] == sorted((s.score for s in ensemble), reverse=True)
    assert all(s.entry_price is not None and s.as_of == CAL.session_open(DAY) for s in rows)
    qualified = [s.symbol for s in ensemble if s.score >= 0.5][:10]
    assert qualified, "the synthetic market should give some qualifying symbols"
    assert sorted(e.symbol for e in watchlist) == sorted(qualified)
    assert all(e.source == "discovered" and e.reason.startswith("discovered: ensemble score") for e in watchlist)
    assert [s["symbol"] for s in out["suggestions"]] == [s.symbol for s in ensemble]

    (run_event,) = await events(env, EventType.DISCOVERY_RUN)
    assert run_event.payload["run_id"] == out["run_id"] and run_event.payload["added"]
    changed = await events(env, EventType.WATCHLIST_CHANGED)
    each = [e for e in changed if e.severity == Severity.DEBUG]
    (summary,) = [e for e in changed if e.severity == Severity.INFO]  # the one alerted
    assert sorted(e.symbol for e in each) == sorted(qualified)
    assert all(e.payload["reason"].startswith("discovered: ensemble score") for e in each)
    assert sorted(summary.payload["added"]) == sorted(qualified) and summary.payload["removed"] == []
    assert summary.payload["size"] == len(qualified) and set(summary.payload["reasons"]) == set(qualified)
    (divergence,) = await events(env, EventType.DISCOVERY_DIVERGENCE)  # one per run, a handful of symbols
    suggested = {s.symbol for s in rows}
    assert 1 <= len(divergence.payload["symbols"]) <= 5 and set(divergence.payload["symbols"]) <= suggested
    spreads = [divergence.payload["spread"][s] for s in divergence.payload["symbols"]]
    assert spreads == sorted(spreads, reverse=True)  # strongest first
    assert 0.0 <= divergence.payload["overlap"] <= 1.0 and divergence.payload["pickers"] == ["metric", "fuzzy", "llm"]
    fresh = await make_env(market, market.fundamentals()).service.discover(CAL.session_open(DAY))
    spread = {r.symbol: max(r.components.values()) - min(r.components.values()) for r in fresh.ranked
              if r.divergent and r.symbol in suggested}
    assert divergence.payload["symbols"] == sorted(spread, key=lambda s: -spread[s])[:5]

    async with env.uow() as uow:
        assert await env.service.universe()(uow, CAL.session_open(DAY)) == sorted(qualified)


async def test_a_retried_run_is_not_stored_twice(env: Env) -> None:
    first = discovery_run_json(await env.service.run(CAL.session_open(DAY)))
    again = discovery_run_json(await env.service.run(CAL.session_open(DAY)))
    assert again["status"] == "existing" and again["run_id"] == first["run_id"]
    assert [s["symbol"] for s in again["suggestions"]] == [s["symbol"] for s in first["suggestions"]]
    assert len(await events(env, EventType.DISCOVERY_RUN)) == 1


async def test_a_run_sees_nothing_after_its_time(market: SyntheticMarket) -> None:
    cut = DailyBarMarketData({s: b.upto(DAY - timedelta(days=1)) for s, b in market.data.series.items()}, CAL)
    full, truncated = make_env(market, market.fundamentals()), make_env(cut, market.fundamentals())
    a = discovery_run_json(await full.service.run(CAL.session_open(DAY)))
    b = discovery_run_json(await truncated.service.run(CAL.session_open(DAY)))
    assert [(s["symbol"], s["score"]) for s in a["suggestions"]] == [(s["symbol"], s["score"])
                                                                       for s in b["suggestions"]]


async def losing_memories(env: Env, market: SyntheticMarket, symbol: str, known_at: datetime) -> None:
    series = market.series(symbol)
    assert series is not None
    features = compute_features(series.upto(DAY - timedelta(days=1)))
    assert features is not None
    records = [MemoryRecord(MemoryKind.TRADE, setup_text(features), known_at, symbol=symbol, action="BUY",
                            outcome="LOSS", return_pct=-0.06, outcome_at=known_at, scope=SCOPE) for _ in range(5)]
    async with env.uow() as uow:
        await uow.trade_memory.store(records)
        await uow.commit()


async def test_similar_losing_trades_known_before_the_run_lower_the_fuzzy_score(market: SyntheticMarket) -> None:
    plain = make_env(market, market.fundamentals())
    base = await plain.service.discover(CAL.session_open(DAY))
    symbol = next(r.symbol for r in base.ranked if "fuzzy" in r.agreed)
    before, after = make_env(market, market.fundamentals()), make_env(market, market.fundamentals())
    await losing_memories(before, market, symbol, CAL.session_open(DAY) - timedelta(days=30))
    await losing_memories(after, market, symbol, CAL.session_open(DAY) + timedelta(days=1))
    remembered = await before.service.discover(CAL.session_open(DAY))
    future = await after.service.discover(CAL.session_open(DAY))

    def fuzzy(outcome: object) -> float:
        return next(r.components["fuzzy"] for r in outcome.ranked if r.symbol == symbol)  # type: ignore[attr-defined]

    assert fuzzy(remembered) < fuzzy(base)
    assert fuzzy(future) == fuzzy(base)  # a memory from after the run is not recalled


class FailingLLM(LLM):
    provider = "offline"

    def __init__(self, exc: Callable[[], Exception]) -> None:
        self.exc = exc

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        raise self.exc()


@pytest.mark.parametrize("exc", [lambda: ValueError("not JSON"), lambda: RuntimeError("socket closed")],
                         ids=["gateway-handled", "unexpected"])
async def test_a_failing_llm_leaves_a_run_of_the_other_pickers(market: SyntheticMarket,
                                                              exc: Callable[[], Exception]) -> None:
    env = make_env(market, market.fundamentals(), FailingLLM(exc))
    out = discovery_run_json(await env.service.run(CAL.session_open(DAY)))
    assert out["status"] == "completed" and out["llm_error"]
    assert out["llm"]["asked"] > 0 and out["llm"]["answered"] == 0
    assert out["suggestions"] and all("llm" not in s["components"] for s in out["suggestions"])
    assert len(await events(env, EventType.LLM_FAILED)) == 1
    assert "LLM picker gave nothing" in (await events(env, EventType.DISCOVERY_RUN))[0].message


async def test_only_the_enabled_pickers_run(market: SyntheticMarket) -> None:
    env = make_env(market, market.fundamentals(), pickers=("metric", "fuzzy"))
    out = discovery_run_json(await env.service.run(CAL.session_open(DAY)))
    assert out["pickers"] == ["metric", "fuzzy"] and out["llm"]["asked"] == 0
    async with env.uow() as uow:
        assert {s.picker for s in await uow.suggestions.list(SCOPE)} == {"metric", "fuzzy", "ensemble"}


async def test_without_benchmark_bars_the_run_is_skipped_with_the_reason(market: SyntheticMarket) -> None:
    no_spy = DailyBarMarketData({s: b for s, b in market.data.series.items() if s != "SPY"}, CAL)
    env = make_env(no_spy, market.fundamentals())
    out = discovery_run_json(await env.service.run(CAL.session_open(DAY)))
    assert out["status"] == "skipped" and "SPY" in out["skipped"] and out["suggestions"] == []


async def test_without_any_market_cap_or_sector_the_run_skips_those_checks_and_says_so(
        market: SyntheticMarket) -> None:
    env = make_env(market, InMemoryFundamentals())  # e.g. Alpaca without a fundamentals file
    with capture_logs() as logs:
        out = discovery_run_json(await env.service.run(CAL.session_open(DAY)))
    skipped = out["skipped_filters"]
    assert skipped == {
        "market_cap": "market cap filter skipped: no market cap known for any of the 30 symbols "
                      "(minimum $2.0B not applied)",
        "sector_balance": "sector balance skipped: no sector known for any of the 30 symbols"}
    assert out["passed_metric"] > 0 and out["suggestions"] and out["changes"]  # something is picked
    assert sorted(e["reason"] for e in logs if e["event"] == "discovery_filter_skipped") == sorted(skipped.values())
    (run_event,) = await events(env, EventType.DISCOVERY_RUN)
    assert run_event.payload["skipped_filters"] == skipped and skipped["market_cap"] in run_event.message
    assert discovery_status_json(await env.service.status())["last_run"]["skipped_filters"] == skipped
    again = discovery_run_json(await env.service.run(CAL.session_open(DAY)))
    assert again["status"] == "existing" and again["skipped_filters"] == skipped


async def test_with_market_caps_for_some_symbols_the_unknown_ones_are_still_rejected(market: SyntheticMarket) -> None:
    known = market.stock_symbols[:15]
    records = await market.fundamentals().get(known, as_of=DAY)
    env = make_env(market, InMemoryFundamentals(records.values()))
    outcome = await env.service.discover(CAL.session_open(DAY))
    assert outcome.skipped_filters == {} and outcome.run.stats["skipped_filters"] == {}
    unknown = [s for s in market.stock_symbols if s not in known]
    for symbol in unknown:
        result = outcome.ensemble.result(symbol)  # type: ignore[union-attr]
        assert result is not None and result.score == 0.0
        assert any(line.startswith("metric: ") and "unknown market cap" in line for line in result.reasons)
    assert {e.symbol for e in outcome.watchlist} <= set(known)


async def test_the_api_surface_status_suggestions_and_manual_edits(env: Env) -> None:
    assert isinstance(env.service, DiscoveryApi)
    assert (await env.service.status()).last_run is None
    await env.service.run()  # as of the clock: the open of DAY
    status = discovery_status_json(await env.service.status())
    assert status["last_run"]["as_of"] == CAL.session_open(DAY).isoformat()
    assert status["next_run"] == (CAL.session_open(DAY) + timedelta(hours=4)).isoformat()
    assert status["running"] is False and status["watchlist_size"] > 0
    best = await env.service.suggestions()
    assert [s.rank for s in best] == sorted(s.rank for s in best) and {s.picker for s in best} == {"ensemble"}
    added = watchlist_edit_json(await env.service.watchlist_add("zzz", "user pick"))
    assert added["changes"][-1] == {"symbol": "ZZZ", "change": "add", "source": "manual", "reason": "user pick",
                                    "at": CAL.session_open(DAY).isoformat()}
    removed = await env.service.watchlist_remove("ZZZ")
    assert removed.changes[0].reason == "removed by hand" and "ZZZ" not in {e.symbol for e in removed.watchlist}
    with pytest.raises(ValueError, match="ZZZ is not on the watchlist"):
        await env.service.watchlist_remove("ZZZ")


async def test_forward_returns_and_performance_follow_the_runs(env: Env, market: SyntheticMarket) -> None:
    for day in CAL.sessions(DAY, DAY + timedelta(days=14)):
        env.clock.set(CAL.session_open(day))
        await env.service.run()
        await env.service.update_forward_returns(CAL.session_close(day))
    report = discovery_performance_json(await env.service.performance(CAL.session_close(DAY + timedelta(days=14))))
    ensemble = report["pickers"]["ensemble"]
    assert ensemble["1d"]["n"] > 0 and ensemble["5d"]["n"] > 0 and ensemble["20d"]["n"] == 0
    assert 0.0 <= ensemble["1d"]["hit_rate"] <= 1.0
    assert report["paper_trades"]["hypothetical_trades"] > 0


async def test_a_backtest_with_discovery_trades_the_watchlist_and_reports_picker_performance(tmp_path: Path) -> None:
    settings = load_settings(env="test")
    start, end, scope = date(2024, 3, 1), date(2024, 4, 10), "backtest:discovery"
    container = build_container(settings, "backtest", storage="memory", scope=scope, start=start, end=end,
                                cash=Decimal(650), n_symbols=30, seed=3, discovery=True)
    symbols = await most_liquid_before(container.market(), CAL, start, 30, exclude=NOT_STOCKS)
    container.run.symbols.from_value(symbols)
    assert container.backtest_discovery() is not None
    result = await container.backtest_runner().run(run_id="d", start=start, end=end, symbols=symbols)
    sessions = CAL.sessions(start, end)
    async with container.uow_factory()() as uow:
        runs = await uow.suggestions.runs(scope, limit=1000)
        added = {c.symbol for c in await uow.watchlist.changes(scope, limit=10_000) if c.change == "add"}
        assert await uow.discovered.list() == []  # backtests leave the shared asset table alone
    assert sorted(r.as_of for r in runs) == [CAL.session_open(d) for d in sessions]  # once a session, at the open
    assert result.fills and {f.symbol for f in result.fills} <= added
    perf = result.extra["picker_performance"]
    assert set(perf) == {"metric", "fuzzy", "llm", "ensemble"}
    assert perf["ensemble"][1].n > 0 and perf["ensemble"][20].n > 0
    assert len(result.extra["discovery_paper_trades"].hypothetical) > 0
    summary = write_report(result, tmp_path, {})
    add_picker_performance_html(tmp_path / "report.html", summary["picker_performance"])
    assert json.loads((tmp_path / "summary.json").read_text())["picker_performance"] == picker_performance_json(perf)
    assert summary["discovery_paper_trades"]["hypothetical_trades"] == len(result.extra["discovery_paper_trades"]
                                                                           .hypothetical)
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Picker performance</h2>" in page and page.rstrip().endswith("</html>")
