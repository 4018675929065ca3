"""`quorum memory reembed`, the real CLI against a database of its own with the packaged model: memories another
model made stop `quorum memory search` with one line naming the command; the command re-embeds them (progress on
stderr), a second run has nothing to do, and the search then works. A configured model that is not here stops the
command with one line instead of loading another model."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.postgres.engine import make_engine, make_sessionmaker
from adapters.postgres.uow import PgUnitOfWork
from domain.memory import MemoryKind, MemoryRecord
from tests.e2e.test_cli_db_memory import MSFT, TSLA, database, ok, packaged_model, quorum, workdir
from tests.support.named_embedder import NamedEmbedder

pytestmark = [pytest.mark.slow, pytest.mark.integration]
__all__ = ["database", "packaged_model", "workdir"]  # module fixtures shared with the db/memory CLI tests

PACKAGED = "sentence-transformers/all-MiniLM-L6-v2"
QUERY = "a failed breakout in a volatile EV stock"


def store_under_model_a(database_url: str) -> None:
    async def go() -> None:
        engine = make_engine(database_url.replace("postgresql://", "postgresql+asyncpg://"))
        try:
            async with PgUnitOfWork(make_sessionmaker(engine), NamedEmbedder("model-a")) as uow:
                await uow.trade_memory.store([
                    MemoryRecord(MemoryKind.TRADE, MSFT, datetime(2024, 2, 1, tzinfo=UTC), symbol="MSFT"),
                    MemoryRecord(MemoryKind.TRADE, TSLA, datetime(2024, 3, 15, tzinfo=UTC), symbol="TSLA")])
                await uow.commit()
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_memories_of_another_model_are_refused_then_reembedded_and_found(
        workdir: Path, database: tuple[str, str], tmp_path: Path) -> None:
    url, _ = database
    ok(quorum(workdir, url, "db", "upgrade"))
    store_under_model_a(url)

    refused = quorum(workdir, url, "memory", "search", QUERY, "--json")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: stored vectors were made by another embedding model than the configured {PACKAGED} "
                           "(2 by model-a; in trade memories)")
    assert "Run `quorum memory reembed`" in line and "QUORUM_EMBEDDINGS__MODEL=model-a" in line

    done = quorum(workdir, url, "memory", "reembed", "--batch", "1")
    assert ok(done).strip() == f"re-embedded 2 stored vectors with {PACKAGED} (2 trade memories) in 2 batches"
    assert f"re-embedding with {PACKAGED}" in done.stderr and "2/2" in done.stderr
    again = ok(quorum(workdir, url, "memory", "reembed"))
    assert again.strip() == f"every stored vector was made by {PACKAGED}: nothing to re-embed"

    found = json.loads(ok(quorum(workdir, url, "memory", "search", QUERY, "--as-of", "2024-06-01", "--json")))
    assert [row["symbol"] for row in found] == ["TSLA", "MSFT"]

    missing = quorum(workdir, url, "memory", "search", QUERY, QUORUM_EMBEDDINGS__MODEL="BAAI/bge-small-en-v1.5",
                     HF_HOME=str(tmp_path / "empty-hf-home"))
    assert missing.returncode == 1, missing.stdout + missing.stderr
    [line] = missing.stderr.strip().splitlines()
    assert line.startswith("error: embedding model BAAI/bge-small-en-v1.5 is not available offline")
    assert f"QUORUM_EMBEDDINGS__MODEL={PACKAGED}" in line
