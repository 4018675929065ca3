"""WatchlistManager: merging manual and discovered symbols, the size limit, manual symbols kept, removal
by hand, and a recorded reason (change log and WATCHLIST_CHANGED event) for every change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.discovery.watchlist import WatchlistManager, plan_discovery_update, watchlist_universe
from domain.discovery.config import DiscoverySettings
from domain.discovery.ensemble import HARD_REJECTION_NOTE, EnsembleResult
from domain.events import EventType, Severity
from domain.ports.discovery import WatchlistEntry
from domain.ports.repositories import EventQuery
from domain.ports.uow import UnitOfWork

T0 = datetime(2024, 6, 3, 13, 30, tzinfo=UTC)
SCOPE = "live"


def ranked(*items: tuple[str, float]) -> list[EnsembleResult]:
    """Ensemble results in the given order (rank 1 first); a negative score means "rejected by the hard filter"."""
    out = []
    for rank, (symbol, score) in enumerate(items, start=1):
        if score < 0:
            out.append(EnsembleResult(symbol, 0.0, rank, ("fuzzy",), ("metric",), True, "metric rejects",
                                      {"metric": 0.0, "fuzzy": 0.8},
                                      ("metric rejects", HARD_REJECTION_NOTE,
                                       "metric: avg volume 85.2K < 500.0K shares", "fuzzy: ...")))
        else:
            out.append(EnsembleResult(symbol, score, rank, ("metric", "fuzzy"), (), False, None,
                                      {"metric": score, "fuzzy": score}, ("metric: passed all filters",)))
    return out


@pytest.fixture
def db() -> InMemoryDatabase:
    return InMemoryDatabase(HashingEmbedder())


def manager(**settings: object) -> WatchlistManager:
    return WatchlistManager(DiscoverySettings(**settings), scope=SCOPE)  # type: ignore[arg-type]


async def discover(db: InMemoryDatabase, m: WatchlistManager, results: list[EnsembleResult], at: datetime = T0) -> dict:
    async with InMemoryUnitOfWork(db) as uow:
        changes = await m.apply_discovery(uow, results, as_of=at)
        await uow.commit()
    return {c.symbol: (c.change, c.reason) for c in changes}


async def symbols(db: InMemoryDatabase) -> dict[str, str]:
    async with InMemoryUnitOfWork(db) as uow:
        return {e.symbol: e.source for e in await uow.watchlist.list(SCOPE)}


async def add_manual(db: InMemoryDatabase, m: WatchlistManager, symbol: str, at: datetime = T0) -> dict:
    async with InMemoryUnitOfWork(db) as uow:
        changes = await m.add_manual(uow, symbol, reason=f"I follow {symbol}", as_of=at)
        await uow.commit()
    return {c.symbol: (c.change, c.source, c.reason) for c in changes}


async def test_a_run_adds_at_most_top_n_symbols_at_or_above_min_score_each_with_its_reason(
    db: InMemoryDatabase,
) -> None:
    m = manager(top_n=3, min_score=0.5)
    changes = await discover(db, m, ranked(("AAA", 0.91), ("BBB", 0.8), ("CCC", 0.7), ("DDD", 0.6), ("EEE", 0.4)))
    assert await symbols(db) == {"AAA": "discovered", "BBB": "discovered", "CCC": "discovered"}
    assert changes["AAA"] == ("add", "discovered: ensemble score 0.91, rank 1 (agreed: metric, fuzzy)")
    async with InMemoryUnitOfWork(db) as uow:
        log = await uow.watchlist.changes(SCOPE)
        events = await uow.events.query(EventQuery(SCOPE, types=(EventType.WATCHLIST_CHANGED,)))
        entries = {e.symbol: e for e in await uow.watchlist.list(SCOPE)}
    assert sorted(c.symbol for c in log) == ["AAA", "BBB", "CCC"]
    assert all(c.source == "discovered" and c.change == "add" and c.at == T0 for c in log)
    each = [e for e in events if e.severity == Severity.DEBUG]
    assert sorted(e.symbol for e in each) == ["AAA", "BBB", "CCC"]  # every change is an event with its reason
    aaa = next(e for e in each if e.symbol == "AAA")
    assert aaa.payload["reason"] == changes["AAA"][1] and aaa.payload["change"] == "add"
    assert changes["AAA"][1] in aaa.message
    (summary,) = [e for e in events if e.severity == Severity.INFO]  # one alert for the whole run
    assert summary.payload == {"added": ["AAA", "BBB", "CCC"], "removed": [], "size": 3, "source": "discovered",
                               "reasons": {s: changes[s][1] for s in ("AAA", "BBB", "CCC")}}
    assert entries["AAA"].score == 0.91


async def test_low_scores_and_hard_rejections_are_never_added(db: InMemoryDatabase) -> None:
    changes = await discover(db, manager(top_n=10, min_score=0.5), ranked(("AAA", 0.5), ("BBB", -1), ("CCC", 0.49)))
    assert set(changes) == {"AAA"}


async def test_discovered_symbols_leave_with_the_reason_they_no_longer_qualify(db: InMemoryDatabase) -> None:
    m = manager(top_n=10, min_score=0.5)
    await discover(db, m, ranked(("AAA", 0.9), ("BBB", 0.8), ("CCC", 0.7), ("DDD", 0.6)))
    later = T0 + timedelta(hours=4)
    changes = await discover(db, m, ranked(("DDD", 0.55), ("AAA", 0.3), ("BBB", -1)), later)
    assert await symbols(db) == {"DDD": "discovered"}
    assert changes == {
        "AAA": ("remove", "ensemble score 0.30 fell below 0.45 (the minimum 0.50 less a 0.05 margin against flapping)"),
        "BBB": ("remove", "rejected by the metric picker's hard filter (avg volume 85.2K < 500.0K shares)"),
        "CCC": ("remove", "no longer in the tradable universe (not scored by this discovery run)"),
    }
    async with InMemoryUnitOfWork(db) as uow:
        ddd = await uow.watchlist.get(SCOPE, "DDD")
    assert ddd is not None and ddd.score == 0.55 and ddd.added_at == T0  # re-scored, still added at the first run


async def test_a_listed_symbol_hovering_just_under_the_minimum_stays_instead_of_flapping(
    db: InMemoryDatabase,
) -> None:
    m = manager(min_score=0.5)
    await discover(db, m, ranked(("AAA", 0.52), ("BBB", 0.6)))
    assert await discover(db, m, ranked(("BBB", 0.6), ("AAA", 0.46), ("NEW", 0.49)), T0 + timedelta(hours=4)) == {}
    assert await symbols(db) == {"AAA": "discovered", "BBB": "discovered"}  # NEW is under the bar to enter
    changes = await discover(db, m, ranked(("BBB", 0.6), ("AAA", 0.44)), T0 + timedelta(hours=8))
    assert set(changes) == {"AAA"}
    strict = WatchlistManager(DiscoverySettings(min_score=0.5), scope=SCOPE, keep_margin=0.0)
    assert await discover(db, strict, ranked(("BBB", 0.49)), T0 + timedelta(hours=12)) == {
        "BBB": ("remove", "ensemble score 0.49 fell below the minimum 0.50")}


async def test_the_size_limit_counts_manual_symbols_and_never_evicts_them(db: InMemoryDatabase) -> None:
    m = manager(top_n=10, min_score=0.5, max_watchlist_size=4)
    await add_manual(db, m, "MAN1")
    await add_manual(db, m, "MAN2")
    await discover(db, m, ranked(("AAA", 0.9), ("BBB", 0.8), ("CCC", 0.7)))
    assert await symbols(db) == {"MAN1": "manual", "MAN2": "manual", "AAA": "discovered", "BBB": "discovered"}
    changes = await discover(db, m, ranked(("NEW", 0.95), ("AAA", 0.9), ("BBB", 0.8)), T0 + timedelta(hours=4))
    assert await symbols(db) == {"MAN1": "manual", "MAN2": "manual", "NEW": "discovered", "AAA": "discovered"}
    assert changes["BBB"] == ("remove", "watchlist full (4 symbols): displaced by higher-scoring symbols (score 0.80)")


async def test_manual_symbols_stay_whatever_discovery_thinks_of_them(db: InMemoryDatabase) -> None:
    m = manager(min_score=0.5)
    await add_manual(db, m, "MAN")
    await discover(db, m, ranked(("MAN", -1), ("AAA", 0.9)))
    await discover(db, m, ranked(("AAA", 0.9)), T0 + timedelta(hours=4))
    assert (await symbols(db))["MAN"] == "manual"


async def test_adding_by_hand_makes_room_by_removing_the_weakest_discovered_symbol(db: InMemoryDatabase) -> None:
    m = manager(top_n=10, min_score=0.5, max_watchlist_size=3)
    await discover(db, m, ranked(("AAA", 0.9), ("CCC", 0.7), ("BBB", 0.6)))
    changes = await add_manual(db, m, "msft", T0 + timedelta(minutes=5))
    assert await symbols(db) == {"AAA": "discovered", "CCC": "discovered", "MSFT": "manual"}
    assert changes == {"BBB": ("remove", "manual", "watchlist full (3 symbols): displaced by manual MSFT"),
                       "MSFT": ("add", "manual", "I follow msft")}


async def test_adding_a_discovered_symbol_by_hand_makes_it_manual(db: InMemoryDatabase) -> None:
    m = manager(min_score=0.5)
    await discover(db, m, ranked(("AAA", 0.9)))
    await add_manual(db, m, "AAA")
    await discover(db, m, ranked(("AAA", 0.1)), T0 + timedelta(hours=4))
    assert await symbols(db) == {"AAA": "manual"}
    assert await add_manual(db, m, "AAA") == {}


async def test_a_full_list_of_manual_symbols_refuses_another(db: InMemoryDatabase) -> None:
    m = manager(max_watchlist_size=2)
    await add_manual(db, m, "AAA")
    await add_manual(db, m, "BBB")
    with pytest.raises(ValueError, match="holds 2 manual symbols"):
        await add_manual(db, m, "CCC")
    assert await discover(db, m, ranked(("DDD", 0.99))) == {}


async def test_removal_by_hand_is_recorded_and_discovery_leaves_the_symbol_alone_for_a_week(
    db: InMemoryDatabase,
) -> None:
    m = manager(min_score=0.5)
    await add_manual(db, m, "MAN")
    await discover(db, m, ranked(("AAA", 0.9)))
    async with InMemoryUnitOfWork(db) as uow:
        for symbol in ("MAN", "AAA"):
            change = await m.remove_manual(uow, symbol, reason="earnings next week", as_of=T0 + timedelta(hours=1))
            assert (change.change, change.source, change.reason) == ("remove", "manual", "earnings next week")
        await uow.commit()
    assert await symbols(db) == {}
    assert await discover(db, m, ranked(("AAA", 0.95)), T0 + timedelta(days=3)) == {}
    assert set(await discover(db, m, ranked(("AAA", 0.95)), T0 + timedelta(days=8))) == {"AAA"}


async def test_a_manual_edit_is_one_alerted_summary_with_every_change(db: InMemoryDatabase) -> None:
    m = manager(top_n=10, min_score=0.5, max_watchlist_size=2)
    await discover(db, m, ranked(("AAA", 0.9), ("BBB", 0.6)))
    await add_manual(db, m, "MSFT", T0 + timedelta(minutes=1))
    async with InMemoryUnitOfWork(db) as uow:
        latest = (await uow.events.query(EventQuery(SCOPE, types=(EventType.WATCHLIST_CHANGED,),
                                                    min_severity=Severity.INFO)))[0]
    assert latest.payload["added"] == ["MSFT"] and latest.payload["removed"] == ["BBB"]
    assert latest.payload["reasons"] == {"BBB": "watchlist full (2 symbols): displaced by manual MSFT",
                                         "MSFT": "I follow MSFT"}
    assert latest.payload["source"] == "manual" and latest.payload["size"] == 2


@pytest.mark.parametrize(("symbol", "reason", "message"), [
    ("NOPE", "why", "not on the watchlist"), ("12AB", "why", "not a ticker"), ("AAA", "  ", "give a reason")])
async def test_bad_removals_are_refused(db: InMemoryDatabase, symbol: str, reason: str, message: str) -> None:
    m = manager()
    await add_manual(db, m, "AAA")
    async with InMemoryUnitOfWork(db) as uow:
        with pytest.raises(ValueError, match=message):
            await m.remove_manual(uow, symbol, reason=reason, as_of=T0)


def test_the_plan_is_pure_and_keeps_the_original_added_at() -> None:
    current = [WatchlistEntry("AAA", "discovered", "old", T0, 0.6), WatchlistEntry("MAN", "manual", "mine", T0)]
    plan = plan_discovery_update(current, ranked(("AAA", 0.7), ("BBB", 0.8)), settings=DiscoverySettings(),
                                 as_of=T0 + timedelta(days=1))
    assert [(e.symbol, e.added_at) for e in plan.refreshed] == [("AAA", T0)]
    assert [(e.symbol, e.added_at) for e in plan.added] == [("BBB", T0 + timedelta(days=1))]
    assert plan.removed == []


async def test_the_cycle_universe_is_the_watchlist_or_the_fallback_while_it_is_empty(db: InMemoryDatabase) -> None:
    async def fallback(_uow: UnitOfWork, _at: datetime) -> list[str]:
        return ["SPARE"]

    universe = watchlist_universe(SCOPE, fallback)
    async with InMemoryUnitOfWork(db) as uow:
        assert await universe(uow, T0) == ["SPARE"]
    await discover(db, manager(min_score=0.5), ranked(("BBB", 0.8), ("AAA", 0.9)))
    async with InMemoryUnitOfWork(db) as uow:
        assert await universe(uow, T0) == ["AAA", "BBB"]
        assert await watchlist_universe("other")(uow, T0) == []
