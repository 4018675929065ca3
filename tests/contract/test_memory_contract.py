"""Contract of the vector memory ports, run against the in-memory fakes and the pgvector adapters.

Every test runs for each backend ("inmemory", "postgres") and each memory (trade, condition,
symbol_context). Postgres tests run inside one session that is rolled back afterwards, in a scope of
their own, so they neither see nor leave rows of other tests.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.vector_memory import (
    InMemoryConditionMemory,
    InMemorySymbolContextMemory,
    InMemoryTradeMemory,
)
from domain.errors import DimensionMismatchError, EmptyTextError
from domain.memory import MemoryFilters, MemoryKind, MemoryRecord, SimilarItem
from domain.ports.memory import ConditionMemory, SymbolContextMemory, TradeMemory, VectorMemory

DIM = 384
T0 = datetime(2024, 3, 1, 15, 30, tzinfo=UTC)
DAY = timedelta(days=1)
EMBEDDER = HashingEmbedder(DIM)

INMEMORY = {
    MemoryKind.TRADE: InMemoryTradeMemory,
    MemoryKind.CONDITION: InMemoryConditionMemory,
    MemoryKind.SYMBOL_CONTEXT: InMemorySymbolContextMemory,
}
PORTS = {
    MemoryKind.TRADE: TradeMemory,
    MemoryKind.CONDITION: ConditionMemory,
    MemoryKind.SYMBOL_CONTEXT: SymbolContextMemory,
}


def _postgres_classes() -> dict[MemoryKind, Any]:
    from adapters.postgres.vector_memory import PgConditionMemory, PgSymbolContextMemory, PgTradeMemory

    return {
        MemoryKind.TRADE: PgTradeMemory,
        MemoryKind.CONDITION: PgConditionMemory,
        MemoryKind.SYMBOL_CONTEXT: PgSymbolContextMemory,
    }


@pytest.fixture(params=["inmemory", pytest.param("postgres", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sessionmaker(backend: str, request: pytest.FixtureRequest) -> Any:
    """`pg_sessionmaker` for the postgres backend (the server starts only when a postgres test runs)."""
    return request.getfixturevalue("pg_sessionmaker") if backend == "postgres" else None


@pytest.fixture(params=list(MemoryKind), ids=[k.value for k in MemoryKind])
def kind(request: pytest.FixtureRequest) -> MemoryKind:
    return MemoryKind(request.param)


@pytest.fixture
async def make_memory(
    backend: str, kind: MemoryKind, sessionmaker: Any
) -> AsyncIterator[Callable[..., VectorMemory]]:
    """Factory of `kind` memories on `backend`; postgres ones share one session rolled back at the end."""
    if backend == "inmemory":
        yield lambda embedder=EMBEDDER: INMEMORY[kind](embedder)
        return
    classes = _postgres_classes()
    async with sessionmaker() as session:
        try:
            yield lambda embedder=EMBEDDER: classes[kind](session, embedder)
        finally:
            await session.rollback()


@pytest.fixture
def memory(make_memory: Callable[..., VectorMemory]) -> VectorMemory:
    return make_memory()


def unit(*pairs: tuple[int, float]) -> tuple[float, ...]:
    """A unit vector with the given (index, value) entries, the rest zero."""
    v = np.zeros(DIM, dtype=np.float64)
    for i, x in pairs:
        v[i] = x
    return tuple(float(x) for x in v / np.linalg.norm(v))


def at_angle(theta: float) -> tuple[float, ...]:
    """Unit vector at angle `theta` from axis 0 in the plane of axes 0 and 1: cosine distance 1 - cos(theta)."""
    return unit((0, math.cos(theta)), (1, math.sin(theta)))


def rec(kind: MemoryKind, text: str, scope: str, **kw: Any) -> MemoryRecord:
    kw.setdefault("as_of", T0)
    return MemoryRecord(kind, text, scope=scope, **kw)


async def nearest(memory: VectorMemory, query: Any, scope: str, *, k: int = 10, as_of: datetime = T0 + 30 * DAY,
                  **filters: Any) -> list[SimilarItem]:
    return await memory.similar(query, k=k, as_of=as_of, filters=MemoryFilters(scope=scope, **filters))


def ids(items: list[SimilarItem]) -> list[int | None]:
    return [i.record.id for i in items]


async def test_it_implements_its_port(memory: VectorMemory, kind: MemoryKind) -> None:
    assert isinstance(memory, PORTS[kind])
    assert memory.kind is kind


async def test_store_returns_records_with_ids_and_unit_embeddings(
    memory: VectorMemory, kind: MemoryKind, scope: str
) -> None:
    given = at_angle(0.3)
    stored = await memory.store([
        rec(kind, "TSLA breakout above resistance", scope, symbol="TSLA"),
        rec(kind, "vector given by the caller", scope, embedding=given),
    ])
    assert len(stored) == 2
    assert all(r.id is not None for r in stored)
    assert stored[0].id != stored[1].id
    assert stored[0].embedding is not None and len(stored[0].embedding) == DIM
    assert float(np.linalg.norm(stored[0].embedding)) == pytest.approx(1.0, abs=1e-5)
    assert stored[1].embedding == pytest.approx(given)
    assert [r.text for r in stored] == ["TSLA breakout above resistance", "vector given by the caller"]
    assert await memory.store([]) == []


async def test_similar_orders_by_cosine_distance_and_reports_it(
    memory: VectorMemory, kind: MemoryKind, scope: str
) -> None:
    angles = {"far": 1.9, "near": 0.2, "exact": 0.0, "middle": 0.8, "opposite": math.pi}
    stored = await memory.store([rec(kind, name, scope, embedding=at_angle(a)) for name, a in angles.items()])
    by_text = {r.text: r.id for r in stored}

    found = await nearest(memory, at_angle(0.0), scope)

    assert [i.record.text for i in found] == ["exact", "near", "middle", "far", "opposite"]
    assert [i.record.id for i in found] == [by_text[i.record.text] for i in found]
    for item in found:
        assert item.distance == pytest.approx(1 - math.cos(angles[item.record.text]), abs=1e-5)
    assert all(i.record.embedding is None or len(i.record.embedding) == DIM for i in found)


async def test_k_limits_the_number_of_items(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    await memory.store([rec(kind, f"item {i}", scope, embedding=at_angle(0.1 * i)) for i in range(6)])
    three = await nearest(memory, at_angle(0.0), scope, k=3)
    assert [i.record.text for i in three] == ["item 0", "item 1", "item 2"]
    assert len(await nearest(memory, at_angle(0.0), scope, k=1)) == 1
    assert len(await nearest(memory, at_angle(0.0), scope, k=50)) == 6


async def test_query_by_text_and_by_vector_agree(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    texts = [
        "TSLA breakout above resistance stopped out for a loss",
        "MSFT earnings drift closed with a profit",
        "SPY range day with low volume",
    ]
    stored = await memory.store([rec(kind, t, scope) for t in texts])

    by_text = await nearest(memory, "TSLA breakout stopped out", scope)
    by_vector = await nearest(memory, EMBEDDER.embed(["TSLA breakout stopped out"])[0].tolist(), scope)

    assert by_text[0].record.id == stored[0].id
    assert ids(by_text) == ids(by_vector)
    assert [i.distance for i in by_text] == pytest.approx([i.distance for i in by_vector], abs=1e-6)
    exact = await nearest(memory, texts[1], scope, k=1)
    assert exact[0].record.id == stored[1].id
    assert exact[0].distance == pytest.approx(0.0, abs=1e-5)


async def test_a_numpy_query_vector_is_accepted(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    stored = await memory.store([rec(kind, "a", scope, embedding=at_angle(0.0))])
    found = await nearest(memory, np.asarray(at_angle(0.1), dtype=np.float32), scope)
    assert ids(found) == [stored[0].id]


async def test_records_come_back_with_their_fields(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    original = rec(kind, "NVDA pullback to the 20-day average", scope, symbol="NVDA", action="BUY", outcome="WIN",
                   return_pct=0.042, outcome_at=T0 + 3 * DAY, metadata={"cycle_id": "c-17", "note": "earnings week"},
                   embedding=at_angle(0.0))
    [stored] = await memory.store([original])

    [item] = await nearest(memory, at_angle(0.0), scope)

    r = item.record
    assert (r.id, r.kind, r.text, r.symbol, r.action, r.outcome, r.scope) == (
        stored.id, kind, original.text, "NVDA", "BUY", "WIN", scope)
    assert r.return_pct == pytest.approx(0.042)
    assert r.as_of == original.as_of and r.outcome_at == original.outcome_at
    assert r.as_of.tzinfo is not None
    assert r.metadata == {"cycle_id": "c-17", "note": "earnings week"}


async def test_as_of_hides_items_created_later(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    early, late = await memory.store([
        rec(kind, "early", scope, as_of=T0, embedding=at_angle(0.5)),
        rec(kind, "late", scope, as_of=T0 + 2 * DAY, embedding=at_angle(0.0)),
    ])
    q = at_angle(0.0)
    assert await nearest(memory, q, scope, as_of=T0 - timedelta(seconds=1)) == []
    assert ids(await nearest(memory, q, scope, as_of=T0)) == [early.id]
    assert ids(await nearest(memory, q, scope, as_of=T0 + 2 * DAY - timedelta(microseconds=1))) == [early.id]
    assert ids(await nearest(memory, q, scope, as_of=T0 + 2 * DAY)) == [late.id, early.id]


async def test_as_of_compares_instants_not_wall_clock_text(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    new_york = datetime(2024, 3, 1, 10, 30, tzinfo=timezone(timedelta(hours=-5)))  # = T0 in UTC
    [r] = await memory.store([rec(kind, "at the open", scope, as_of=new_york, embedding=at_angle(0.0))])
    assert ids(await nearest(memory, at_angle(0.0), scope, as_of=T0)) == [r.id]
    assert await nearest(memory, at_angle(0.0), scope, as_of=T0 - timedelta(microseconds=1)) == []


async def test_an_outcome_known_later_is_hidden(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    [r] = await memory.store([
        rec(kind, "TSLA breakout", scope, symbol="TSLA", action="BUY", outcome="LOSS", return_pct=-0.06,
            outcome_at=T0 + 5 * DAY, embedding=at_angle(0.0)),
    ])

    [before] = await nearest(memory, at_angle(0.0), scope, as_of=T0 + DAY)
    [after] = await nearest(memory, at_angle(0.0), scope, as_of=T0 + 5 * DAY)

    assert before.record.id == r.id
    assert (before.record.outcome, before.record.return_pct, before.record.outcome_at) == (None, None, None)
    assert before.record.symbol == "TSLA" and before.record.action == "BUY"
    assert (after.record.outcome, after.record.outcome_at) == ("LOSS", T0 + 5 * DAY)
    assert after.record.return_pct == pytest.approx(-0.06)


async def test_outcome_filter_does_not_look_ahead(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    [r] = await memory.store([
        rec(kind, "win known later", scope, outcome="WIN", return_pct=0.05, outcome_at=T0 + 5 * DAY,
            embedding=at_angle(0.0)),
    ])
    assert await nearest(memory, at_angle(0.0), scope, as_of=T0 + DAY, outcome="WIN") == []
    assert ids(await nearest(memory, at_angle(0.0), scope, as_of=T0 + 5 * DAY, outcome="WIN")) == [r.id]


async def test_outcome_stored_without_outcome_at_is_known_with_the_record(
    memory: VectorMemory, kind: MemoryKind, scope: str, backend: str, request: pytest.FixtureRequest
) -> None:
    # A record carrying an outcome but no outcome_at: MemoryRecord.visible_at treats the outcome as known
    # from the record's own as_of, so the outcome filter must find it too.
    [r] = await memory.store([rec(kind, "labelled", scope, outcome="RISK_OFF", embedding=at_angle(0.0))])
    [plain] = await nearest(memory, at_angle(0.0), scope, as_of=T0 + DAY)
    assert plain.record.outcome == "RISK_OFF"
    assert ids(await nearest(memory, at_angle(0.0), scope, as_of=T0 + DAY, outcome="RISK_OFF")) == [r.id]


async def test_record_outcome_is_visible_only_from_outcome_at(
    memory: VectorMemory, kind: MemoryKind, scope: str
) -> None:
    [r] = await memory.store([rec(kind, "open trade", scope, symbol="AAPL", action="BUY", embedding=at_angle(0.0))])
    assert r.id is not None
    await memory.record_outcome(r.id, outcome="WIN", return_pct=0.031, outcome_at=T0 + 4 * DAY)

    [before] = await nearest(memory, at_angle(0.0), scope, as_of=T0 + 3 * DAY)
    [after] = await nearest(memory, at_angle(0.0), scope, as_of=T0 + 4 * DAY)
    assert before.record.outcome is None and before.record.return_pct is None
    assert after.record.outcome == "WIN" and after.record.return_pct == pytest.approx(0.031)
    assert after.record.outcome_at == T0 + 4 * DAY
    assert ids(await nearest(memory, at_angle(0.0), scope, as_of=T0 + 4 * DAY, outcome="WIN")) == [r.id]
    assert await nearest(memory, at_angle(0.0), scope, as_of=T0 + 3 * DAY, outcome="WIN") == []


async def test_record_outcome_of_an_unknown_id_raises(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    [r] = await memory.store([rec(kind, "only one", scope, embedding=at_angle(0.0))])
    assert r.id is not None
    with pytest.raises(KeyError):
        await memory.record_outcome(r.id + 10_000_000, outcome="WIN", return_pct=0.01, outcome_at=T0)


async def test_filters_by_symbol_action_and_outcome(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    rows = [
        ("TSLA", "BUY", "LOSS", 0.0),
        ("TSLA", "SELL", "WIN", 0.1),
        ("MSFT", "BUY", "WIN", 0.2),
        ("MSFT", "SELL", None, 0.3),
        (None, None, None, 0.4),
    ]
    stored = await memory.store([
        rec(kind, f"{s} {a} {o}", scope, symbol=s, action=a, outcome=o, outcome_at=T0 if o else None,
            embedding=at_angle(theta))
        for s, a, o, theta in rows
    ])
    i = [r.id for r in stored]
    q = at_angle(0.0)
    assert ids(await nearest(memory, q, scope)) == i
    assert ids(await nearest(memory, q, scope, symbol="TSLA")) == [i[0], i[1]]
    assert ids(await nearest(memory, q, scope, action="BUY")) == [i[0], i[2]]
    assert ids(await nearest(memory, q, scope, outcome="WIN")) == [i[1], i[2]]
    assert ids(await nearest(memory, q, scope, symbol="MSFT", action="SELL")) == [i[3]]
    assert ids(await nearest(memory, q, scope, symbol="MSFT", outcome="WIN", action="BUY")) == [i[2]]
    assert await nearest(memory, q, scope, symbol="AAPL") == []
    assert await nearest(memory, q, scope, symbol="TSLA", outcome="FLAT") == []


async def test_filters_apply_before_k(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    # The only AAPL item is the farthest of many: filtering after a top-k cut would lose it.
    many = [rec(kind, f"near {n}", scope, symbol="SPY", embedding=at_angle(0.001 * n)) for n in range(30)]
    [*_, far] = await memory.store([*many, rec(kind, "far", scope, symbol="AAPL", embedding=at_angle(2.5))])
    assert ids(await nearest(memory, at_angle(0.0), scope, k=3, symbol="AAPL")) == [far.id]


async def test_scopes_never_cross(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    other = scope + ":other"
    [mine] = await memory.store([rec(kind, "mine", scope, embedding=at_angle(0.3))])
    [theirs] = await memory.store([rec(kind, "theirs", other, embedding=at_angle(0.0))])

    assert ids(await nearest(memory, at_angle(0.0), scope)) == [mine.id]
    assert ids(await nearest(memory, at_angle(0.0), other)) == [theirs.id]
    live = await memory.similar(at_angle(0.0), k=100, as_of=T0 + DAY)  # default filters: the live scope
    assert all(i.record.scope == "live" for i in live)
    assert not {mine.id, theirs.id} & set(ids(live))


async def test_count(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    other = scope + ":other"
    total_before = await memory.count()
    assert await memory.count(scope=scope) == 0
    await memory.store([rec(kind, f"n{n}", scope, embedding=at_angle(0.1 * n)) for n in range(3)])
    await memory.store([rec(kind, "x", other, embedding=at_angle(0.0))])
    assert await memory.count(scope=scope) == 3
    assert await memory.count(scope=other) == 1
    assert await memory.count() == total_before + 4


async def test_a_failed_store_stores_nothing(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    good = rec(kind, "good", scope, embedding=at_angle(0.0))
    bad = rec(kind, "bad", scope, embedding=(1.0,) * 10)
    with pytest.raises(DimensionMismatchError):
        await memory.store([good, bad])
    assert await memory.count(scope=scope) == 0


async def test_wrong_record_dimension_is_refused_clearly(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    with pytest.raises(DimensionMismatchError, match="dimension 10, expected 384") as info:
        await memory.store([rec(kind, "short vector", scope, embedding=(0.1,) * 10)])
    assert (info.value.expected, info.value.got) == (DIM, 10)


@pytest.mark.parametrize("length", [0, 383, 385, 768])
async def test_wrong_query_dimension_is_refused_clearly(
    memory: VectorMemory, kind: MemoryKind, scope: str, length: int
) -> None:
    await memory.store([rec(kind, "something", scope, embedding=at_angle(0.0))])
    with pytest.raises(DimensionMismatchError, match=f"query vector has dimension {length}, expected 384"):
        await nearest(memory, [0.1] * length, scope)


async def test_an_embedder_of_the_wrong_dimension_is_refused(make_memory: Callable[..., VectorMemory]) -> None:
    with pytest.raises(DimensionMismatchError, match="expected 384"):
        make_memory(HashingEmbedder(128))


async def test_non_finite_query_vector_is_refused(memory: VectorMemory, scope: str) -> None:
    vec = list(at_angle(0.0))
    vec[5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        await nearest(memory, vec, scope)


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
async def test_empty_query_text_is_refused(memory: VectorMemory, scope: str, text: str) -> None:
    with pytest.raises(EmptyTextError):
        await nearest(memory, text, scope)


def test_empty_record_text_is_refused(kind: MemoryKind) -> None:
    with pytest.raises(EmptyTextError, match="must not be empty"):
        MemoryRecord(kind, "  ", T0)


@pytest.mark.parametrize("k", [0, -1])
async def test_k_must_be_positive(memory: VectorMemory, scope: str, k: int) -> None:
    with pytest.raises(ValueError, match="k must be positive"):
        await nearest(memory, at_angle(0.0), scope, k=k)


async def test_as_of_must_be_timezone_aware(memory: VectorMemory, scope: str) -> None:
    naive = datetime(2024, 3, 1, 12, 0)  # noqa: DTZ001 - naive on purpose: the memory must refuse it
    with pytest.raises(ValueError, match="timezone-aware"):
        await memory.similar(at_angle(0.0), k=5, as_of=naive, filters=MemoryFilters(scope=scope))


async def test_a_record_of_another_memory_is_refused(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    other = next(k for k in MemoryKind if k is not kind)
    with pytest.raises(ValueError, match=other.value):
        await memory.store([rec(other, "wrong memory", scope, embedding=at_angle(0.0))])
    assert await memory.count(scope=scope) == 0


@pytest.fixture
async def all_memories(backend: str, sessionmaker: Any) -> AsyncIterator[dict[MemoryKind, VectorMemory]]:
    """The three memories of one backend (one session, rolled back, for postgres)."""
    if backend == "inmemory":
        yield {k: cls(EMBEDDER) for k, cls in INMEMORY.items()}
        return
    async with sessionmaker() as session:
        try:
            yield {k: cls(session, EMBEDDER) for k, cls in _postgres_classes().items()}
        finally:
            await session.rollback()


async def test_memories_are_separate(all_memories: dict[MemoryKind, VectorMemory], scope: str) -> None:
    """What goes into one memory is never found in another (same backend, same scope)."""
    for kind, memory in all_memories.items():
        [r] = await memory.store([rec(kind, f"only in {kind.value}", scope, embedding=at_angle(0.0))])
        assert r.id is not None
    for kind, memory in all_memories.items():
        found = await nearest(memory, at_angle(0.0), scope)
        assert [i.record.text for i in found] == [f"only in {kind.value}"]
        assert await memory.count(scope=scope) == 1


# --- similar_many: several queries in one call, each answered exactly as `similar` answers it ---------------


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, remembering each batch it was asked to embed."""

    def __init__(self) -> None:
        super().__init__(DIM)
        self.batches: list[list[str]] = []

    def embed(self, texts: Any) -> Any:
        self.batches.append(list(texts))
        return super().embed(texts)


