"""Contract of the discovery repositories (watchlist, suggestions, discovered assets), on both backends.

Every test runs on the in-memory fakes and on PostgreSQL, in a scope of its own. Discovered assets
have no scope, so those tests use symbols made from the scope.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.ports.discovery import (
    DiscoveredAsset,
    DiscoveredSymbolRepository,
    DiscoveryRun,
    ForwardReturn,
    Suggestion,
    SuggestionRepository,
    WatchlistChange,
    WatchlistEntry,
    WatchlistRepository,
)
from domain.ports.uow import UnitOfWorkFactory

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


def suggestion(scope: str, run_id: str, picker: str, symbol: str, rank: int, *, at: datetime = T0,
               score: float = 0.7) -> Suggestion:
    return Suggestion(run_id, scope, picker, symbol, score, rank, at, ("passed all filters",),
                      {"agreed": ["metric", "fuzzy"], "divergent": False}, Decimal("101.2345"))


async def test_units_of_work_expose_the_discovery_repositories(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        for name, port in (("watchlist", WatchlistRepository), ("suggestions", SuggestionRepository),
                           ("discovered", DiscoveredSymbolRepository)):
            assert port in type(getattr(uow, name)).__mro__, f"uow.{name} does not implement {port.__name__}"


async def test_watchlist_upsert_list_and_remove(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        await uow.watchlist.upsert(scope, WatchlistEntry("MSFT", "manual", "long-term core holding", T0))
        await uow.watchlist.upsert(scope, WatchlistEntry("AAPL", "discovered", "ensemble 0.81", T0, 0.81))
        await uow.watchlist.upsert(scope, WatchlistEntry("AAPL", "discovered", "ensemble 0.77", T0 + HOUR, 0.77))
        await uow.watchlist.upsert("other-" + scope, WatchlistEntry("TSLA", "manual", "elsewhere", T0))
        entries = await uow.watchlist.list(scope)
        assert [(e.symbol, e.source, e.score, e.reason) for e in entries] == [
            ("AAPL", "discovered", 0.77, "ensemble 0.77"), ("MSFT", "manual", None, "long-term core holding")]
        assert entries[0].added_at == T0 + HOUR
        assert await uow.watchlist.get(scope, "MSFT") == entries[1]
        assert await uow.watchlist.remove(scope, "MSFT") is True
        assert await uow.watchlist.remove(scope, "MSFT") is False
        assert [e.symbol for e in await uow.watchlist.list(scope)] == ["AAPL"]


@pytest.mark.parametrize(("entry", "message"), [
    (WatchlistEntry("AAPL", "robot", "x", T0), "unknown watchlist source 'robot'"),  # type: ignore[arg-type]
    (WatchlistEntry("AAPL", "discovered", "x", T0, 1.5), "watchlist score must be within 0..1"),
    (WatchlistEntry("AAPL", "manual", "  ", T0), "needs a symbol and a reason"),
])
async def test_watchlist_refuses_bad_entries(uow_factory: UnitOfWorkFactory, scope: str,
                                             entry: WatchlistEntry, message: str) -> None:
    async with uow_factory() as uow:
        with pytest.raises(ValueError, match=message):
            await uow.watchlist.upsert(scope, entry)


async def test_watchlist_changes_are_kept_newest_first(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        first = await uow.watchlist.add_change(WatchlistChange(scope, "AAPL", "add", "discovered", "score 0.8", T0))
        await uow.watchlist.add_change(WatchlistChange(scope, "AAPL", "remove", "manual", "too volatile", T0 + HOUR))
        await uow.watchlist.add_change(WatchlistChange(scope, "MSFT", "add", "manual", "core", T0 + 2 * HOUR))
        assert first.id is not None
        changes = await uow.watchlist.changes(scope)
        assert [(c.symbol, c.change, c.source, c.reason) for c in changes] == [
            ("MSFT", "add", "manual", "core"), ("AAPL", "remove", "manual", "too volatile"),
            ("AAPL", "add", "discovered", "score 0.8")]
        assert [c.symbol for c in await uow.watchlist.changes(scope, since=T0 + HOUR)] == ["MSFT", "AAPL"]
        assert len(await uow.watchlist.changes(scope, limit=1)) == 1
        with pytest.raises(ValueError, match="unknown change 'rename'"):
            await uow.watchlist.add_change(WatchlistChange(scope, "X", "rename", "manual", "?", T0))  # type: ignore[arg-type]


async def test_watchlist_changes_roll_back_with_the_unit_of_work(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        await uow.watchlist.upsert(scope, WatchlistEntry("KEEP", "manual", "kept", T0))
        await uow.commit()
    async with uow_factory() as uow:
        await uow.watchlist.upsert(scope, WatchlistEntry("GONE", "manual", "rolled back", T0))
        await uow.watchlist.remove(scope, "KEEP")
        await uow.watchlist.add_change(WatchlistChange(scope, "GONE", "add", "manual", "rolled back", T0))
    async with uow_factory() as uow:
        assert [e.symbol for e in await uow.watchlist.list(scope)] == ["KEEP"]
        assert await uow.watchlist.changes(scope) == []


async def test_runs_are_stored_once_and_listed_newest_first(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        run = DiscoveryRun(f"{scope}:r1", scope, T0, ("metric", "fuzzy"), 480, {"universe": ["AAPL", "MSFT"]})
        await uow.suggestions.add_run(run)
        await uow.suggestions.add_run(DiscoveryRun(f"{scope}:r2", scope, T0 + 4 * HOUR, ("metric",), 3))
        with pytest.raises(ValueError, match="already exists"):
            await uow.suggestions.add_run(run)
        assert await uow.suggestions.get_run(f"{scope}:r1") == run
        assert await uow.suggestions.get_run("nope") is None
        assert [r.id for r in await uow.suggestions.runs(scope)] == [f"{scope}:r2", f"{scope}:r1"]
        assert [r.id for r in await uow.suggestions.runs(scope, limit=1)] == [f"{scope}:r2"]


async def test_suggestions_round_trip_and_filter(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        stored = await uow.suggestions.add([
            suggestion(scope, "r1", "ensemble", "AAPL", 1), suggestion(scope, "r1", "ensemble", "MSFT", 2),
            suggestion(scope, "r1", "metric", "MSFT", 1),
            suggestion(scope, "r2", "ensemble", "NVDA", 1, at=T0 + 4 * HOUR, score=1.0),
        ])
        assert all(s.id is not None for s in stored)
        assert stored[0].reasons == ("passed all filters",)
        assert stored[0].details == {"agreed": ["metric", "fuzzy"], "divergent": False}
        assert stored[0].entry_price == Decimal("101.2345") and stored[0].forward_returns == {}
        listed = await uow.suggestions.list(scope)
        assert [(s.run_id, s.picker, s.symbol) for s in listed] == [
            ("r2", "ensemble", "NVDA"), ("r1", "ensemble", "AAPL"), ("r1", "ensemble", "MSFT"),
            ("r1", "metric", "MSFT")]
        assert [s.symbol for s in await uow.suggestions.list(scope, picker="metric")] == ["MSFT"]
        assert [s.symbol for s in await uow.suggestions.list(scope, run_id="r2")] == ["NVDA"]
        assert [s.symbol for s in await uow.suggestions.list(scope, since=T0 + HOUR)] == ["NVDA"]
        assert len(await uow.suggestions.list(scope, until=T0 + HOUR)) == 3
        assert await uow.suggestions.list("other-" + scope) == []


@pytest.mark.parametrize(("picker", "score", "rank", "message"), [
    ("oracle", 0.5, 1, "unknown picker 'oracle'"),
    ("metric", 1.2, 1, "suggestion score must be within 0..1"),
    ("metric", 0.5, 0, "rank must be at least 1"),
])
async def test_suggestions_refuse_bad_values(uow_factory: UnitOfWorkFactory, scope: str, picker: str, score: float,
                                             rank: int, message: str) -> None:
    async with uow_factory() as uow:
        with pytest.raises(ValueError, match=message):
            await uow.suggestions.add([Suggestion("r", scope, picker, "AAPL", score, rank, T0)])


async def test_forward_returns_are_pending_until_set(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        a, b = await uow.suggestions.add([suggestion(scope, "r1", "ensemble", "AAPL", 1),
                                          suggestion(scope, "r1", "ensemble", "MSFT", 2, at=T0 + HOUR)])
        assert a.id is not None and b.id is not None
        assert [s.symbol for s in await uow.suggestions.pending_forward_returns(scope, 1)] == ["AAPL", "MSFT"]
        await uow.suggestions.set_forward_returns([ForwardReturn(a.id, 1, 0.0125, 0.004),
                                                   ForwardReturn(a.id, 5, -0.02, None)])
        assert [s.symbol for s in await uow.suggestions.pending_forward_returns(scope, 1)] == ["MSFT"]
        assert [s.symbol for s in await uow.suggestions.pending_forward_returns(scope, 20)] == ["AAPL", "MSFT"]
        assert await uow.suggestions.pending_forward_returns(scope, 1, until=T0 + HOUR) == []
        got = (await uow.suggestions.list(scope, picker="ensemble"))[-1]
        assert got.symbol == "AAPL"
        assert got.forward_returns == {1: 0.0125, 5: -0.02} and got.universe_returns == {1: 0.004}
        with pytest.raises(KeyError):
            await uow.suggestions.set_forward_returns([ForwardReturn(10**12, 1, 0.01)])
        with pytest.raises(ValueError, match="unknown horizon 3"):
            await uow.suggestions.set_forward_returns([ForwardReturn(a.id, 3, 0.01)])
        with pytest.raises(ValueError, match="unknown horizon 2"):
            await uow.suggestions.pending_forward_returns(scope, 2)


async def test_discovered_assets_keep_first_and_latest_sighting(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    sym = "Z" + scope[-8:].upper()
    other = "Y" + scope[-8:].upper()
    async with uow_factory() as uow:
        await uow.discovered.upsert([DiscoveredAsset(sym, True, "Zed Corp", "NYSE", sector="Energy", market_cap=3e9),
                                     DiscoveredAsset(other, False)], at=T0 + HOUR)
        await uow.discovered.upsert([DiscoveredAsset(sym, False, "Zed Corp", "NYSE")], at=T0)
        await uow.discovered.upsert([DiscoveredAsset(sym, True, "Zed Corporation", "NYSE")], at=T0 + 2 * HOUR)
        got = await uow.discovered.get(sym)
        assert got is not None
        assert (got.first_seen, got.last_seen) == (T0, T0 + 2 * HOUR)
        assert (got.name, got.tradable, got.sector, got.market_cap) == ("Zed Corporation", True, "Energy", 3e9)
        listed = {a.symbol for a in await uow.discovered.list(tradable_only=True)}
        assert sym in listed and other not in listed
        assert other in {a.symbol for a in await uow.discovered.list(seen_since=T0 + HOUR)}
        assert await uow.discovered.get("NOPE" + sym) is None
