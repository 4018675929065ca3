"""Backtest speed on the shipped S&P 500 data (2013-2018), PostgreSQL + pgvector and the real embedding model.

Issue #11 item 8: seconds per simulated day for 50 symbols, target < 0.25, measured on a throw-away embedded
PostgreSQL server (migrated to head) with the offline LLM policy, replaying `data/daily/sp500_2013_2018` and
`data/daily/context` (the same `--data` directories as `quorum backtest --data`), in one process:

- baseline, "old path": what a cycle did before item 8: one trade-memory query per candidate symbol (the
  `similar_many` of the memory answered by a loop of `similar`), every text sent to the model (no text cache),
  `SentenceTransformer.encode` on torch;
- figure, "new path": the container's own embedder (the text cache in front of the backend `embeddings.backend =
  auto` picks: bfloat16 on a CPU with native bfloat16, else ONNX Runtime, else torch; the JSON says which) and one
  trade-memory query per cycle;
- the new path on the ONNX Runtime backend, and the new path with `embeddings.threads = 1` (the old default; the
  new default 0 means one thread per CPU, at most 4: two here);
- the long run: 100 symbols over the whole five years of the data with the new path (`--long-days N` measures
  only the first N sessions and extrapolates; the JSON says so).

Each run reports wall and CPU seconds per day, the split between the model, the database and the rest, the
texts asked for and the texts that reached the model, and the SQL statements per day. The old and new paths
should make nearly the same decisions (their vectors differ by < 1e-3 cosine: ~1e-7 for ONNX, ~5e-5 for bfloat16,
so a recalled distance can move in the 4th decimal): the JSON compares fills, decisions and final equity.

Usage: `python -m bench.backtest_speed_real [--start D --end D] [--long-days N | --no-long]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench.backtest_speed import (
    EmbeddedPostgres,
    TimedEmbedder,
    TimedUnitOfWork,
    Timings,
    _server_cpu_seconds,
    _settings,
    attach_sql_timer,
)
from bench.common import Target, write_result

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
DATA = (ROOT / "data/daily/sp500_2013_2018", ROOT / "data/daily/context")
START, END = date(2016, 1, 4), date(2016, 12, 30)
LONG_START, LONG_END = date(2013, 5, 13), date(2018, 2, 7)  # 60 sessions of history before the start
N_SYMBOLS, LONG_SYMBOLS = 50, 100
TARGET_SECONDS_PER_DAY = 0.25


class PerQueryTradeMemory:
    """The trade memory as the cycle used it before batched recall: `similar_many` is one `similar` per query."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)

    async def similar_many(self, queries: Sequence[Any], **kwargs: Any) -> list[Any]:
        return [await self._inner.similar(q, **kwargs) for q in queries]