async def many(memory: VectorMemory, queries: list[Any], scope: str, *, k: int = 10,
               as_of: datetime = T0 + 30 * DAY, **filters: Any) -> list[list[SimilarItem]]:
    return await memory.similar_many(queries, k=k, as_of=as_of, filters=MemoryFilters(scope=scope, **filters))


def assert_same_items(got: list[SimilarItem], expected: list[SimilarItem]) -> None:
    assert ids(got) == ids(expected)
    assert [i.distance for i in got] == pytest.approx([i.distance for i in expected], abs=1e-6)
    assert [i.record for i in got] == [i.record for i in expected]


async def _mixed_memory(memory: VectorMemory, kind: MemoryKind, scope: str) -> list[MemoryRecord]:
    """Twenty records at seeded random directions (no accidental ties), with symbols, actions, outcomes known at
    various times, some created later than others, a pair with the same vector (a tie broken by id), and texts."""
    records = []
    for n in range(16):
        records.append(rec(
            kind, f"setup {n}", scope, symbol=("TSLA", "MSFT", "NVDA")[n % 3], action=("BUY", "SELL")[n % 2],
            outcome=("WIN", "LOSS", None)[n % 3], return_pct=0.01 * n if n % 3 != 2 else None,
            outcome_at=T0 + (n % 5) * DAY if n % 3 != 2 else None, as_of=T0 + (n % 4) * DAY,
            embedding=random_unit(n)))
    records.append(rec(kind, "tie a", scope, action="BUY", embedding=random_unit(100)))
    records.append(rec(kind, "tie b", scope, action="BUY", embedding=random_unit(100)))
    records += [rec(kind, t, scope, action="BUY") for t in (
        "TSLA breakout above resistance stopped out", "MSFT earnings drift closed with a profit")]
    return await memory.store(records)


