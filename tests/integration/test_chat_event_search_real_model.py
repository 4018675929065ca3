"""The chat's event search with the real embedding model on Postgres: questions in plain words find the event that
answers them among a week of decisions, orders and switches, and the answer cites its time and cycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.postgres.event_memory import PgEventMemory
from adapters.postgres.uow import PgUnitOfWork
from application.chat.event_index import EventSearch, citations
from domain.event_factories import decision_made, order_filled, proposal_rejected, stop_triggered
from domain.events import Event
from domain.models.trading import Fill, Side
from domain.system_events import trading_switched
from domain.verdict import Verdict

pytestmark = [pytest.mark.slow, pytest.mark.integration]

MONDAY = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def decision(scope: str, day: int, symbol: str, verdict: Verdict, reasoning: str, *, risk: str = "",
             warnings: tuple[str, ...] = ()) -> Event:
    payload: dict[str, Any] = {
        "symbol": symbol, "signal": {"symbol": symbol, "action": verdict.value, "confidence": 0.7,
                                     "reasoning": reasoning},
        "risk": {"symbol": symbol, "position_pct": 0.05, "stop_loss_pct": 0.05, "reasoning": risk} if risk else None,
        "validator_rules": {"approved": True, "confidence": 0.7, "warnings": list(warnings), "loser_share": 0.1,
                            "rejected_reason": None},
        "final": verdict.value, "reason": "approved" if verdict is not Verdict.HOLD else "hold"}
    return decision_made(at=MONDAY + day * DAY, scope=scope, cycle_id=f"cycle-{day}-{symbol}", symbol=symbol,
                         verdict=verdict, reasoning=reasoning, decision=payload)


def fill(scope: str, day: int, symbol: str, side: Side, price: str) -> Fill:
    return Fill(client_order_id=f"q-{day}-{symbol}", symbol=symbol, side=side, qty=Decimal("3"), price=Decimal(price),
                fee=Decimal("0"), at=MONDAY + day * DAY + timedelta(minutes=1))


def week(scope: str) -> list[Event]:
    return [
        decision(scope, 0, "NVDA", Verdict.HOLD, "NVDA is range-bound under resistance; no clear trend yet"),
        decision(scope, 0, "AAPL", Verdict.HOLD, "Apple is drifting sideways with low volume"),
        decision(scope, 1, "NVDA", Verdict.BUY, "NVDA broke out to a new 52-week high on heavy volume after strong "
                 "data-center demand; momentum and trend both point up", risk="moderate volatility, 5% stop below "
                 "the breakout level", warnings=("semiconductors are extended",)),
        order_filled(fill=fill(scope, 1, "NVDA", Side.BUY, "875.40"), scope=scope, cycle_id="cycle-1-NVDA"),
        decision(scope, 1, "XOM", Verdict.SELL, "Exxon lost its 50-day average as oil prices fell; trend exit"),
        proposal_rejected(at=MONDAY + 2 * DAY, scope=scope, cycle_id="cycle-2-TSLA", symbol="TSLA", action="BUY",
                          reason="max_positions: already holding 5 positions",
                          decision={"signal": {"reasoning": "Tesla gapped up on delivery numbers"}},
                          limit="max_positions"),
        stop_triggered(fill=fill(scope, 3, "AMD", Side.SELL, "160.10"), scope=scope, cycle_id=None),
        trading_switched(at=MONDAY + 3 * DAY, scope=scope, paused=True, by="alice",
                         reason="going on holiday, keep only the stops"),
        decision(scope, 4, "NVDA", Verdict.HOLD, "NVDA consolidating after its run; holding the position"),
        decision(scope, 4, "MSFT", Verdict.BUY, "Microsoft beat earnings and guided higher on cloud growth",
                 risk="low volatility, 4% stop"),
    ]


async def test_plain_questions_find_the_events_that_answer_them(pg_sessionmaker: Any, real_embedder: Any,
                                                                scope: str) -> None:
    async with PgUnitOfWork(pg_sessionmaker, real_embedder) as uow:
        await uow.events.add(week(scope))
        await uow.commit()
    search = EventSearch(PgEventMemory(pg_sessionmaker, real_embedder), lambda: PgUnitOfWork(pg_sessionmaker,
                                                                                           real_embedder), scope)
    as_of = MONDAY + 7 * DAY

    async def top(question: str, **kw: Any) -> Any:
        return (await search.search(question, as_of=as_of, k=3, **kw))[0].document

    why_nvda = await search.search("why did we buy NVDA?", as_of=as_of, k=3)
    first = why_nvda[0].document
    assert (first.type, first.symbol, first.cycle_id) == ("signal", "NVDA", "cycle-1-NVDA")
    assert "broke out to a new 52-week high" in first.text
    cited = citations(why_nvda)[0]
    assert (cited.at, cited.cycle_id) == (MONDAY + DAY, "cycle-1-NVDA")

    assert (await top("why wasn't the Tesla trade taken?")).type == "proposal_rejected"
    assert (await top("who paused trading and why?")).type == "trading_paused"
    amd = await top("which position was stopped out?")
    assert (amd.type, amd.symbol) == ("stop_triggered", "AMD")
    assert (await top("why did we sell Exxon")).symbol == "XOM"
    apple = await top("why didn't we buy Apple?")
    assert (apple.symbol, apple.cycle_id) == ("AAPL", "cycle-0-AAPL")

    before = await search.search("why did we buy NVDA?", as_of=MONDAY + DAY - timedelta(minutes=1), k=3)
    assert all(h.document.cycle_id != "cycle-1-NVDA" for h in before)  # not known yet
