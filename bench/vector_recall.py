"""Vector recall on 100,000 trade embeddings: HNSW top-10 latency and recall@10 against exact search.

About 5,000 generated trade texts are encoded with the real model; the other 95,000 vectors are
derived from them by small Gaussian noise and re-normalising. Everything goes into `trade_embeddings`
of a throw-away embedded PostgreSQL (migrated with the project's migrations), the HNSW index is built,
and 200 fresh query texts are answered through the real `PgTradeMemory.similar` path and through raw
SQL. Exact top-10 comes from NumPy brute force over the same float32 vectors.
Targets: p50 under 10 ms, recall@10 at least 0.95.
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import Stopwatch, Target, percentiles_ms, trade_texts, write_result

N_TEXTS = 5_000
N_TOTAL = 100_000
N_QUERIES = 200
N_EXACT_SQL = 20
K = 10
NOISE_SIGMA = 0.02  # per component; a derived vector keeps a cosine of about 0.93 with its source
SEED = 20240501
SCOPE = "bench"
AS_OF = datetime(2025, 1, 1, tzinfo=UTC)
EF_SWEEP = (10, 20, 40, 64, 100, 200, 400)
ALT_EF_SEARCH = 200
TARGET_P50_MS = 10.0
TARGET_RECALL = 0.95
COLUMNS = ["id", "scope", "symbol", "action", "outcome", "return_pct", "as_of", "outcome_at", "text", "embedding",
           "model"]
RAW_SQL = "SELECT id FROM trade_embeddings ORDER BY embedding <=> $1 LIMIT 10"
SHAPED_SQL = ("SELECT *, embedding <=> $1::vector AS distance FROM trade_embeddings WHERE scope = $2 "
              "AND as_of <= $3 ORDER BY embedding <=> $1::vector LIMIT 10")

TimedQuery = Callable[[np.ndarray], Awaitable[tuple[float, list[int]]]]
"""One top-10 query: (seconds it took, ids found)."""


def derive(base: np.ndarray, total: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`total` unit vectors: `base` itself, then noisy re-normalised copies. Returns (vectors, source row)."""
    extra = total - len(base)
    source = np.concatenate([np.arange(len(base)), rng.integers(0, len(base), extra)])
    noise = rng.normal(0.0, NOISE_SIGMA, size=(extra, base.shape[1])).astype(np.float32)
    derived = base[source[len(base):]] + noise
    derived /= np.linalg.norm(derived, axis=1, keepdims=True)
    return np.vstack([base, derived]).astype(np.float32), source


def exact_top_k(matrix: np.ndarray, queries: np.ndarray, k: int) -> tuple[list[set[int]], list[float]]:
    """Ids (row + 1) of the exact k nearest rows by cosine, and the seconds each query took."""
    out, seconds = [], []
    for q in queries:
        t0 = time.perf_counter()
        sims = matrix @ q
        top = np.argpartition(-sims, k)[:k]
        seconds.append(time.perf_counter() - t0)
        out.append({int(i) + 1 for i in top})
    return out, seconds


def recall(found: list[list[int]], exact: list[set[int]]) -> float:
    return float(np.mean([len(set(f) & e) / len(e) for f, e in zip(found, exact, strict=True)]))


async def load(url: str, vectors: np.ndarray, texts: list[str], source: np.ndarray, model: str) -> dict[str, Any]:
    """Bulk-load the rows with binary COPY, then (re)build the HNSW index. Returns timings and the index definition."""
    import asyncpg
    from pgvector.asyncpg import register_vector

    rng = np.random.default_rng(SEED + 1)
    symbols = [t.split()[1] if not t.startswith("Sold short") else t.split()[2] for t in texts]
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await register_vector(conn)
        indexdef = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'trade_embeddings' AND indexdef LIKE '%USING hnsw%'"
        )
        index_name = indexdef.split("INDEX ", 1)[1].split()[0]
        await conn.execute(f"DROP INDEX {index_name}")  # bulk load first, build once: far faster than row by row
        days = rng.integers(0, 4 * 365, len(vectors))
        start = datetime(2020, 1, 1, tzinfo=UTC)
        outcomes = ["WIN", "LOSS", "FLAT"]
        records = []
        for i, vec in enumerate(vectors):
            j = int(source[i])
            as_of = start + timedelta(days=int(days[i]))
            outcome = outcomes[int(rng.integers(3))]
            records.append((i + 1, SCOPE, symbols[j], "BUY", outcome, float(rng.normal(0, 0.05)), as_of,
                            as_of + timedelta(days=5), texts[j], vec, model))
        with Stopwatch() as copy_time:
            await conn.copy_records_to_table("trade_embeddings", records=records, columns=COLUMNS)
        await conn.execute("SELECT setval(pg_get_serial_sequence('trade_embeddings', 'id'), $1)", len(vectors))
        await conn.execute("SET maintenance_work_mem = '1GB'")
        workers = 1
        with Stopwatch() as build_time:
            try:
                await conn.execute(f"SET max_parallel_maintenance_workers = {workers}")
                await conn.execute(indexdef)
            except asyncpg.PostgresError as exc:  # e.g. too little shared memory for a parallel build
                print(f"[vector_recall] parallel index build failed ({exc}); building serially", flush=True)
                workers = 0
                await conn.execute("SET max_parallel_maintenance_workers = 0")
                await conn.execute(indexdef)
        await conn.execute("VACUUM ANALYZE trade_embeddings")
        size = await conn.fetchval(f"SELECT pg_size_pretty(pg_relation_size('{index_name}'))")
        table_size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('trade_embeddings'))")
    finally:
        await conn.close()
    return {
        "copy_seconds": round(copy_time.seconds, 2),
        "copy_rows_per_s": round(len(vectors) / copy_time.seconds),
        "index_build_seconds": round(build_time.seconds, 2),
        "index_build_parallel_workers": workers,
        "index_definition": indexdef,
        "index_size": size,
        "table_size": table_size,
    }


