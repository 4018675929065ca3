"""A small world for the chat's tool tests: in-memory unit of work and broker, a recording cycle queue and eval
queue, a fake SQL reader, the real event search on the in-memory event memory, and the tools over all of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from adapters.calendar import NyseCalendar
from adapters.inmemory.broker import InMemoryBroker
from adapters.inmemory.clock import SimClock
from adapters.inmemory.event_memory import InMemoryEventMemory
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.chat.control_actions import ControlActions
from application.chat.event_index import EventSearch
from application.chat.tools import ChatTools
from application.cycle_requests import CycleRequestService
from application.queries import ReadModels
from domain.chat import SqlResult
from domain.errors import QueryFailedError, UnsafeQueryError
from domain.events import Event
from domain.models.bar import Bar
from domain.models.market import Asset, BarSeries, Quote
from domain.models.trading import OrderRequest, Side
from domain.ports.queue import CycleJob
from domain.risk.config import FeeSettings

NY = ZoneInfo("America/New_York")
CAL = NyseCalendar()
SCOPE = "live"
MON, TUE = date(2024, 7, 1), date(2024, 7, 2)
D = Decimal


class RecordingQueue:
    """A cycle queue that keeps the jobs it is given."""

    def __init__(self) -> None:
        self.jobs: list[CycleJob] = []

    async def enqueue(self, job: CycleJob) -> bool:
        if any(j.cycle_id == job.cycle_id for j in self.jobs):
            return False
        self.jobs.append(job)
        return True


class RecordingEvals:
    """An eval queue that keeps the times it was asked for."""

    def __init__(self) -> None:
        self.asked: list[datetime] = []

    async def request_evals(self, requested_at: datetime) -> str:
        self.asked.append(requested_at)
        return f"evals-{requested_at:%Y%m%d%H%M}"


class FakeSql:
    """Answers any SELECT with the row it was given; refuses "drop", fails on "boom"."""

    def views(self) -> dict[str, str]:
        return {"trades": "one row per fill: at, symbol, side, qty, price, fee",
                "decisions": "one row per decision: at, symbol, verdict, confidence, reasoning"}

    async def run(self, sql: str) -> SqlResult:
        if "drop" in sql.lower():
            raise UnsafeQueryError("refused: only SELECT statements are allowed")
        if "boom" in sql.lower():
            raise QueryFailedError("the query ran over the 3000 ms statement timeout")
        return SqlResult(sql + " LIMIT 200", ("symbol", "n"), (("AAA", 3), ("BBB", 1)))


class SpyMarket:
    """Daily SPY bars with the given closes (a bar is known once its session closed) and an optional quote."""

    def __init__(self, closes: dict[date, float], quote: float | None = None) -> None:
        self.closes, self.quote = closes, quote

    async def assets(self) -> list[Asset]:
        return []

    async def daily_bars(self, symbols: Sequence[str], *, as_of: datetime, lookback: int) -> dict[str, BarSeries]:
        days = sorted(d for d in self.closes if CAL.session_close(d) <= as_of)[-lookback:]
        if "SPY" not in symbols or not days:
            return {}
        c = np.array([self.closes[d] for d in days], dtype=np.float64)
        return {"SPY": BarSeries("SPY", tuple(days), c, c, c, c, np.ones_like(c))}

    async def minute_bars(self, symbols: Sequence[str], *, start: datetime, end: datetime) -> dict[str, list[Bar]]:
        return {}

    async def latest_quotes(self, symbols: Sequence[str], *, as_of: datetime) -> dict[str, Quote]:
        if self.quote is None or "SPY" not in symbols:
            return {}
        return {"SPY": Quote("SPY", self.quote, self.quote, self.quote, as_of)}


@dataclass
class ChatWorld:
    """The tools and everything under them."""

    db: InMemoryDatabase
    clock: SimClock
    broker: InMemoryBroker
    queue: RecordingQueue
    evals: RecordingEvals | None
    read_models: ReadModels
    controls: ControlActions
    tools: ChatTools
    market: Any = None
    notes: dict[str, Any] = field(default_factory=dict)

    def uow(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.db)

    async def add_events(self, *events: Event) -> None:
        async with self.uow() as uow:
            await uow.events.add(list(events))
            await uow.commit()

    async def hold(self, symbol: str = "AAA", qty: str = "5", stop: str = "95.00") -> datetime:
        """Buy `qty` whole shares at 100 on TUE with a protective stop leg; returns a time after the fill."""
        self.clock.set(CAL.session_close(MON))
        self.broker.on_session_close(MON, {symbol: (D(100), D(101), D(99), D(100))})
        self.clock.set(CAL.session_open(TUE))
        self.broker.on_session_open(TUE, {symbol: D(100)})
        await self.broker.submit(OrderRequest("q-entry-1", symbol, Side.BUY, D(qty), stop_price=D(stop)))
        at = CAL.session_open(TUE) + timedelta(minutes=1)
        self.clock.set(at)
        self.broker.on_prices(at, {symbol: D(100)})
        return at + timedelta(minutes=1)


def make_chat_world(*, evals: bool = True, cycles: bool = True, market: Any = None, confirm_s: int = 60) -> ChatWorld:
    """A fresh world on Monday 1 July 2024 before the open, $10,000 in cash."""
    db = InMemoryDatabase(HashingEmbedder())
    clock = SimClock(datetime(2024, 7, 1, 8, tzinfo=NY))
    broker = InMemoryBroker(D(10_000), FeeSettings(), clock, CAL)

    def factory() -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(db)

    queue, recorder = RecordingQueue(), RecordingEvals() if evals else None
    read_models = ReadModels(factory, SCOPE, broker, CAL, market)
    cycle_requests = CycleRequestService(factory, queue, scope=SCOPE, tz=CAL.tz) if cycles else None
    controls = ControlActions(factory, SCOPE, broker=broker, calendar=CAL, cycles=cycle_requests, evals=recorder,
                              confirm_timeout=timedelta(seconds=confirm_s), lock_wait_seconds=0.0)
    search = EventSearch(InMemoryEventMemory(HashingEmbedder(), events=db.events), factory, SCOPE)
    tools = ChatTools(read_models, FakeSql(), search, controls)
    return ChatWorld(db, clock, broker, queue, recorder, read_models, controls, tools, market)
