"""A discovery run end to end on the embedded PostgreSQL test database (hashing embedder, offline LLM policy):
suggestions, watchlist, change log, events and discovered assets are in the database; a retried run is not
stored twice; forward returns and picker performance follow; the cycle universe reads the stored watchlist."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.clock import SimClock
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.market_data import SyntheticMarket
from adapters.llm.offline_policy import OfflinePolicyLLM
from adapters.postgres.uow import PgUnitOfWork
from application.discovery.service import DiscoveryService
from application.llm_gateway import LLMGateway
from application.market_conditions import MarketConditionService
from domain.discovery.config import DiscoverySettings
from domain.events import EventType
from domain.ports.repositories import EventQuery
from domain.ports.uow import UnitOfWork
from entrypoints.api.shapes import discovery_performance_json, discovery_run_json

pytestmark = pytest.mark.integration

NY = ZoneInfo("America/New_York")
CAL = NyseCalendar()
DAY = date(2024, 6, 3)


async def test_a_discovery_run_end_to_end_on_postgres(pg_sessionmaker: object, scope: str) -> None:
    embedder = HashingEmbedder()

    def uow_factory() -> UnitOfWork:
        return PgUnitOfWork(pg_sessionmaker, embedder)  # type: ignore[arg-type]

    market = SyntheticMarket(seed=5, n_symbols=25, start=date(2023, 1, 2), end=date(2024, 7, 31), calendar=CAL)
    clock = SimClock(CAL.session_open(DAY))
    service = DiscoveryService(uow_factory, market, market.fundamentals(), embedder,
                               LLMGateway({"default": OfflinePolicyLLM()}, 0.5, scope, NY),
                               MarketConditionService(market, scope=scope), CAL, DiscoverySettings(), scope,
                               clock=clock)
    async with uow_factory() as uow:
        await service.watchlist.add_manual(uow, "MANUAL", reason="kept by hand", as_of=clock.now())
        await uow.commit()

    out = discovery_run_json(await service.run())
    assert out["status"] == "completed" and out["universe_size"] == 25 and out["llm_error"] is None

    async with uow_factory() as uow:
        run = await uow.suggestions.get_run(out["run_id"])
        rows = await uow.suggestions.list(scope, run_id=out["run_id"], limit=1000)
        watchlist = {e.symbol: e for e in await uow.watchlist.list(scope)}
        changes = await uow.watchlist.changes(scope, limit=100)
        events = await uow.events.query(EventQuery(scope, limit=1000))
        asset = await uow.discovered.get(market.stock_symbols[0])
    assert run is not None and set(run.stats["universe"]) <= set(market.stock_symbols)
    assert {s.picker for s in rows} == {"metric", "fuzzy", "llm", "ensemble"}
    added = [c["symbol"] for c in out["changes"] if c["change"] == "add"]
    assert added and set(watchlist) == {"MANUAL", *added}
    assert watchlist["MANUAL"].source == "manual"
    assert {c.symbol for c in changes if c.source == "discovered"} == set(added)
    types = {e.type for e in events}
    assert {EventType.DISCOVERY_RUN, EventType.WATCHLIST_CHANGED} <= types
    assert asset is not None and asset.first_seen == CAL.session_open(DAY) and asset.sector is not None

    again = discovery_run_json(await service.run())
    assert again["status"] == "existing"
    async with uow_factory() as uow:
        assert len(await uow.suggestions.list(scope, run_id=out["run_id"], limit=1000)) == len(rows)
        assert await service.universe()(uow, clock.now()) == sorted(watchlist)

    for day in CAL.sessions(DAY, DAY + timedelta(days=10)):
        await service.update_forward_returns(CAL.session_close(day))
    perf = discovery_performance_json(await service.performance(CAL.session_close(DAY + timedelta(days=10))))
    assert perf["pickers"]["ensemble"]["1d"]["n"] == sum(1 for s in rows if s.picker == "ensemble")
    assert perf["pickers"]["ensemble"]["5d"]["n"] > 0 and perf["pickers"]["ensemble"]["20d"]["n"] == 0
    assert perf["paper_trades"]["hypothetical_trades"] > 0