def random_unit(seed: int) -> tuple[float, ...]:
    v = np.random.default_rng(seed).normal(size=DIM)
    return tuple(float(x) for x in v / np.linalg.norm(v))


QUERIES: list[Any] = [random_unit(1000), "TSLA breakout stopped out", random_unit(100), random_unit(3),
                      "SPY range day", random_unit(100), np.asarray(random_unit(1001), dtype=np.float32)]


@pytest.mark.parametrize(("k", "filters"), [
    (3, {}), (10, {}), (50, {}), (1, {"action": "BUY"}), (4, {"symbol": "TSLA"}), (2, {"outcome": "WIN"}),
    (5, {"symbol": "MSFT", "action": "SELL"}), (3, {"symbol": "AAPL"}),
])
@pytest.mark.parametrize("days", [0, 1, 2, 5, 40])
async def test_similar_many_answers_each_query_as_similar_does(
    memory: VectorMemory, kind: MemoryKind, scope: str, k: int, filters: dict[str, str], days: int
) -> None:
    await _mixed_memory(memory, kind, scope)
    as_of = T0 + days * DAY

    batched = await many(memory, QUERIES, scope, k=k, as_of=as_of, **filters)

    assert len(batched) == len(QUERIES)
    for query, got in zip(QUERIES, batched, strict=True):
        assert_same_items(got, await nearest(memory, query, scope, k=k, as_of=as_of, **filters))


