"""One model for every stored vector, on the in-memory fakes: a store another model made is refused with the command
that fixes it, a search never mixes two models' vectors, and `reembed_stored` re-embeds everything in batches,
resumably and without embedding a text twice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest

from adapters.inmemory.embedding_store import InMemoryEmbeddingStore
from adapters.inmemory.event_memory import InMemoryEventMemory
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.memory_reembed import check_stored_models, reembed_stored
from domain.chat import EventDocument
from domain.errors import ConfigurationError, DimensionMismatchError, EmbeddingModelMismatchError
from domain.memory import MemoryKind, MemoryRecord
from entrypoints.container import build_container
from entrypoints.settings import load_settings
from entrypoints.wiring.embeddings import check_embeddings, in_memory_embedding_store
from tests.support.named_embedder import NamedEmbedder

T0 = datetime(2024, 3, 4, 21, 0, tzinfo=UTC)
TRADES = ["bought NVDA on a breakout to a new high on heavy volume",
          "sold TSLA after a failed breakout and a reversal below the stop",
          "bought MSFT after an earnings beat and post earnings drift"]
CONDITIONS = ["risk off: VIX above 25, SPY below its 50 day average", "calm uptrend, breadth improving"]
EVENTS = ["trading paused by alice: holiday week"]


class Configured:
    """The embedding model of the settings, which a restart may change (delegates to the current model)."""

    def __init__(self, model: NamedEmbedder) -> None:
        self.model = model

    @property
    def model_name(self) -> str:
        return self.model.model_name

    @property
    def dimension(self) -> int:
        return self.model.dimension

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self.model.embed(texts)


@pytest.fixture
def configured() -> Configured:
    return Configured(NamedEmbedder("model-a"))


@pytest.fixture
async def stored(configured: Configured) -> tuple[InMemoryDatabase, InMemoryEventMemory]:
    """Three trades, two market conditions and one event, embedded by model-a."""
    db, events = InMemoryDatabase(configured), InMemoryEventMemory(configured)
    async with InMemoryUnitOfWork(db) as uow:
        await uow.trade_memory.store([MemoryRecord(MemoryKind.TRADE, t, T0, symbol=t.split()[1]) for t in TRADES])
        await uow.condition_memory.store([MemoryRecord(MemoryKind.CONDITION, c, T0) for c in CONDITIONS])
        await uow.commit()
    await events.add([EventDocument(1, "live", T0, "trading_paused", None, None, EVENTS[0])])
    return db, events


def store_of(stored: tuple[InMemoryDatabase, InMemoryEventMemory]) -> InMemoryEmbeddingStore:
    db, events = stored
    store = in_memory_embedding_store(db, events)
    assert isinstance(store, InMemoryEmbeddingStore)
    return store


async def nearest(db: InMemoryDatabase, text: str) -> list[str]:
    found = await db.trade_memory.similar(text, k=3, as_of=T0 + timedelta(days=1))
    return [item.record.text for item in found]


async def test_a_store_another_model_made_is_refused_with_the_command_that_fixes_it(
        stored: tuple[InMemoryDatabase, InMemoryEventMemory], configured: Configured) -> None:
    store = store_of(stored)
    await check_stored_models(store, "model-a")  # the model that made them: fine
    configured.model = NamedEmbedder("model-b")  # restarted with another model
    with pytest.raises(EmbeddingModelMismatchError) as info:
        await check_stored_models(store, "model-b")
    message = str(info.value)
    assert isinstance(info.value, ConfigurationError)  # the CLI prints it as one line and exits 1
    assert "\n" not in message
    assert "configured model-b (6 by model-a; in trade memories, market conditions, indexed events)" in message
    assert "`quorum memory reembed`" in message and "QUORUM_EMBEDDINGS__MODEL=model-a" in message


async def test_a_search_never_compares_vectors_of_two_models(
        stored: tuple[InMemoryDatabase, InMemoryEventMemory], configured: Configured) -> None:
    db, events = stored
    assert (await nearest(db, TRADES[1]))[0] == TRADES[1]
    configured.model = NamedEmbedder("model-b")
    assert await nearest(db, TRADES[1]) == []
    assert await events.search("holiday", scope="live", k=3, as_of=T0) == []


async def test_reembed_replaces_every_vector_in_batches_then_searches_work(
        stored: tuple[InMemoryDatabase, InMemoryEventMemory], configured: Configured) -> None:
    db, events = stored
    store = store_of(stored)
    configured.model = model_b = NamedEmbedder("model-b")
    seen: list[tuple[int, int]] = []

    report = await reembed_stored(store, configured, batch=2, progress=lambda done, total: seen.append((done, total)))

    assert report.model == "model-b" and report.found == report.total == 6
    assert report.reembedded == {"trade": 3, "condition": 2, "event": 1}
    assert report.batches == 4  # trades 2 + 1, conditions 2, event 1
    assert seen == [(0, 6), (2, 6), (3, 6), (5, 6), (6, 6)]
    assert sorted(model_b.embedded) == sorted(TRADES + CONDITIONS + EVENTS)  # each text once
    await check_stored_models(store, "model-b")
    assert (await nearest(db, TRADES[1]))[0] == TRADES[1]
    [hit] = await events.search(EVENTS[0], scope="live", k=3, as_of=T0)
    assert hit.document.event_id == 1 and hit.distance == pytest.approx(0.0, abs=1e-6)


async def test_a_second_run_has_nothing_to_do(
        stored: tuple[InMemoryDatabase, InMemoryEventMemory], configured: Configured) -> None:
    store = store_of(stored)
    configured.model = NamedEmbedder("model-b")
    await reembed_stored(store, configured, batch=4)
    configured.model = again = NamedEmbedder("model-b")
    report = await reembed_stored(store, configured, batch=4)
    assert (report.found, report.total, report.batches, again.embedded) == (0, 0, 0, [])


async def test_an_interrupted_run_goes_on_where_it_stopped(
        stored: tuple[InMemoryDatabase, InMemoryEventMemory], configured: Configured) -> None:
    db, _ = stored
    store = store_of(stored)
    configured.model = model_b = NamedEmbedder("model-b")
    model_b.fail_after = 2  # the second batch is interrupted before it is embedded
    with pytest.raises(RuntimeError, match="interrupted"):
        await reembed_stored(store, configured, batch=2)
    census = await store.census()
    assert census["trade"] == {"model-b": 2, "model-a": 1}  # the first batch is in, whole
    with pytest.raises(EmbeddingModelMismatchError, match="4 by model-a"):
        await check_stored_models(store, "model-b")

    model_b.fail_after = None
    report = await reembed_stored(store, configured, batch=2)
    assert report.found == report.total == 4
    assert sorted(model_b.embedded) == sorted(TRADES + CONDITIONS + EVENTS)  # nothing embedded twice
    await check_stored_models(store, "model-b")
    assert (await nearest(db, TRADES[2]))[0] == TRADES[2]


async def test_a_batch_is_replaced_whole_or_not_at_all(stored: tuple[InMemoryDatabase, InMemoryEventMemory]) -> None:
    store = store_of(stored)
    [first, second] = await store.stale("trade", "model-b", after=0, limit=2)
    with pytest.raises(DimensionMismatchError):
        await store.replace("trade", "model-b", [(first.key, [0.1] * 384), (second.key, [0.1] * 12)])
    assert (await store.census())["trade"] == {"model-a": 3}
    with pytest.raises(ValueError, match="unknown collection"):
        await store.stale("trades", "model-b", after=0, limit=2)
    with pytest.raises(ValueError, match="batch must be positive"):
        await reembed_stored(store, NamedEmbedder("model-b"), batch=0)


async def test_a_rolled_back_store_leaves_no_vector_behind(configured: Configured) -> None:
    db = InMemoryDatabase(configured)
    async with InMemoryUnitOfWork(db) as uow:
        await uow.trade_memory.store([MemoryRecord(MemoryKind.TRADE, TRADES[0], T0)])
    assert (await in_memory_embedding_store(db, InMemoryEventMemory(configured)).census())["trade"] == {}


async def test_the_test_container_checks_an_in_memory_store_of_every_collection() -> None:
    container = build_container(load_settings(), "test")
    store = container.embedding_store()
    assert store.collections == ("trade", "condition", "symbol_context", "event")
    await check_embeddings(container.embedder(), store)
    async with container.uow_factory()() as uow:
        await uow.trade_memory.store([MemoryRecord(MemoryKind.TRADE, TRADES[0], T0)])
        await uow.commit()
    assert (await store.census())["trade"] == {"hashing": 1}