class PerQueryUnitOfWork:
    """A unit of work whose trade memory answers `similar_many` query by query (the old path)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aenter__(self) -> PerQueryUnitOfWork:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)

    async def commit(self) -> None:
        await self._inner.commit()

    async def rollback(self) -> None:
        await self._inner.rollback()

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        return PerQueryTradeMemory(value) if attr == "trade_memory" else value


def _settings_for(backend: str, threads: int) -> Any:
    s = _settings()
    return s.model_copy(update={"embeddings": s.embeddings.model_copy(update={"backend": backend,
                                                                             "threads": threads})})


def _old_embedder(settings: Any) -> Any:
    from adapters.embeddings.backends import build_embedder

    e = settings.embeddings
    return build_embedder(e.model, backend="torch", dimension=e.dimension, batch_size=e.batch_size,
                          device=e.device, threads=e.threads, cache_dir=e.cache_dir)


async def backtest(path: str, url: str, pgdata: Path, *, start: date, end: date, n_symbols: int,
                   backend: str = "auto", threads: int = 0, max_days: int | None = None) -> dict[str, Any]:
    """One backtest on the shipped data: `path` "old" (per-symbol recall, no text cache, torch) or "new" (the
    container's embedder on `backend`, batched recall)."""
    from dependency_injector import providers
    from pydantic import SecretStr

    from adapters.embeddings.sentence_transformer import default_threads
    from adapters.inmemory.universe_file import read_universes
    from entrypoints.commands.backtest import choose_symbols
    from entrypoints.container import build_container, close_container

    backend, threads = ("torch", 1) if path == "old" else (backend, threads)
    settings = _settings_for(backend, threads).model_copy(update={"database_url": SecretStr(url)})
    scope = f"backtest:bench-real-{path}-{backend}-{threads}-{datetime.now(UTC):%H%M%S%f}"
    container = build_container(settings, "backtest", storage="postgres", scope=scope, start=start, end=end,
                                cash=settings.risk.starting_capital, n_symbols=n_symbols, data_dirs=list(DATA))
    timings = Timings()
    t_load = time.perf_counter()
    inner = _old_embedder(settings) if path == "old" else container.embedder()
    model_name = inner.model_name  # loads the model (and exports/checks ONNX on a first run)
    loaded_backend = str(getattr(inner, "backend", "?"))
    load_s = time.perf_counter() - t_load
    embedder = TimedEmbedder(inner, timings)
    container.embedder.override(providers.Object(embedder))
    inner_factory = container.uow_factory()
    engine = container.engine()
    attach_sql_timer(engine.sync_engine, timings)
    recall_sql = _count_recall_statements(engine.sync_engine)

    def uow_factory() -> TimedUnitOfWork:
        uow = inner_factory()
        return TimedUnitOfWork(PerQueryUnitOfWork(uow) if path == "old" else uow, timings)

    container.uow_factory.override(providers.Object(uow_factory))
    symbols = await choose_symbols(container, read_universes(list(DATA)), start, n_symbols)
    if len(symbols) < n_symbols:
        raise RuntimeError(f"only {len(symbols)} of {n_symbols} symbols have 60 sessions of history before {start}")
    container.run.symbols.from_value(symbols)
    sessions = container.calendar().sessions(start, end)
    if max_days is not None and len(sessions) > max_days:
        end = sessions[max_days - 1]
    runner = container.backtest_runner()
    embedder.embed(["warm-up: the first call allocates buffers"])
    timings.embed_s, timings.embed_cpu_s, timings.embed_calls, timings.embed_texts = 0.0, 0.0, 0, 0
    model_texts0 = getattr(inner, "texts_embedded", 0)
    load_before, server_cpu0 = os.getloadavg(), _server_cpu_seconds(pgdata)
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = await runner.run(run_id=scope, start=start, end=end, symbols=symbols)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    server_cpu1, load_after = _server_cpu_seconds(pgdata), os.getloadavg()
    model_texts = getattr(inner, "texts_embedded", None)
    async with uow_factory() as uow:
        trade_memories = await uow.trade_memory.count(scope=scope)
    await close_container(container)
    days = len(result.equity)
    db_s, sql_n = timings.persistence_s, sum(timings.sql_statements.values())
    out: dict[str, Any] = {
        "path": path, "backend_asked": backend, "backend": loaded_backend, "threads": threads,
        "threads_used": threads or default_threads(),
        "embedding_model": model_name,
        "period": [start.isoformat(), end.isoformat()], "sessions": days, "symbols": len(symbols),
        "wall_s": round(wall, 2), "seconds_per_day": round(wall / days, 4),
        "cpu_seconds_per_day_this_process": round(cpu / days, 4),
        "embedding_seconds_per_day": round(timings.embed_s / days, 4),
        "embedding_cpu_seconds_per_day": round(timings.embed_cpu_s / days, 4),
        "database_seconds_per_day": round(db_s / days, 4),
        "sql_round_trip_seconds_per_day": round(timings.sql_s / days, 4),
        "rest_seconds_per_day": round((wall - timings.embed_s - db_s) / days, 4),
        "texts_requested_per_day": round(timings.embed_texts / days, 2),
        "texts_embedded_by_the_model_per_day": round(
            (timings.embed_texts if model_texts is None else model_texts - model_texts0) / days, 2),
        "embedding_ms_per_requested_text": round(1000 * timings.embed_s / max(1, timings.embed_texts), 2),
        "sql_statements_per_day": round(sql_n / days, 1),
        "trade_memory_queries_per_day": round(recall_sql[0] / days, 2),
        "recall_calls": {k: n for k, n in timings.persistence_calls.items() if k.startswith("trade_memory.similar")},
        "fills": len(result.fills), "decisions": len(result.decisions), "failed_cycles": result.failed_cycles,
        "final_equity": str(result.equity[-1].equity), "trade_memories": trade_memories,
        "model_load_s": round(load_s, 2),
        "postgres_server_cpu_s": (round(server_cpu1 - server_cpu0, 2)
                                  if server_cpu0 is not None and server_cpu1 is not None else None),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
    }
    print(f"[backtest_speed_real] {path} ({loaded_backend}, {out['threads_used']} thread(s)), {len(symbols)} symbols: "
          f"{days} sessions in {wall:.1f}s = {wall / days:.3f} s/day (model {out['embedding_seconds_per_day']:.3f}, "
          f"database {out['database_seconds_per_day']:.3f}); {out['texts_embedded_by_the_model_per_day']} texts/day "
          f"reach the model; load {load_before[0]:.2f} -> {load_after[0]:.2f}", flush=True)
    return out


def _count_recall_statements(sync_engine: Any) -> list[int]:
    """A one-element list counting the nearest-neighbour statements on trade_embeddings sent by `sync_engine`."""
    from sqlalchemy import event

    seen = [0]

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "trade_embeddings" in statement and "<=>" in statement:
            seen[0] += 1

    return seen


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] for k in ("fills", "decisions", "final_equity", "trade_memories"))