async def measure(url: str, queries: np.ndarray, query_texts: list[str], embedder: Any,
                  exact: list[set[int]]) -> dict[str, Any]:
    """Latency and recall through PgTradeMemory.similar, through raw SQL, and of exact search in SQL.

    The main methods are measured paired: every query goes through each of them in turn (rotating the
    order), so background load on a shared machine affects them alike.
    """
    import asyncpg
    from pgvector.asyncpg import register_vector

    from adapters.postgres.engine import make_engine, make_sessionmaker
    from adapters.postgres.vector_memory import PgTradeMemory
    from domain.memory import MemoryFilters

    ef_search = int(inspect.signature(PgTradeMemory.__init__).parameters["ef_search"].default)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    filters = MemoryFilters(scope=SCOPE)
    raw_conn = await asyncpg.connect(dsn)
    text_conn = await asyncpg.connect(dsn)  # no vector codec: vectors travel as text, like the adapter's
    try:
        await register_vector(raw_conn)
        for conn in (raw_conn, text_conn):
            await conn.execute(f"SET hnsw.ef_search = {ef_search}")
        raw = _raw_sql_query(await raw_conn.prepare(RAW_SQL))
        methods = {"memory": _memory_query(sessionmaker, embedder, filters, ef_search),
                   "memory_alt_ef": _memory_query(sessionmaker, embedder, filters, ALT_EF_SEARCH),
                   "raw_sql": raw,
                   "raw_sql_adapter_shaped": _shaped_sql_query(await text_conn.prepare(SHAPED_SQL))}
        out = await _paired(methods, queries, exact)
        out["memory"]["ef_search"] = max(ef_search, K)
        out["memory_alt_ef"]["ef_search"] = max(ALT_EF_SEARCH, K)
        out["raw_sql"].update(sql=RAW_SQL, ef_search=ef_search)
        out["raw_sql_adapter_shaped"].update(sql=SHAPED_SQL, ef_search=ef_search)
        out["memory_text_query_latency_ms"] = await _text_query_latency(sessionmaker, embedder, filters, query_texts)
        out.update(await _memory_plan(raw_conn, queries))
        out["raw_sql_by_ef_search"] = await _ef_sweep(raw_conn, raw, queries, exact)
        out["exact_sql"] = await _exact_sql(raw_conn, queries, exact)
    finally:
        await raw_conn.close()
        await text_conn.close()
        await engine.dispose()
    return out


def _memory_query(sessionmaker: Any, embedder: Any, filters: Any, ef: int) -> TimedQuery:
    """A query through PgTradeMemory.similar with `ef` as hnsw.ef_search, in a new session."""
    from adapters.postgres.vector_memory import PgTradeMemory

    async def query_memory(q: np.ndarray) -> tuple[float, list[int]]:
        vec = q.tolist()
        async with sessionmaker() as session:
            memory = PgTradeMemory(session, embedder, ef_search=ef)
            t0 = time.perf_counter()
            items = await memory.similar(vec, k=K, as_of=AS_OF, filters=filters)
            return time.perf_counter() - t0, [int(i.record.id) for i in items if i.record.id is not None]

    return query_memory


def _raw_sql_query(stmt: Any) -> TimedQuery:
    """A query through the prepared RAW_SQL (binary vector codec)."""

    async def query_raw_sql(q: np.ndarray) -> tuple[float, list[int]]:
        t0 = time.perf_counter()
        rows = await stmt.fetch(q)
        return time.perf_counter() - t0, [r["id"] for r in rows]

    return query_raw_sql


