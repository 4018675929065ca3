"""The chat's event search on fakes: which events are indexed and with what text, indexing that resumes without
losing or repeating an event, search that catches up first and cites what it found, and the post-cycle hook."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from dependency_injector import providers
from structlog.testing import capture_logs

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.event_memory import InMemoryEventMemory
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.chat.event_index import (
    MAX_TEXT_CHARS,
    EventIndexer,
    EventSearch,
    citations,
    event_document,
    index_new_events,
)
from domain.chat import EventDocument, EventHit
from domain.errors import EmptyTextError
from domain.event_factories import cycle_started, decision_made, order_filled, proposal_rejected
from domain.events import Event, EventType, Severity
from domain.models.trading import Fill, Side
from domain.ports.uow import UnitOfWork
from domain.stage_events import recalled
from domain.verdict import Verdict
from entrypoints.container import build_container, close_container
from entrypoints.settings import load_settings

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
CALENDAR = NyseCalendar()
SCOPE = "live"
NVDA_REASONING = "NVDA broke out above its 50-day high on twice the average volume; momentum is strong"


def decision(symbol: str, action: str, reasoning: str, **extra: Any) -> dict[str, Any]:
    """A decision payload shaped like `ProposalOutcome.to_json`."""
    return {"symbol": symbol, "signal": {"symbol": symbol, "action": action, "confidence": 0.8, "reasoning": reasoning},
            "risk": {"symbol": symbol, "position_pct": 0.05, "stop_loss_pct": 0.04, "take_profit_pct": None,
                     "reasoning": "volatility is moderate; a 4% stop sits below the breakout"},
            "validator_rules": {"approved": True, "confidence": 0.8, "warnings": ["earnings in 6 days"],
                                "loser_share": 0.2, "rejected_reason": None},
            "validator_agent": {"symbol": symbol, "approve": True, "confidence_adjustment": 0.0,
                                "warnings": ["semiconductors are extended"], "reasoning": "approve, size is small"},
            "limits": None,
            "memory_evidence": [{"text": "Bought AMD on a failed breakout and lost 7%", "outcome": "LOSS"}],
            "stop_exit": False, "final": action, "reason": "approved", **extra}


def nvda_buy(at: datetime = T0, cycle_id: str = "c-1") -> Event:
    return decision_made(at=at, scope=SCOPE, cycle_id=cycle_id, symbol="NVDA", verdict=Verdict.BUY,
                         reasoning=NVDA_REASONING, decision=decision("NVDA", "BUY", NVDA_REASONING))


def tsla_rejected(at: datetime = T0, cycle_id: str = "c-1") -> Event:
    return proposal_rejected(at=at, scope=SCOPE, cycle_id=cycle_id, symbol="TSLA", action="BUY",
                             reason="max_positions: already holding 5 positions",
                             decision=decision("TSLA", "BUY", "TSLA gapped up on delivery numbers"),
                             limit="max_positions")


def fill(symbol: str, at: datetime = T0) -> Event:
    from decimal import Decimal

    f = Fill(client_order_id=f"q-{symbol}", symbol=symbol, side=Side.BUY, qty=Decimal("2"),
             price=Decimal("850.25"), fee=Decimal("0"), at=at)
    return order_filled(fill=f, scope=SCOPE, cycle_id="c-1")


def with_id(event: Event, event_id: int = 7) -> Event:
    from dataclasses import replace

    return replace(event, id=event_id)


class Log:
    """An in-memory database, its event log and an event memory that checks ids against it."""

    def __init__(self) -> None:
        self.db = InMemoryDatabase(HashingEmbedder())
        self.memory = InMemoryEventMemory(HashingEmbedder(), events=self.db.events)

    def uow(self) -> UnitOfWork:
        return InMemoryUnitOfWork(self.db)

    async def write(self, *events: Event) -> None:
        async with self.uow() as uow:
            await uow.events.add(list(events))
            await uow.commit()

    async def stored_ids(self, scope: str = SCOPE) -> list[int]:
        hits = await self.memory.search("anything at all", scope=scope, k=10_000, as_of=T0 + timedelta(days=3650))
        return sorted(h.document.event_id for h in hits)


# ---------------------------------------------------------------- what is indexed


def test_a_decision_is_indexed_with_its_message_and_the_reasoning_of_every_agent() -> None:
    doc = event_document(with_id(nvda_buy()))
    assert doc is not None
    assert (doc.event_id, doc.scope, doc.at, doc.type, doc.cycle_id, doc.symbol) == (
        7, SCOPE, T0, "signal", "c-1", "NVDA")
    assert doc.text.startswith(f"decision to buy NVDA: NVDA: BUY — {NVDA_REASONING}")
    assert "risk reasoning: volatility is moderate; a 4% stop sits below the breakout" in doc.text
    assert "validator rules warnings: earnings in 6 days" in doc.text
    assert "validator agent warnings: semiconductors are extended" in doc.text
    assert "validator agent reasoning: approve, size is small" in doc.text
    assert doc.text.count(NVDA_REASONING) == 1  # the signal's reasoning is already in the message
    assert "AMD" not in doc.text  # recalled trades are not what this decision is about


def test_a_rejection_says_which_limit_refused_it() -> None:
    doc = event_document(with_id(tsla_rejected()))
    assert doc is not None and doc.type == "proposal_rejected"
    assert "TSLA BUY rejected: max_positions: already holding 5 positions" in doc.text
    assert "signal reasoning: TSLA gapped up on delivery numbers" in doc.text


def test_orders_and_fills_are_indexed() -> None:
    doc = event_document(with_id(fill("NVDA")))
    assert doc is not None and doc.text == "order filled NVDA: filled buy 2 NVDA @ 850.25 (fee 0)"


@pytest.mark.parametrize("event", [
    cycle_started(at=T0, scope=SCOPE, cycle_id="c-1", kind="scheduled"),
    recalled(at=T0, scope=SCOPE, cycle_id="c-1", conditions=3, trades={"NVDA": 2}),
    Event(EventType.SNAPSHOT, T0, "snapshot of 20 symbols", Severity.DEBUG, "c-1"),
    Event(EventType.LLM_CALL, T0, "signal agent: offline/offline, 0+0 tokens", Severity.DEBUG, "c-1"),
], ids=["cycle_started", "recall", "snapshot", "llm_call"])
def test_bookkeeping_events_are_not_indexed(event: Event) -> None:
    assert event_document(with_id(event)) is None


def test_an_event_without_id_or_without_words_is_not_indexed() -> None:
    assert event_document(nvda_buy()) is None
    assert event_document(with_id(Event(EventType.TRADING_PAUSED, T0, "   "))) is None


def test_a_long_reasoning_is_trimmed() -> None:
    long = "the trend is intact and volume confirms it " * 100
    doc = event_document(with_id(decision_made(at=T0, scope=SCOPE, cycle_id="c", symbol="MSFT", verdict=Verdict.BUY,
                                               reasoning="see risk",
                                               decision={"final": "BUY", "risk": {"reasoning": long}})))
    assert doc is not None
    assert MAX_TEXT_CHARS - 5 <= len(doc.text) <= MAX_TEXT_CHARS and doc.text.endswith("…")
    assert doc.text.startswith("decision to buy MSFT: MSFT: BUY — see risk\nrisk reasoning: the trend is intact")


# ---------------------------------------------------------------- indexing


async def test_only_the_events_worth_finding_are_indexed_and_a_second_run_stores_nothing() -> None:
    log = Log()
    await log.write(cycle_started(at=T0, scope=SCOPE, cycle_id="c-1", kind="scheduled"), nvda_buy(), tsla_rejected(),
                    fill("NVDA"))
    assert await index_new_events(log.uow, log.memory, SCOPE) == 3
    assert await log.stored_ids() == [2, 3, 4]
    assert await index_new_events(log.uow, log.memory, SCOPE) == 0
    await log.write(fill("AMD"))
    assert await index_new_events(log.uow, log.memory, SCOPE) == 1
    assert await log.stored_ids() == [2, 3, 4, 5]


async def test_events_are_read_in_batches_with_progress_and_other_scopes_are_left_alone() -> None:
    log = Log()
    await log.write(*[fill(s) for s in ("A", "B", "C", "D", "E")])
    from dataclasses import replace

    await log.write(replace(fill("OTHER"), scope="paper-2"))
    seen: list[tuple[int, int]] = []
    assert await index_new_events(log.uow, log.memory, SCOPE, batch=2, progress=lambda r, s: seen.append((r, s))) == 5
    assert seen == [(2, 2), (4, 4), (5, 5)]
    assert await log.stored_ids("paper-2") == []
    assert await index_new_events(log.uow, log.memory, "paper-2") == 1


class FailingOnce(InMemoryEventMemory):
    """Fails the `fail_on`-th call of `add` (an embedder or database outage mid-run)."""

    def __init__(self, log: Log, fail_on: int) -> None:
        super().__init__(HashingEmbedder(), events=log.db.events)
        self.calls, self.fail_on = 0, fail_on

    async def add(self, documents: Sequence[EventDocument]) -> int:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("embedding server went away")
        return await super().add(documents)


async def test_an_interrupted_run_resumes_where_it_stopped_and_stores_nothing_twice() -> None:
    log = Log()
    await log.write(*[fill(s) for s in ("A", "B", "C", "D", "E", "F")])
    memory = FailingOnce(log, fail_on=2)
    with pytest.raises(RuntimeError, match="went away"):
        await index_new_events(log.uow, memory, SCOPE, batch=2)
    assert await memory.last_event_id(SCOPE) == 2
    assert await index_new_events(log.uow, memory, SCOPE, batch=2) == 4
    hits = await memory.search("filled", scope=SCOPE, k=100, as_of=T0)
    assert sorted(h.document.event_id for h in hits) == [1, 2, 3, 4, 5, 6]


async def test_an_event_committed_after_a_newer_one_was_indexed_is_still_indexed() -> None:
    """Ids are taken at insert, not at commit: the newest event can be indexed before an older id commits."""
    log = Log()
    await log.write(fill("A"), fill("B"), fill("C"))
    (newest,) = [d for d in map(event_document, await _all(log)) if d is not None and d.event_id == 3]
    assert await log.memory.add([newest]) == 1  # as if ids 1 and 2 had committed after 3 was indexed
    assert await index_new_events(log.uow, log.memory, SCOPE, lookback=0) == 0  # without the window: missed
    assert await index_new_events(log.uow, log.memory, SCOPE) == 2  # the window re-reads them
    assert await log.stored_ids() == [1, 2, 3]


async def test_from_start_fills_a_gap_older_than_the_window() -> None:
    log = Log()
    await log.write(fill("A"), fill("B"), fill("C"), fill("D"))
    later = [d for d in map(event_document, await _all(log)) if d is not None and d.event_id >= 3]
    await log.memory.add(later)
    assert await index_new_events(log.uow, log.memory, SCOPE, lookback=1) == 0
    assert await index_new_events(log.uow, log.memory, SCOPE, from_start=True) == 2
    assert await log.stored_ids() == [1, 2, 3, 4]


async def test_the_hook_takes_a_long_backlog_in_parts_run_by_run() -> None:
    log = Log()
    await log.write(*[fill(s) for s in ("A", "B", "C", "D", "E")])
    indexer = EventIndexer(log.memory, log.uow, SCOPE, batch=2, max_read=2)
    assert [await indexer.catch_up() for _ in range(4)] == [2, 2, 1, 0]
    assert await log.stored_ids() == [1, 2, 3, 4, 5]


async def _all(log: Log) -> list[Event]:
    async with log.uow() as uow:
        return await uow.events.after(SCOPE, 0, limit=1000)


async def test_bad_arguments_are_refused() -> None:
    log = Log()
    with pytest.raises(ValueError, match="batch"):
        await index_new_events(log.uow, log.memory, SCOPE, batch=0)
    with pytest.raises(ValueError, match="lookback"):
        await index_new_events(log.uow, log.memory, SCOPE, lookback=-1)
    with pytest.raises(ValueError, match="max_read"):
        await index_new_events(log.uow, log.memory, SCOPE, max_read=0)


# ---------------------------------------------------------------- search


async def test_search_catches_up_first_and_cites_time_and_cycle() -> None:
    log = Log()
    await log.write(nvda_buy(cycle_id="c-7"), tsla_rejected(), fill("AMD"))
    search = EventSearch(log.memory, log.uow, SCOPE)
    hits = await search.search("why did we buy NVDA breakout", as_of=T0 + timedelta(hours=1), k=2)
    assert hits[0].document.symbol == "NVDA" and hits[0].document.type == "signal"
    assert len(hits) == 2 and hits[0].distance <= hits[1].distance
    (first, _) = citations(hits)
    assert (first.event_id, first.at, first.cycle_id, first.type, first.symbol) == (1, T0, "c-7", "signal", "NVDA")


async def test_search_sees_nothing_after_as_of_nor_before_since_and_filters_by_symbol() -> None:
    log = Log()
    await log.write(nvda_buy(at=T0), nvda_buy(at=T0 + timedelta(days=2)), fill("NVDA", at=T0 + timedelta(days=1)),
                    fill("AMD", at=T0 + timedelta(days=1)))
    search = EventSearch(log.memory, log.uow, SCOPE)
    as_of_day_one = await search.search("NVDA", as_of=T0 + timedelta(days=1), k=10)
    assert sorted(h.document.event_id for h in as_of_day_one) == [1, 3, 4]
    later = await search.search("NVDA", as_of=T0 + timedelta(days=5), since=T0 + timedelta(hours=1), k=10)
    assert sorted(h.document.event_id for h in later) == [2, 3, 4]
    only_nvda = await search.search("bought", as_of=T0 + timedelta(days=5), symbol=" nvda", k=10)
    assert sorted(h.document.event_id for h in only_nvda) == [1, 2, 3]


async def test_a_failed_catch_up_is_logged_and_the_search_answers_from_what_is_indexed() -> None:
    log = Log()
    await log.write(fill("NVDA"))
    memory = FailingOnce(log, fail_on=2)
    search = EventSearch(memory, log.uow, SCOPE)
    assert len(await search.search("NVDA", as_of=T0, k=5)) == 1
    await log.write(fill("AMD"))
    with capture_logs() as logs:
        hits = await search.search("AMD", as_of=T0, k=5)
    assert [h.document.event_id for h in hits] == [1]
    assert [e["event"] for e in logs] == ["event_index_failed"]
    assert [h.document.event_id for h in await search.search("AMD", as_of=T0, k=1)] == [2]


async def test_an_empty_question_is_refused() -> None:
    log = Log()
    with pytest.raises(EmptyTextError):
        await EventSearch(log.memory, log.uow, SCOPE).search("  ", as_of=T0)


def test_citations_keep_the_order_and_name_each_event_once() -> None:
    a = EventDocument(3, SCOPE, T0, "signal", "c-1", "NVDA", "x")
    b = EventDocument(9, SCOPE, T0 + timedelta(hours=1), "order_filled", None, None, "y")
    cited = citations([EventHit(b, 0.1), EventHit(a, 0.2), EventHit(b, 0.3)])
    assert [(c.event_id, c.cycle_id, c.type) for c in cited] == [(9, None, "order_filled"), (3, "c-1", "signal")]


# ---------------------------------------------------------------- after each cycle


def small_container(**settings: Any) -> Any:
    return build_container(load_settings(env="test", _env_file=None, **settings), "test", start=date(2024, 3, 1),
                           end=date(2024, 3, 29), seed=5)


async def test_the_events_of_a_cycle_are_indexed_when_it_has_run() -> None:
    container = small_container()
    try:
        result = await container.runner().run_cycle(as_of=CALENDAR.session_open(date(2024, 3, 4)))
        hits = await container.event_memory().search("buy", scope=container.scope(), k=50,
                                                     as_of=CALENDAR.session_open(date(2024, 3, 5)))
    finally:
        await close_container(container)
    assert result.status == "completed" and result.orders > 0
    assert {h.document.cycle_id for h in hits} == {result.cycle_id}
    assert {"signal", "order_submitted"} <= {h.document.type for h in hits}


async def test_a_failing_index_never_fails_the_cycle() -> None:
    container = small_container()
    log = Log()
    container.event_memory.override(providers.Object(FailingOnce(log, fail_on=1)))
    try:
        with capture_logs() as logs:
            result = await container.runner().run_cycle(as_of=CALENDAR.session_open(date(2024, 3, 4)))
    finally:
        await close_container(container)
    assert result.status == "completed"
    assert "event_index_failed" in [e["event"] for e in logs]


def test_indexing_after_cycles_is_off_in_backtests_and_when_the_setting_says_so() -> None:
    assert isinstance(small_container().event_indexer(), EventIndexer)
    assert small_container(chat={"index_events": False}).event_indexer() is None
    backtest = build_container(load_settings(env="test", _env_file=None), "backtest", storage="memory")
    assert backtest.event_indexer() is None
    assert backtest.runner().event_index is None
