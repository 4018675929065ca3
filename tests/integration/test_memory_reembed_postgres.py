"""One model for every stored vector, on the embedded PostgreSQL + pgvector (a database of this module's own, so
the census sees only its rows): memories and events stored under model A are refused under model B with the command
that fixes it, a search under B never returns A's vectors, `reembed_stored` re-embeds everything in batches (an
interruption loses only the batch in flight, a second run finishes without embedding anything twice), and then
searches work under B."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from adapters.postgres import migrate
from adapters.postgres.embedded import pg_bin
from adapters.postgres.embedding_store import PgEmbeddingStore
from adapters.postgres.event_memory import PgEventMemory
from adapters.postgres.uow import PgUnitOfWork
from application.memory_reembed import check_stored_models, reembed_stored
from domain.chat import EventDocument
from domain.errors import DimensionMismatchError, EmbeddingModelMismatchError
from domain.memory import MemoryFilters, MemoryKind, MemoryRecord
from tests.support.named_embedder import NamedEmbedder

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 4, 21, 0, tzinfo=UTC)
SCOPE = "live"
TRADES = ["bought NVDA on a breakout to a new high on heavy volume",
          "sold TSLA after a failed breakout and a reversal below the stop",
          "bought MSFT after an earnings beat and post earnings drift"]
CONDITIONS = ["risk off: VIX above 25, SPY below its 50 day average", "calm uptrend, breadth improving"]
EVENTS = ["trading paused by alice: holiday week", "filled buy 3 NVDA at 875.40"]


@pytest.fixture(scope="module")
def database(pg_url: str) -> Iterator[str]:
    """asyncpg URL of an empty database of this module's own, migrated to head."""
    query = pg_url.partition("?")[2]
    socket_dir = query.split("host=", 1)[1]
    name = "reembed_" + uuid.uuid4().hex[:8]
    subprocess.run([str(pg_bin("createdb")), "-h", socket_dir, "-U", "postgres", name], check=True)
    url = pg_url.partition("?")[0].rsplit("/", 1)[0] + f"/{name}?{query}"
    migrate.upgrade(url)
    yield url
    subprocess.run([str(pg_bin("dropdb")), "-h", socket_dir, "-U", "postgres", "--if-exists", name], check=False)


@pytest.fixture
async def sessionmaker(database: str) -> AsyncIterator[Any]:
    from adapters.postgres.engine import make_engine, make_sessionmaker

    engine = make_engine(database)
    maker = make_sessionmaker(engine)
    async with maker() as session, session.begin():  # each test starts from an empty store
        await session.execute(text("TRUNCATE trade_embeddings, condition_embeddings, symbol_context_embeddings, "
                                   "event_embeddings, events RESTART IDENTITY"))
    yield maker
    await engine.dispose()


async def store_under(sessionmaker: Any, model: NamedEmbedder) -> None:
    """The trades, conditions and events of this module, embedded by `model`."""
    async with PgUnitOfWork(sessionmaker, model) as uow:
        await uow.trade_memory.store([MemoryRecord(MemoryKind.TRADE, t, T0, symbol=t.split()[1], scope=SCOPE)
                                      for t in TRADES])
        await uow.condition_memory.store([MemoryRecord(MemoryKind.CONDITION, c, T0, scope=SCOPE) for c in CONDITIONS])
        await uow.commit()
    async with sessionmaker() as session, session.begin():
        ids = [(await session.execute(text(
            "INSERT INTO events (scope, at, type, severity, message, payload) VALUES (:s, :at, 'note', 'info', :m, "
            "'{}') RETURNING id"), {"s": SCOPE, "at": T0, "m": m})).scalar_one() for m in EVENTS]
    await PgEventMemory(sessionmaker, model).add(
        [EventDocument(i, SCOPE, T0, "note", None, None, m) for i, m in zip(ids, EVENTS, strict=True)])