def _shaped_sql_query(stmt: Any) -> TimedQuery:
    """A query through the prepared SHAPED_SQL, the vector sent as text like the adapter's."""

    async def query_shaped_sql(q: np.ndarray) -> tuple[float, list[int]]:
        literal = "[" + ",".join(repr(float(x)) for x in q) + "]"
        t0 = time.perf_counter()
        rows = await stmt.fetch(literal, SCOPE, AS_OF)
        return time.perf_counter() - t0, [r["id"] for r in rows]

    return query_shaped_sql


async def _paired(methods: dict[str, TimedQuery], queries: np.ndarray, exact: list[set[int]]) -> dict[str, Any]:
    """Latency and recall of each method, every query going through all of them in a rotating order."""
    for q in queries[:50]:  # warm the pool, the statement caches and the index pages
        for fn in methods.values():
            await fn(q)
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    found: dict[str, list[list[int]]] = {name: [] for name in methods}
    names = list(methods)
    for n, q in enumerate(queries):
        for name in names[n % len(names):] + names[:n % len(names)]:
            dt, got = await methods[name](q)
            seconds[name].append(dt)
            found[name].append(got)
    return {name: {"latency_ms": percentiles_ms(seconds[name]), "recall_at_10": recall(found[name], exact)}
            for name in names}


async def _text_query_latency(sessionmaker: Any, embedder: Any, filters: Any, query_texts: list[str]) -> Any:
    """Latency percentiles of the adapter with a text query (includes encoding it)."""
    from adapters.postgres.vector_memory import PgTradeMemory

    text_seconds = []
    for text in query_texts[:50]:
        async with sessionmaker() as session:
            memory = PgTradeMemory(session, embedder)
            t0 = time.perf_counter()
            await memory.similar(text, k=K, as_of=AS_OF, filters=filters)
            text_seconds.append(time.perf_counter() - t0)
    return percentiles_ms(text_seconds)


async def _memory_plan(raw_conn: Any, queries: np.ndarray) -> dict[str, Any]:
    """Whether the plan of the adapter's query uses the HNSW index, and its first two lines."""
    plan = "\n".join(r[0] for r in await raw_conn.fetch(
        "EXPLAIN SELECT id FROM trade_embeddings WHERE scope = $1 AND as_of <= $2 "
        "ORDER BY embedding <=> $3 LIMIT 10", SCOPE, AS_OF, queries[0]))
    return {"memory_plan_uses_hnsw": "embedding_hnsw" in plan, "memory_plan": plan.split("\n")[:2]}


async def _ef_sweep(raw_conn: Any, raw: TimedQuery, queries: np.ndarray, exact: list[set[int]]) -> dict[int, Any]:
    """Raw SQL latency and recall for each hnsw.ef_search of EF_SWEEP."""
    sweep = {}
    for ef in EF_SWEEP:
        await raw_conn.execute(f"SET hnsw.ef_search = {ef}")
        for q in queries[:20]:
            await raw(q)
        runs = [await raw(q) for q in queries]
        sweep[ef] = {"latency_ms": percentiles_ms([r[0] for r in runs]),
                     "recall_at_10": recall([r[1] for r in runs], exact)}
    return sweep


async def _exact_sql(raw_conn: Any, queries: np.ndarray, exact: list[set[int]]) -> dict[str, Any]:
    """Latency and recall of RAW_SQL with index scans turned off (exact search), on N_EXACT_SQL queries."""
    await raw_conn.execute("SET enable_indexscan = off")
    await raw_conn.execute("SET enable_bitmapscan = off")
    exact_stmt = await raw_conn.prepare(RAW_SQL)
    runs = []
    for q in queries[:N_EXACT_SQL]:
        t0 = time.perf_counter()
        rows = await exact_stmt.fetch(q)
        runs.append((time.perf_counter() - t0, [r["id"] for r in rows]))
    return {"latency_ms": percentiles_ms([r[0] for r in runs]),
            "recall_at_10": recall([r[1] for r in runs], exact[:N_EXACT_SQL]),
            "queries": N_EXACT_SQL}