async def test_similar_many_breaks_ties_by_id_and_keeps_the_query_order(
    memory: VectorMemory, kind: MemoryKind, scope: str
) -> None:
    stored = await _mixed_memory(memory, kind, scope)
    tie_a, tie_b = stored[16], stored[17]
    near_tie, first = await many(memory, [random_unit(100), random_unit(0)], scope, k=2)
    assert ids(near_tie) == [tie_a.id, tie_b.id]
    assert near_tie[0].distance == pytest.approx(near_tie[1].distance, abs=1e-7)
    assert ids(first)[0] == stored[0].id
    again = await many(memory, [random_unit(0), random_unit(100), random_unit(0)], scope, k=2)
    assert [ids(r) for r in again] == [ids(first), ids(near_tie), ids(first)]


async def test_similar_many_hides_later_records_and_outcomes(
    memory: VectorMemory, kind: MemoryKind, scope: str
) -> None:
    early, late = await memory.store([
        rec(kind, "early", scope, outcome="LOSS", return_pct=-0.06, outcome_at=T0 + 5 * DAY, embedding=at_angle(0.5)),
        rec(kind, "late", scope, as_of=T0 + 2 * DAY, embedding=at_angle(0.0)),
    ])
    [before], [after] = [await many(memory, [at_angle(0.0)], scope, as_of=t) for t in (T0 + DAY, T0 + 5 * DAY)]
    assert ids(before) == [early.id]
    assert (before[0].record.outcome, before[0].record.return_pct) == (None, None)
    assert ids(after) == [late.id, early.id]
    assert after[1].record.outcome == "LOSS"
    assert await many(memory, [at_angle(0.0), at_angle(1.0)], scope, as_of=T0 - DAY) == [[], []]


