"""Pattern analysis on a constructed history with known answers: concerns that preceded losses, win rate by
confidence, holding period and exit kind; and plain "too few to say" on little data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.chat.patterns import analyse_patterns, concern_kind, decision_concerns, trade_outcomes
from domain.event_factories import decision_made
from domain.events import Event
from domain.models.trading import Fill, Side
from domain.ports.repositories import FillRecord
from domain.verdict import Verdict

SCOPE = "live"
START = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


def entry(symbol: str, cid: str, at: datetime, confidence: float, warnings: list[str],
          agent_warnings: list[str] | None = None, with_order: bool = True) -> Event:
    decision: dict[str, Any] = {
        "symbol": symbol, "signal": {"symbol": symbol, "action": "BUY", "confidence": confidence, "reasoning": "r"},
        "validator_rules": {"approved": True, "confidence": confidence, "warnings": warnings},
        "validator_agent": None if agent_warnings is None else {
            "approve": True, "confidence_adjustment": -0.1, "warnings": agent_warnings, "reasoning": "x"},
        "limits": {"order": {"client_order_id": cid, "side": "buy"}} if with_order else None, "final": "BUY"}
    return decision_made(at=at, scope=SCOPE, cycle_id=f"c-{cid}", symbol=symbol, verdict=Verdict.BUY, reasoning="r",
                         decision=decision)


def trip(symbol: str, cid: str, opened: datetime, days: float, ret: str, exit_reason: str) -> list[Fill]:
    price = Decimal(100)
    out = price * (1 + Decimal(ret))
    return [Fill(cid, symbol, Side.BUY, Decimal(2), price, Decimal(0), opened),
            Fill(f"x-{cid}", symbol, Side.SELL, Decimal(2), out, Decimal(0), opened + timedelta(days=days),
                 reason=exit_reason)]


def history() -> tuple[list[Fill], list[Event]]:
    """12 round trips. Six after a "falling knife" warning at confidence 0.55: five stopped out within a day at
    -5 %, one won. Six without concern at confidence 0.85: five won over five days on a signal exit (+4 %), one
    stopped out at -5 %. One of the winners ended at its take profit."""
    fills: list[Fill] = []
    events: list[Event] = []
    for i in range(12):
        sym, cid, at = f"S{i:02d}", f"e-{i}", START + timedelta(days=7 * i)
        knife = i < 6
        won = i == 5 if knife else i != 11
        events.append(entry(sym, cid, at - timedelta(minutes=5), 0.55 if knife else 0.85,
                            [f"falling knife: {sym} at 90.00 is below its 50-day average 95.00 and -6.0% over 20 days"]
                            if knife else []))
        exit_reason = "take profit leg" if i == 6 else ("signal: trend broke" if won else "stop loss leg")
        fills += trip(sym, cid, at, 5 if won else 1, "0.04" if won else "-0.05", exit_reason)
    return fills, events


async def test_the_constructed_history_gives_the_known_answers() -> None:
    db = InMemoryDatabase(HashingEmbedder())
    fills, events = history()
    async with InMemoryUnitOfWork(db) as uow:
        await uow.fills.add([FillRecord(f, SCOPE, None) for f in fills])
        await uow.events.add(events)
        await uow.commit()
    report = await analyse_patterns(lambda: InMemoryUnitOfWork(db), SCOPE, kind="all",
                                    as_of=START + timedelta(days=200))
    assert (report.trades, report.wins, report.unmatched) == (12, 6, 0)
    sections = {s.kind: s for s in report.sections}

    concerns = {g.label: g for g in sections["validator_concerns"].groups}
    assert (concerns["falling knife"].trades, concerns["falling knife"].wins) == (6, 1)
    assert (concerns["no concern raised"].trades, concerns["no concern raised"].wins) == (6, 5)
    assert sections["validator_concerns"].finding.startswith("before losses: falling knife (5 of 6 lost)")

    confidence = {g.label: g for g in sections["confidence"].groups}
    assert (confidence["under 0.60"].trades, confidence["under 0.60"].wins) == (6, 1)
    assert (confidence["0.80 and over"].trades, confidence["0.80 and over"].wins) == (6, 5)
    assert confidence["0.60 to 0.70"].trades == 0
    assert sections["confidence"].finding == ("best 0.80 and over: 5 of 6 won (83%), average +2.5%; "
                                              "worst under 0.60: 1 of 6 won (17%), average -3.5%")

    holding = {g.label: g for g in sections["holding_period"].groups}
    assert (holding["1 day to 3 days"].trades, holding["1 day to 3 days"].wins) == (6, 0)
    assert (holding["3 days to 10 days"].trades, holding["3 days to 10 days"].wins) == (6, 6)
    assert "winners held 5.0 days on average, others 1.0" in sections["holding_period"].finding

    exits = {g.label: g for g in sections["exit_kind"].groups}
    assert (exits["stop"].trades, exits["stop"].wins) == (6, 0)
    assert (exits["signal"].trades, exits["signal"].wins) == (5, 5)
    assert (exits["take profit"].trades, exits["take profit"].wins) == (1, 1) and not exits["take profit"].enough
    assert exits["stop"].pnl == Decimal("-60.00")
    assert report.text.startswith("12 round trips, 6 won (50%)")


async def test_three_round_trips_are_too_few_to_say_anything() -> None:
    fills, events = history()
    db = InMemoryDatabase(HashingEmbedder())
    async with InMemoryUnitOfWork(db) as uow:
        await uow.fills.add([FillRecord(f, SCOPE, None) for f in fills[:6]])
        await uow.events.add(events[:3])
        await uow.commit()
    report = await analyse_patterns(lambda: InMemoryUnitOfWork(db), SCOPE, kind="confidence",
                                    as_of=START + timedelta(days=200))
    assert report.trades == 3 and [s.kind for s in report.sections] == ["confidence"]
    assert report.text.splitlines() == [
        "3 round trips: too few to say (at least 10 are needed before comparing anything)",
        "- Win rate by confidence: too few round trips to say"]


async def test_nothing_after_as_of_is_counted() -> None:
    fills, events = history()
    db = InMemoryDatabase(HashingEmbedder())
    async with InMemoryUnitOfWork(db) as uow:
        await uow.fills.add([FillRecord(f, SCOPE, None) for f in fills])
        await uow.events.add(events)
        await uow.commit()
    report = await analyse_patterns(lambda: InMemoryUnitOfWork(db), SCOPE, kind="exit_kind",
                                    as_of=START + timedelta(days=7 * 3 + 2))
    assert report.trades == 4


def test_an_entry_is_found_by_its_order_else_by_the_symbols_latest_buy_decision() -> None:
    fills = trip("AAA", "e-1", START, 2, "0.02", "signal") + trip("BBB", "e-2", START, 2, "-0.02", "stop")
    fills += trip("CCC", "e-3", START, 2, "0.01", "signal")
    events = [entry("AAA", "other-id", START - timedelta(days=1), 0.9, []),
              entry("AAA", "e-1", START - timedelta(minutes=1), 0.7, ["high volatility: AAA 20-day 80% > 60%"]),
              entry("BBB", "unused", START - timedelta(hours=2), 0.65, [], agent_warnings=["Earnings in 2 days"],
                    with_order=False),
              entry("CCC", "old", START - timedelta(days=8), 0.95, [], with_order=False)]
    by_symbol = {t.symbol: t for t in trade_outcomes(fills, events)}
    assert (by_symbol["AAA"].confidence, by_symbol["AAA"].concerns) == (0.7, ("high volatility",))
    assert by_symbol["BBB"].matched and by_symbol["BBB"].concerns == (
        "agent: earnings in days", "agent lowered the confidence")
    assert by_symbol["BBB"].exit_kind == "stop" and by_symbol["AAA"].exit_kind == "signal"
    assert not by_symbol["CCC"].matched and by_symbol["CCC"].confidence is None


@pytest.mark.parametrize(("text", "kind"), [
    ("falling knife: X at 9.00 is below its 50-day average 10.00 and -3.0% over 20 days", "falling knife"),
    ("memory: 3 of 5 similar past trades (distance <= 0.35) lost (60%); closest ...", "memory"),
    ("Position size is large relative to average volume for this name", "position size is large relative"),
    ("", "unspecified"),
])
def test_concern_kinds_drop_the_figures(text: str, kind: str) -> None:
    assert concern_kind(text) == kind


def test_decision_concerns_tolerate_missing_parts() -> None:
    assert decision_concerns({}) == ()
    assert decision_concerns({"validator_rules": None, "validator_agent": {"warnings": None}}) == ()