async def nearest_trades(sessionmaker: Any, model: NamedEmbedder, query: str) -> list[str]:
    async with PgUnitOfWork(sessionmaker, model) as uow:
        found = await uow.trade_memory.similar(query, k=3, as_of=T0 + timedelta(days=1),
                                               filters=MemoryFilters(scope=SCOPE))
    return [item.record.text for item in found]


async def test_stored_under_a_then_refused_under_b_reembedded_and_found(sessionmaker: Any) -> None:
    model_a, model_b = NamedEmbedder("model-a"), NamedEmbedder("model-b")
    await store_under(sessionmaker, model_a)
    store = PgEmbeddingStore(sessionmaker)
    await check_stored_models(store, "model-a")
    assert (await nearest_trades(sessionmaker, model_a, TRADES[1]))[0] == TRADES[1]

    with pytest.raises(EmbeddingModelMismatchError) as info:  # restarted with model B
        await check_stored_models(store, "model-b")
    assert ("configured model-b (7 by model-a; in trade memories, market conditions, indexed events)"
            in str(info.value))
    assert "`quorum memory reembed`" in str(info.value)
    assert await nearest_trades(sessionmaker, model_b, TRADES[1]) == []  # never A's vectors under B
    assert await PgEventMemory(sessionmaker, model_b).search("holiday", scope=SCOPE, k=3, as_of=T0) == []

    model_b.embedded.clear()  # the texts of the searches above
    model_b.fail_after = 2  # interrupted in the second batch: trades 1-2 are in, nothing else is
    with pytest.raises(RuntimeError, match="interrupted"):
        await reembed_stored(store, model_b, batch=2)
    census = await store.census()
    assert census["trade"] == {"model-a": 1, "model-b": 2}
    assert census["condition"] == {"model-a": 2} and census["event"] == {"model-a": 2}

    model_b.fail_after = None
    progress: list[tuple[int, int]] = []
    report = await reembed_stored(store, model_b, batch=2, progress=lambda d, t: progress.append((d, t)))
    assert report.found == report.total == 5
    assert report.reembedded == {"trade": 1, "condition": 2, "event": 2}
    assert progress[0] == (0, 5) and progress[-1] == (5, 5)
    assert sorted(model_b.embedded) == sorted(TRADES + CONDITIONS + EVENTS)  # each text once over both runs
    assert await store.census() == {"trade": {"model-b": 3}, "condition": {"model-b": 2}, "symbol_context": {},
                                    "event": {"model-b": 2}}
    await check_stored_models(store, "model-b")

    assert (await nearest_trades(sessionmaker, model_b, TRADES[1]))[0] == TRADES[1]
    [hit, _] = await PgEventMemory(sessionmaker, model_b).search(EVENTS[0], scope=SCOPE, k=2, as_of=T0)
    assert hit.document.text == EVENTS[0] and hit.distance == pytest.approx(0.0, abs=1e-5)
    again = await reembed_stored(store, NamedEmbedder("model-b"), batch=2)
    assert (again.found, again.total, again.batches) == (0, 0, 0)


async def test_a_batch_is_replaced_in_one_transaction(sessionmaker: Any) -> None:
    await store_under(sessionmaker, NamedEmbedder("model-a"))
    store = PgEmbeddingStore(sessionmaker)
    first, second = await store.stale("trade", "model-b", after=0, limit=2)
    with pytest.raises(DimensionMismatchError):
        await store.replace("trade", "model-b", [(first.key, [0.1] * 384), (second.key, [0.1] * 12)])
    assert (await store.census())["trade"] == {"model-a": 3}
    vector = NamedEmbedder("model-b").embed([first.text])[0].tolist()
    assert await store.replace("trade", "model-b", [(first.key, vector), (10**9, vector)]) == 1  # gone: skipped
    assert await store.replace("trade", "model-b", [(first.key, vector)]) == 0  # made by model-b already
    assert [s.key for s in await store.stale("trade", "model-b", after=0, limit=10)] == [second.key, second.key + 1]