def run() -> dict[str, Any]:
    from adapters.embeddings.sentence_transformer import SentenceTransformerEmbedder
    from adapters.postgres import migrate
    from adapters.postgres.embedded import ensure_embedded_database, stop_embedded_server
    from entrypoints.settings import EmbeddingSettings

    started = datetime.now(UTC)
    cfg = EmbeddingSettings()
    embedder = SentenceTransformerEmbedder(cfg.model, dimension=cfg.dimension, batch_size=cfg.batch_size,
                                           device=cfg.device)
    texts = trade_texts(N_TEXTS, seed=SEED)
    query_texts = trade_texts(N_QUERIES, seed=SEED + 99)
    with Stopwatch() as encode_time:
        base = embedder.embed(texts)
        queries = embedder.embed(query_texts)
    print(f"[vector_recall] encoded {N_TEXTS + N_QUERIES} texts in {encode_time.seconds:.1f} s", flush=True)
    vectors, source = derive(base, N_TOTAL, np.random.default_rng(SEED))
    exact, numpy_seconds = exact_top_k(vectors, queries, K)

    workdir = Path(tempfile.mkdtemp(prefix="quorum-bench-"))
    pgdata = workdir / "pgdata"
    try:
        with Stopwatch() as start_time:
            url = ensure_embedded_database(pgdata)
            migrate.upgrade(url)
        print(f"[vector_recall] embedded PostgreSQL ready in {start_time.seconds:.1f} s; loading {N_TOTAL} rows",
              flush=True)
        loaded = asyncio.run(load(url, vectors, texts, source, embedder.model_name))
        print(f"[vector_recall] COPY {loaded['copy_seconds']} s, HNSW build {loaded['index_build_seconds']} s",
              flush=True)
        m = asyncio.run(measure(url, queries, query_texts, embedder, exact))
    finally:
        stop_embedded_server(pgdata)
        shutil.rmtree(workdir, ignore_errors=True)

    memory, raw = m["memory"], m["raw_sql"]
    numpy_ms = percentiles_ms(numpy_seconds)
    return write_result(
        "vector_recall",
        started=started,
        figures={
            "memory_similar_p50_ms": round(memory["latency_ms"]["p50"], 3),
            "memory_similar_p95_ms": round(memory["latency_ms"]["p95"], 3),
            "memory_similar_recall_at_10": round(memory["recall_at_10"], 4),
            "raw_sql_p50_ms": round(raw["latency_ms"]["p50"], 3),
            "raw_sql_p95_ms": round(raw["latency_ms"]["p95"], 3),
            "raw_sql_recall_at_10": round(raw["recall_at_10"], 4),
            "ef_search": memory["ef_search"],
            f"memory_similar_ef{ALT_EF_SEARCH}_p50_ms": round(m["memory_alt_ef"]["latency_ms"]["p50"], 3),
            f"memory_similar_ef{ALT_EF_SEARCH}_recall_at_10": round(m["memory_alt_ef"]["recall_at_10"], 4),
            "raw_sql_adapter_shaped_p50_ms": round(m["raw_sql_adapter_shaped"]["latency_ms"]["p50"], 3),
        },
        baselines={
            "exact_sql_p50_ms": round(m["exact_sql"]["latency_ms"]["p50"], 3),
            "exact_sql_p95_ms": round(m["exact_sql"]["latency_ms"]["p95"], 3),
            "exact_numpy_p50_ms": round(numpy_ms["p50"], 3),
            "exact_numpy_p95_ms": round(numpy_ms["p95"], 3),
        },
        ratios={
            "exact_sql_p50_over_memory_p50": round(
                m["exact_sql"]["latency_ms"]["p50"] / memory["latency_ms"]["p50"], 2),
            "memory_p50_over_raw_sql_p50": round(memory["latency_ms"]["p50"] / raw["latency_ms"]["p50"], 2),
        },
        targets=[
            Target("memory_similar_p50_ms", "<", TARGET_P50_MS, round(memory["latency_ms"]["p50"], 3), "ms"),
            Target("memory_similar_recall_at_10", ">=", TARGET_RECALL, round(memory["recall_at_10"], 4)),
        ],
        details={
            "rows": N_TOTAL,
            "encoded_texts": N_TEXTS,
            "queries": N_QUERIES,
            "k": K,
            "noise_sigma": NOISE_SIGMA,
            "model": embedder.model_name,
            "encode_seconds": round(encode_time.seconds, 1),
            "query_vectors": "fresh generated trade texts encoded with the same model (not stored)",
            "memory_path": "PgTradeMemory.similar(vector, k=10, as_of, filters=scope) in a new session per query",
            "memory_latency_ms": memory["latency_ms"],
            "memory_with_alt_ef_search": m["memory_alt_ef"],
            "raw_sql_adapter_shaped": m["raw_sql_adapter_shaped"],
            "raw_sql_by_ef_search": m["raw_sql_by_ef_search"],
            "measurement": "memory, memory_alt_ef, raw_sql and raw_sql_adapter_shaped paired per query, order rotated",
            "memory_text_query_latency_ms": m["memory_text_query_latency_ms"],
            "memory_plan_uses_hnsw": m["memory_plan_uses_hnsw"],
            "memory_plan": m["memory_plan"],
            "raw_sql": m["raw_sql"],
            "exact_sql": m["exact_sql"],
            "exact_numpy_latency_ms": numpy_ms,
            "server_start_and_migrate_seconds": round(start_time.seconds, 1),
            **loaded,
        },
    )


if __name__ == "__main__":
    run()
