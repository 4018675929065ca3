"""`quorum memory backfill-events`, the real CLI against a fresh database with the packaged embedding model: it
indexes every event worth finding, says how many, stores nothing twice when run again and picks up only what was
written since."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, pool, text

from tests.e2e.test_cli_db_memory import database, ok, packaged_model, quorum, workdir

pytestmark = [pytest.mark.slow, pytest.mark.integration]
__all__ = ["database", "packaged_model", "workdir"]  # module fixtures shared with the db/memory CLI tests

AT = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
Row = tuple[str, str | None, str, dict[str, str]]
INDEXED: list[Row] = [
    ("signal", "NVDA", "NVDA: BUY — broke out to a new high on heavy volume", {"final": "BUY"}),
    ("order_filled", "NVDA", "filled buy 3 NVDA @ 875.40 (fee 0)", {}),
    ("proposal_rejected", "TSLA", "TSLA BUY rejected: max_positions: already holding 5 positions", {}),
    ("trading_paused", None, "trading paused by alice: holiday", {"reason": "holiday"}),
]
SKIPPED: list[Row] = [("cycle_started", None, "scheduled cycle started", {}),
                      ("llm_call", None, "signal agent: 10 tokens", {})]


def engine_of(url: str) -> Engine:
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=pool.NullPool)


def write_events(url: str, rows: list[Row], scope: str = "live") -> None:
    engine = engine_of(url)
    try:
        with engine.begin() as conn:
            for kind, symbol, message, payload in rows:
                conn.execute(text("INSERT INTO events (scope, at, type, severity, message, cycle_id, symbol, payload) "
                                  "VALUES (:scope, :at, :type, 'info', :message, 'cycle-1', :symbol, "
                                  "CAST(:payload AS jsonb))"),
                             {"scope": scope, "at": AT, "type": kind, "message": message, "symbol": symbol,
                              "payload": json.dumps(payload)})
    finally:
        engine.dispose()


def indexed(url: str) -> list[tuple[str, str, str | None]]:
    engine = engine_of(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT scope, type, symbol FROM event_embeddings ORDER BY event_id")).all()
            return [(r[0], r[1], r[2]) for r in rows]
    finally:
        engine.dispose()


def count(output: str) -> int:
    found = re.search(r"indexed (\d+) events of scope (\S+)", output)
    assert found is not None, output
    return int(found.group(1))


def test_backfill_indexes_what_is_worth_finding_once_and_resumes(
        workdir: Path, database: tuple[str, str], packaged_model: str) -> None:
    url, _ = database
    ok(quorum(workdir, url, "db", "upgrade"))
    write_events(url, [*SKIPPED, *INDEXED])
    write_events(url, [INDEXED[0]], scope="paper-2")
    model = {"QUORUM_EMBEDDINGS__MODEL": packaged_model}

    first = quorum(workdir, url, "memory", "backfill-events", "--batch", "2", **model)
    assert count(ok(first)) == 4
    assert "6 read, 4 stored" in first.stderr  # the progress counts every event read
    assert indexed(url) == [("live", kind, symbol) for kind, symbol, _, _ in INDEXED]

    assert count(ok(quorum(workdir, url, "memory", "backfill-events", **model))) == 0
    assert count(ok(quorum(workdir, url, "memory", "backfill-events", "--from-start", **model))) == 0
    write_events(url, [("stop_triggered", "AMD", "stop filled: sold 3 AMD at 160.10", {})])
    assert count(ok(quorum(workdir, url, "memory", "backfill-events", **model))) == 1
    assert count(ok(quorum(workdir, url, "memory", "backfill-events", "--scope", "paper-2", **model))) == 1
    assert [r for r in indexed(url) if r[0] == "paper-2"] == [("paper-2", "signal", "NVDA")]
    assert len(indexed(url)) == 6


def test_a_bad_batch_size_is_refused(workdir: Path, database: tuple[str, str]) -> None:
    result = quorum(workdir, database[0], "memory", "backfill-events", "--batch", "0")
    assert result.returncode != 0 and "--batch" in result.stderr
