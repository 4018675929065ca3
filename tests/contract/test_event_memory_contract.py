"""Contract of the event search store (`EventMemory`), run against the in-memory fake and `PgEventMemory`, and of
`EventRepository.after` (the read indexing resumes with).

Each test writes its events to the event log of its backend, in a scope of its own (the Postgres database is shared
by the session and event ids are global there, so tests use the ids the log gave).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from adapters.inmemory.event_memory import InMemoryEventMemory
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from domain.chat import EventDocument
from domain.errors import DimensionMismatchError, EmptyTextError
from domain.events import Event, EventType
from domain.ports.chat import EventMemory
from domain.ports.uow import UnitOfWork, UnitOfWorkFactory

DIM = 384
T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class PlannedEmbedder:
    """Texts of `plan` get their planned vector, others a hashing embedding; counts what it embedded."""

    def __init__(self, plan: dict[str, Sequence[float]] | None = None, dimension: int = DIM,
                 width: int | None = None) -> None:
        self.plan, self._dimension, self._width = dict(plan or {}), dimension, width
        self.embedded: list[str] = []
        self._hashing = HashingEmbedder(dimension)

    @property
    def model_name(self) -> str:
        return "planned"

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.embedded.extend(texts)
        rows = [np.asarray(self.plan[t], dtype=np.float32) if t in self.plan else self._hashing.embed([t])[0]
                for t in texts]
        out = np.stack(rows) if rows else np.zeros((0, self._dimension), dtype=np.float32)
        return out[:, : self._width] if self._width is not None else out


def at_angle(theta: float) -> list[float]:
    """A unit vector at angle `theta` from axis 0 in the plane of axes 0 and 1: cosine distance 1 - cos(theta)."""
    v = [0.0] * DIM
    v[0], v[1] = math.cos(theta), math.sin(theta)
    return v


@dataclass
class Backend:
    name: str
    uow_factory: UnitOfWorkFactory
    make_memory: Any

    async def write(self, *events: Event) -> list[Event]:
        """Append events to the log and return them with their ids, in order."""
        scope = events[0].scope
        async with self.uow_factory() as uow:
            before = await uow.events.after(scope, 0, limit=100_000)
            await uow.events.add(list(events))
            await uow.commit()
        async with self.uow_factory() as uow:
            after = await uow.events.after(scope, max([e.id or 0 for e in before], default=0), limit=100_000)
        assert len(after) == len(events)
        return after


@pytest.fixture(params=["inmemory", pytest.param("postgres", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "inmemory":
        db = InMemoryDatabase(HashingEmbedder())

        def open_inmemory() -> UnitOfWork:
            return InMemoryUnitOfWork(db)

        yield Backend("inmemory", open_inmemory, lambda embedder: InMemoryEventMemory(embedder, events=db.events))
        return
    from sqlalchemy import create_engine, pool, text

    from adapters.postgres.event_memory import PgEventMemory
    from adapters.postgres.uow import PgUnitOfWork

    sessionmaker = request.getfixturevalue("pg_sessionmaker")
    scope = request.getfixturevalue("scope")

    def open_postgres() -> UnitOfWork:
        return PgUnitOfWork(sessionmaker, HashingEmbedder())

    yield Backend("postgres", open_postgres, lambda embedder: PgEventMemory(sessionmaker, embedder))
    engine = create_engine(request.getfixturevalue("pg_url").replace("+asyncpg", "+psycopg"), poolclass=pool.NullPool)
    try:  # the fake models' vectors must not reach the commands sharing the database (their model check)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM event_embeddings WHERE scope LIKE :s"), {"s": f"{scope}%"})
    finally:
        engine.dispose()


def event(scope: str, message: str, *, at: datetime = T0, symbol: str | None = None,
          kind: EventType = EventType.SIGNAL) -> Event:
    return Event(kind, at, message, cycle_id="c-1", symbol=symbol, scope=scope)


def doc(e: Event, text: str | None = None) -> EventDocument:
    assert e.id is not None
    return EventDocument(e.id, e.scope, e.at, e.type.value, e.cycle_id, e.symbol, e.message if text is None else text)


async def test_it_implements_its_port(backend: Backend) -> None:
    assert isinstance(backend.make_memory(HashingEmbedder()), EventMemory)


async def test_documents_are_stored_once_and_indexing_resumes_after_the_highest_id(
        backend: Backend, scope: str) -> None:
    embedder = PlannedEmbedder()
    memory: EventMemory = backend.make_memory(embedder)
    a, b, c = await backend.write(event(scope, "NVDA: BUY on a breakout"), event(scope, "AMD: HOLD"),
                                  event(scope, "TSLA: SELL, stop hit"))
    assert await memory.last_event_id(scope) == 0
    assert await memory.add([]) == 0
    assert await memory.add([doc(a), doc(b), doc(a)]) == 2
    assert await memory.last_event_id(scope) == b.id
    assert await memory.add([doc(b), doc(c)]) == 1
    assert await memory.last_event_id(scope) == c.id
    assert embedder.embedded == ["NVDA: BUY on a breakout", "AMD: HOLD", "TSLA: SELL, stop hit"]  # never twice
    assert await memory.add([doc(a), doc(c)]) == 0
    assert await memory.last_event_id("another scope") == 0


async def test_a_document_must_name_an_event_of_its_scope(backend: Backend, scope: str) -> None:
    memory: EventMemory = backend.make_memory(HashingEmbedder())
    (a,) = await backend.write(event(scope, "NVDA: BUY"))
    (other,) = await backend.write(event(scope + "-other", "AMD: BUY"))
    assert a.id is not None
    with pytest.raises(ValueError, match="no event"):
        await memory.add([doc(a), replace(doc(a), event_id=a.id + 10_000_000)])
    with pytest.raises(ValueError, match="no event"):
        await memory.add([replace(doc(other), scope=scope)])
    assert await memory.last_event_id(scope) == 0  # nothing of a refused batch was kept


@pytest.mark.parametrize("text", ["", "   \n"])
async def test_an_empty_text_is_refused_and_nothing_of_its_batch_is_stored(
        backend: Backend, scope: str, text: str) -> None:
    memory: EventMemory = backend.make_memory(HashingEmbedder())
    a, b = await backend.write(event(scope, "NVDA: BUY"), event(scope, "AMD: BUY"))
    with pytest.raises(EmptyTextError):
        await memory.add([doc(a), doc(b, text)])
    assert await memory.last_event_id(scope) == 0


async def test_a_naive_time_or_a_bad_id_is_refused(backend: Backend, scope: str) -> None:
    memory: EventMemory = backend.make_memory(HashingEmbedder())
    (a,) = await backend.write(event(scope, "NVDA: BUY"))
    with pytest.raises(ValueError, match="timezone"):
        await memory.add([replace(doc(a), at=T0.replace(tzinfo=None))])
    with pytest.raises(ValueError, match="positive"):
        await memory.add([replace(doc(a), event_id=0)])


async def test_wrong_dimensions_are_refused(backend: Backend, scope: str) -> None:
    with pytest.raises(DimensionMismatchError):
        backend.make_memory(HashingEmbedder(128))
    memory: EventMemory = backend.make_memory(PlannedEmbedder(width=100))  # says 384, returns 100
    (a,) = await backend.write(event(scope, "NVDA: BUY"))
    with pytest.raises(DimensionMismatchError):
        await memory.add([doc(a)])
    assert await memory.last_event_id(scope) == 0


async def test_search_finds_the_nearest_by_cosine_distance_ties_by_id(backend: Backend, scope: str) -> None:
    angles = {"near": 0.1, "tie one": 0.5, "tie two": 0.5, "far": 1.2, "opposite": math.pi}
    embedder = PlannedEmbedder({**{t: at_angle(a) for t, a in angles.items()}, "the question": at_angle(0.0)})
    memory: EventMemory = backend.make_memory(embedder)
    written = await backend.write(*[event(scope, t) for t in ("far", "tie two", "opposite", "tie one", "near")])
    await memory.add([doc(e) for e in written])
    hits = await memory.search("the question", scope=scope, k=10, as_of=T0)
    by_text = {e.message: e.id for e in written}
    assert [h.document.text for h in hits] == ["near", "tie two", "tie one", "far", "opposite"]  # tie: lower id
    assert [h.document.event_id for h in hits][1:3] == sorted([by_text["tie one"] or 0, by_text["tie two"] or 0])
    assert [h.distance for h in hits] == pytest.approx([1 - math.cos(angles[h.document.text]) for h in hits],
                                                       abs=1e-5)
    assert [h.document.text for h in await memory.search("the question", scope=scope, k=2, as_of=T0)] == [
        "near", "tie two"]
    first = hits[0].document
    assert (first.scope, first.at, first.type, first.cycle_id, first.symbol) == (scope, T0, "signal", "c-1", None)


async def test_search_respects_as_of_since_symbol_and_scope(backend: Backend, scope: str) -> None:
    memory: EventMemory = backend.make_memory(HashingEmbedder())
    written = await backend.write(
        event(scope, "NVDA bought on a breakout", symbol="NVDA", at=T0),
        event(scope, "NVDA stop triggered", symbol="NVDA", at=T0 + 2 * HOUR),
        event(scope, "AMD bought", symbol="AMD", at=T0 + HOUR))
    (elsewhere,) = await backend.write(event(scope + "-b", "NVDA bought elsewhere", symbol="NVDA", at=T0))
    await memory.add([doc(e) for e in written])
    await memory.add([doc(elsewhere)])
    ids = [e.id or 0 for e in written]

    async def found(**kw: Any) -> list[int]:
        kw.setdefault("as_of", T0 + 10 * HOUR)
        return sorted(h.document.event_id for h in await memory.search("NVDA bought", scope=scope, k=10, **kw))

    assert await found() == sorted(ids)
    assert await found(as_of=T0 + HOUR) == [ids[0], ids[2]]  # as_of is inclusive
    assert await found(as_of=(T0 + HOUR).astimezone(timezone(timedelta(hours=-5)))) == [ids[0], ids[2]]
    assert await found(since=T0 + HOUR) == [ids[1], ids[2]]  # since is inclusive
    assert await found(symbol="NVDA") == [ids[0], ids[1]]
    assert await found(as_of=T0 - HOUR) == []


async def test_bad_searches_are_refused(backend: Backend, scope: str) -> None:
    memory: EventMemory = backend.make_memory(HashingEmbedder())
    with pytest.raises(EmptyTextError):
        await memory.search("  ", scope=scope, k=5, as_of=T0)
    with pytest.raises(ValueError, match="k must be positive"):
        await memory.search("NVDA", scope=scope, k=0, as_of=T0)
    with pytest.raises(ValueError, match="timezone"):
        await memory.search("NVDA", scope=scope, k=5, as_of=T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="timezone"):
        await memory.search("NVDA", scope=scope, k=5, as_of=T0, since=T0.replace(tzinfo=None))


async def test_the_log_is_read_after_an_id_in_id_order(backend: Backend, scope: str) -> None:
    written = await backend.write(*[event(scope, f"event {i}", at=T0 - i * HOUR) for i in range(5)])
    await backend.write(event(scope + "-b", "another scope's"))
    ids = [e.id or 0 for e in written]
    assert ids == sorted(ids)
    async with backend.uow_factory() as uow:
        assert [e.id for e in await uow.events.after(scope, 0, limit=100)] == ids  # id order, not time order
        assert [e.id for e in await uow.events.after(scope, ids[1], limit=2)] == ids[2:4]
        assert await uow.events.after(scope, ids[-1], limit=10) == []
        got = (await uow.events.after(scope, ids[0] - 1, limit=1))[0]
        assert (got.message, got.at, got.scope, got.type) == ("event 0", T0, scope, EventType.SIGNAL)
        with pytest.raises(ValueError, match="limit must be positive"):
            await uow.events.after(scope, 0, limit=0)
        with pytest.raises(ValueError, match="after_id must not be negative"):
            await uow.events.after(scope, -1, limit=5)