async def _measure(url: str, pgdata: Path, args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, Any] = {}
    kw = {"start": args.start, "end": args.end, "n_symbols": N_SYMBOLS}
    # old, new, new, old: the mean of each pair evens out load that drifts during the run
    runs["old"] = [await backtest("old", url, pgdata, **kw)]
    runs["new"] = [await backtest("new", url, pgdata, **kw)]
    runs["new"].append(await backtest("new", url, pgdata, **kw))
    runs["old"].append(await backtest("old", url, pgdata, **kw))
    runs["new_onnx"] = [await backtest("new", url, pgdata, backend="onnx", **kw)]
    runs["new_1_thread"] = [await backtest("new", url, pgdata, threads=1, **kw)]
    if not args.no_long:
        runs["long"] = [await backtest("new", url, pgdata, start=LONG_START, end=LONG_END, n_symbols=LONG_SYMBOLS,
                                       max_days=args.long_days)]
    return runs


def _mean(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.fmean(r[key] for r in runs), 4)


def _long(run: dict[str, Any], full_sessions: int) -> dict[str, Any]:
    spd = run["seconds_per_day"]
    out = {"seconds_per_day": spd, "sessions_measured": run["sessions"], "sessions_in_five_years": full_sessions,
           "wall_s_measured": run["wall_s"]}
    if run["sessions"] < full_sessions:
        out["extrapolated_wall_s_for_five_years"] = round(spd * full_sessions, 1)
        out["extrapolation"] = ("measured on the first sessions only; five-year wall time = seconds per day x "
                                "sessions (the trade memory grows over the run, so later days query a larger table)")
    else:
        out["wall_s_for_five_years"] = run["wall_s"]
    return out