async def test_similar_many_never_crosses_scopes(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    other = scope + ":other"
    [mine] = await memory.store([rec(kind, "mine", scope, embedding=at_angle(0.3))])
    [theirs] = await memory.store([rec(kind, "theirs", other, embedding=at_angle(0.0))])
    assert [ids(r) for r in await many(memory, [at_angle(0.0), at_angle(0.3)], scope)] == [[mine.id], [mine.id]]
    assert [ids(r) for r in await many(memory, [at_angle(0.0)], other)] == [[theirs.id]]


async def test_similar_many_embeds_its_texts_in_one_batch(
    make_memory: Callable[..., VectorMemory], kind: MemoryKind, scope: str
) -> None:
    embedder = CountingEmbedder()
    memory = make_memory(embedder)
    await memory.store([rec(kind, "a stored text", scope, embedding=at_angle(0.0))])
    await many(memory, ["first text", at_angle(0.2), "second text"], scope)
    assert embedder.batches == [["first text", "second text"]]
    embedder.batches.clear()
    await many(memory, [at_angle(0.1)], scope)
    assert embedder.batches == []


async def test_similar_many_of_no_queries_is_empty(memory: VectorMemory, scope: str) -> None:
    assert await many(memory, [], scope) == []


async def test_similar_many_refuses_bad_queries(memory: VectorMemory, kind: MemoryKind, scope: str) -> None:
    await memory.store([rec(kind, "something", scope, embedding=at_angle(0.0))])
    with pytest.raises(DimensionMismatchError, match="query vector has dimension 383, expected 384"):
        await many(memory, [at_angle(0.0), [0.1] * 383], scope)
    with pytest.raises(EmptyTextError):
        await many(memory, ["fine", "  "], scope)
    with pytest.raises(TypeError, match="not one text"):
        await memory.similar_many("one text", k=3, as_of=T0, filters=MemoryFilters(scope=scope))
    with pytest.raises(ValueError, match="k must be positive"):
        await many(memory, [at_angle(0.0)], scope, k=0)
    naive = datetime(2024, 3, 1, 12, 0)  # noqa: DTZ001 - naive on purpose: the memory must refuse it
    with pytest.raises(ValueError, match="timezone-aware"):
        await memory.similar_many([at_angle(0.0)], k=5, as_of=naive, filters=MemoryFilters(scope=scope))


@pytest.mark.integration
async def test_postgres_answers_all_the_queries_in_one_statement(pg_sessionmaker: Any, scope: str) -> None:
    from sqlalchemy import event

    from adapters.postgres.vector_memory import PgTradeMemory

    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    async with pg_sessionmaker() as session:
        try:
            memory = PgTradeMemory(session, EMBEDDER)
            await _mixed_memory(memory, MemoryKind.TRADE, scope)
            engine = session.bind.sync_engine
            event.listen(engine, "before_cursor_execute", seen)
            try:
                found = await many(memory, QUERIES, scope, k=3, action="BUY")
            finally:
                event.remove(engine, "before_cursor_execute", seen)
        finally:
            await session.rollback()
    assert len(found) == len(QUERIES) and all(len(items) == 3 for items in found)
    recall = [s for s in statements if "trade_embeddings" in s]
    assert len(recall) == 1 and "LATERAL" in recall[0] and "unnest" in recall[0]
    assert len(statements) == 2  # and the transaction-local HNSW search settings