def run(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.backtest_speed_real", description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=date.fromisoformat, default=START)
    parser.add_argument("--end", type=date.fromisoformat, default=END)
    parser.add_argument("--long-days", type=int, default=None, help="measure only the first N sessions of the "
                        "five-year, 100-symbol run and extrapolate")
    parser.add_argument("--no-long", action="store_true", help="skip the five-year, 100-symbol run")
    args = parser.parse_args(argv or [])
    started = datetime.now(UTC)
    with EmbeddedPostgres() as pg:
        runs = asyncio.run(_measure(pg.url, pg.pgdata, args))
    old, new, onnx, one = runs["old"], runs["new"], runs["new_onnx"], runs["new_1_thread"]
    figures: dict[str, Any] = {
        "new_seconds_per_day_50_symbols": _mean(new, "seconds_per_day"),
        "new_seconds_per_day_50_symbols_each_run": [r["seconds_per_day"] for r in new],
        "new_onnx_seconds_per_day_50_symbols": onnx[0]["seconds_per_day"],
        "new_1_thread_seconds_per_day_50_symbols": one[0]["seconds_per_day"],
        "new_threads": new[0]["threads_used"],
        "new_embedding_seconds_per_day": _mean(new, "embedding_seconds_per_day"),
        "new_embedding_cpu_seconds_per_day": _mean(new, "embedding_cpu_seconds_per_day"),
        "new_backend": new[0]["backend"],
        "new_texts_embedded_by_the_model_per_day": new[0]["texts_embedded_by_the_model_per_day"],
        "new_trade_memory_queries_per_day": new[0]["trade_memory_queries_per_day"],
    }
    if "long" in runs:
        from adapters.calendar.nyse import NyseCalendar

        full = len(NyseCalendar().sessions(LONG_START, LONG_END))
        figures["long_100_symbols_five_years"] = _long(runs["long"][0], full)
    new_spd, old_spd = figures["new_seconds_per_day_50_symbols"], _mean(old, "seconds_per_day")
    return write_result(
        "backtest_speed_real",
        started=started,
        figures=figures,
        baselines={"old_seconds_per_day_50_symbols": old_spd,
                   "old_seconds_per_day_50_symbols_each_run": [r["seconds_per_day"] for r in old],
                   "old_embedding_seconds_per_day": _mean(old, "embedding_seconds_per_day"),
                   "old_embedding_cpu_seconds_per_day": _mean(old, "embedding_cpu_seconds_per_day"),
                   "old_texts_embedded_by_the_model_per_day": old[0]["texts_embedded_by_the_model_per_day"],
                   "old_trade_memory_queries_per_day": old[0]["trade_memory_queries_per_day"]},
        ratios={"new_over_old_seconds_per_day": round(new_spd / old_spd, 3),
                "new_over_old_cpu_seconds_per_day": round(_mean(new, "cpu_seconds_per_day_this_process")
                                                          / _mean(old, "cpu_seconds_per_day_this_process"), 3),
                "new_over_old_embedding_seconds_per_day": round(_mean(new, "embedding_seconds_per_day")
                                                                / _mean(old, "embedding_seconds_per_day"), 3),
                "new_onnx_over_old_seconds_per_day": round(onnx[0]["seconds_per_day"] / old_spd, 3),
                "new_1_thread_over_old_seconds_per_day": round(one[0]["seconds_per_day"] / old_spd, 3)},
        targets=[Target("new_seconds_per_day_50_symbols", "<", TARGET_SECONDS_PER_DAY, new_spd, "s")],
        details={
            "data": [str(d.relative_to(ROOT)) for d in DATA],
            "period_50_symbols": [args.start.isoformat(), args.end.isoformat()],
            "llm": "offline policy (every agent)",
            "same_trades_old_and_new": all(_same(old[0], r) for r in [*old, *new, *onnx, *one]),
            "trades_of_each_run": {k: [{f: r[f] for f in ("fills", "decisions", "final_equity", "trade_memories")}
                                       for r in v] for k, v in runs.items()},
            "method": "one process, one embedded PostgreSQL server, runs in the order old, new, new, old, new on "
                      "the ONNX backend, new with 1 model thread, then the long run; each run its own scope (empty "
                      "memory at the start). Seconds per day = wall seconds of BacktestRunner.run / sessions (model "
                      "load, export and wiring excluded, one warm-up embedding call before the run); old and new "
                      "figures are the means of their two runs. Model = time inside Embedder.embed as the cycle "
                      "calls it (text-cache lookups included); database = unit-of-work calls minus the embedding "
                      "inside them.",
            "old_path": "per-symbol trade-memory queries (similar_many answered by a loop of similar), no text "
                        "cache, SentenceTransformer.encode on torch in float32, 1 thread (the old default)",
            "new_path": "the container's embedder (text cache in front of the backend embeddings.backend=auto "
                        "picks: bf16 on a CPU with native bfloat16, else onnx, else torch) and one trade-memory "
                        "query per cycle (LATERAL join over the unnested query vectors), embeddings.threads=0 (one "
                        "per CPU, at most 4; idle OpenMP threads sleep: OMP_WAIT_POLICY=PASSIVE)",
            "runs": runs,
        },
    )


if __name__ == "__main__":
    import sys

    run(sys.argv[1:])
