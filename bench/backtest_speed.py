"""Backtest speed: a 6-month backtest of 50 synthetic symbols with the offline LLM, twice in one process.

- baseline: in-memory repositories and the hashing embedder (container mode "test");
- figure: a throw-away embedded PostgreSQL + pgvector (migrated to head) and the real sentence-transformers
  model (container mode "backtest").

Both runs trade the same seeded synthetic market over the same sessions with the same settings. Reported:
wall seconds per simulated trading day of each run, their ratio, and the share of the run spent embedding
(time inside `Embedder.embed`), in the database and in the rest (the application itself: market data, features,
agents, limits, simulated broker).

Database time is measured two ways. "database" is the time inside the persistence layer: every call on a
repository or vector memory of a unit of work, plus `commit`, `rollback`, entering and leaving the unit of
work, minus the embedding done inside those calls (vector memories embed texts when they store or are queried
by text). For the in-memory run that is all there is; for PostgreSQL it is split into SQL round trips (wall
time between SQLAlchemy's `before_cursor_execute` and `after_cursor_execute` events on the engine) and the
rest of it (SQLAlchemy statement building, ORM, connection checkout with pre-ping, asyncpg, adapter code).
Wall times are inflated by other work on the machine: the load average and the process CPU seconds are kept
with the figures.

`python -m bench.backtest_speed --profile out.html` profiles the PostgreSQL run with pyinstrument instead.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.common import write_result

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SEED = 20240102
N_SYMBOLS = 50
START, END = date(2024, 1, 2), date(2024, 6, 28)
REPOSITORIES = ("trade_memory", "condition_memory", "symbol_memory", "events", "orders", "fills", "positions",
                "equity", "cycles", "state", "llm_calls", "alerts", "watchlist", "suggestions", "discovered")


@dataclass
class Timings:
    """Seconds accumulated by the timing proxies and engine events of one run."""

    embed_s: float = 0.0
    embed_cpu_s: float = 0.0
    embed_calls: int = 0
    embed_texts: int = 0
    persistence_s: float = 0.0
    persistence_cpu_s: float = 0.0
    persistence_calls: Counter[str] = field(default_factory=Counter)
    sql_s: float = 0.0
    sql_statements: Counter[str] = field(default_factory=Counter)
    units_of_work: int = 0


class TimedEmbedder:
    """An `Embedder` that adds the seconds spent in the wrapped embedder's `embed` to `timings`."""

    def __init__(self, inner: Any, timings: Timings) -> None:
        self._inner = inner
        self._t = timings

    @property
    def model_name(self) -> str:
        return str(self._inner.model_name)

    @property
    def dimension(self) -> int:
        return int(self._inner.dimension)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return self._inner.embed(texts)  # type: ignore[no-any-return]
        finally:
            self._t.embed_s += time.perf_counter() - t0
            self._t.embed_cpu_s += time.process_time() - c0
            self._t.embed_calls += 1
            self._t.embed_texts += len(texts)


class _TimedRepository:
    """Times every coroutine method of a repository, minus the embedding done inside it."""

    def __init__(self, name: str, inner: Any, timings: Timings) -> None:
        self._name, self._inner, self._t = name, inner, timings

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if not inspect.iscoroutinefunction(value):
            return value
        t, label = self._t, f"{self._name}.{attr}"

        async def timed(*args: Any, **kwargs: Any) -> Any:
            e0, ec0, t0, c0 = t.embed_s, t.embed_cpu_s, time.perf_counter(), time.process_time()
            try:
                return await value(*args, **kwargs)
            finally:
                t.persistence_s += time.perf_counter() - t0 - (t.embed_s - e0)
                t.persistence_cpu_s += time.process_time() - c0 - (t.embed_cpu_s - ec0)
                t.persistence_calls[label] += 1

        return timed


class TimedUnitOfWork:
    """A unit of work whose repositories, commit, rollback, enter and exit are timed."""

    def __init__(self, inner: Any, timings: Timings) -> None:
        self._inner, self._t = inner, timings
        self._repos: dict[str, _TimedRepository] = {}

    async def _timed(self, label: str, call: Any) -> Any:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return await call
        finally:
            self._t.persistence_s += time.perf_counter() - t0
            self._t.persistence_cpu_s += time.process_time() - c0
            self._t.persistence_calls[label] += 1

    async def __aenter__(self) -> TimedUnitOfWork:
        self._repos = {}
        self._t.units_of_work += 1
        await self._timed("uow.enter", self._inner.__aenter__())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._timed("uow.exit", self._inner.__aexit__(*exc))

    async def commit(self) -> None:
        await self._timed("uow.commit", self._inner.commit())

    async def rollback(self) -> None:
        await self._timed("uow.rollback", self._inner.rollback())

    def __getattr__(self, attr: str) -> Any:
        if attr not in REPOSITORIES:
            return getattr(self._inner, attr)
        repo = self._repos.get(attr)
        if repo is None:
            repo = self._repos[attr] = _TimedRepository(attr, getattr(self._inner, attr), self._t)
        return repo


def _statement_kind(statement: str) -> str:
    words = statement.split()
    if not words:
        return "?"
    verb = words[0].upper()
    if verb in ("SELECT", "DELETE"):
        low = [w.lower() for w in words]
        if "from" not in low or low.index("from") + 1 >= len(low):
            return " ".join(words[:2])[:40]  # e.g. SELECT set_config(...)
        return f"{verb} {low[low.index('from') + 1]}"
    if verb in ("INSERT", "UPDATE"):
        return f"{verb} {words[2] if verb == 'INSERT' and len(words) > 2 else words[1]}"
    return " ".join(words[:3])


def attach_sql_timer(sync_engine: Any, timings: Timings) -> None:
    """Sum the wall time of every cursor execution of `sync_engine` (the engine behind an AsyncEngine)."""
    from sqlalchemy import event

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        conn.info.setdefault("bench_t0", []).append(time.perf_counter())

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        timings.sql_s += time.perf_counter() - conn.info["bench_t0"].pop()
        timings.sql_statements[_statement_kind(statement)] += 1


def _settings() -> Any:
    from entrypoints.settings import load_settings

    s = load_settings(env="backtest")
    offline = s.llm.model_copy(update={"signal_model": "offline", "risk_model": "offline",
                                       "validator_model": "offline", "picker_model": "offline"})
    return s.model_copy(update={"llm": offline})


def _server_cpu_seconds(pgdata: Path | None) -> float | None:
    """CPU seconds used so far by the embedded server (postmaster and its backends)."""
    if pgdata is None:
        return None
    try:
        import psutil

        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        total = 0.0
        for p in procs:
            try:
                c = p.cpu_times()
                total += c.user + c.system
            except psutil.Error:
                continue
        return total
    except Exception:
        return None


async def backtest(mode: str, *, url: str | None = None, pgdata: Path | None = None, start: date = START,
                   end: date = END, n_symbols: int = N_SYMBOLS, seed: int = SEED,
                   wrap_run: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Run one backtest in container `mode` ("test" or "backtest" with `url`) and return its timings."""
    from dependency_injector import providers
    from pydantic import SecretStr

    from application.liquidity import most_liquid_before
    from entrypoints.container import build_container, close_container
    from entrypoints.wiring.venue import NOT_STOCKS

    settings = _settings()
    if url is not None:
        settings = settings.model_copy(update={"database_url": SecretStr(url)})
    scope = f"backtest:bench-{mode}-{datetime.now(UTC):%H%M%S}"
    container = build_container(settings, "backtest", storage="memory" if mode == "test" else "postgres",
                                scope=scope, start=start, end=end, cash=settings.risk.starting_capital,
                                n_symbols=n_symbols, seed=seed)
    timings = Timings()
    t_load = time.perf_counter()
    embedder = TimedEmbedder(container.embedder(), timings)
    load_s = time.perf_counter() - t_load
    container.embedder.override(providers.Object(embedder))
    inner_factory = container.uow_factory()
    engine = container.engine() if mode != "test" else None
    if engine is not None:
        attach_sql_timer(engine.sync_engine, timings)

    def uow_factory() -> TimedUnitOfWork:
        return TimedUnitOfWork(inner_factory(), timings)

    container.uow_factory.override(providers.Object(uow_factory))
    t_build = time.perf_counter()
    symbols = await most_liquid_before(container.market(), container.calendar(), start, n_symbols, exclude=NOT_STOCKS)
    container.run.symbols.from_value(symbols)
    runner = container.backtest_runner()
    build_s = time.perf_counter() - t_build
    embedder.embed(["warm-up: the first call allocates buffers"])  # not part of any simulated day
    timings.embed_s, timings.embed_cpu_s, timings.embed_calls, timings.embed_texts = 0.0, 0.0, 0, 0
    load_before = os.getloadavg()
    server_cpu0 = _server_cpu_seconds(pgdata)
    cpu0, t0 = time.process_time(), time.perf_counter()
    coro = runner.run(run_id=scope, start=start, end=end, symbols=symbols)
    result = await (wrap_run(coro) if wrap_run else coro)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    server_cpu1 = _server_cpu_seconds(pgdata)
    load_after = os.getloadavg()
    async with uow_factory() as uow:
        trade_memories = await uow.trade_memory.count(scope=scope)
        condition_memories = await uow.condition_memory.count(scope=scope)
    await close_container(container)
    days = len(result.equity)
    db_s = timings.persistence_s
    rest_s = wall - timings.embed_s - db_s
    out: dict[str, Any] = {
        "mode": mode,
        "embedding_model": embedder.model_name,
        "sessions": days,
        "symbols": len(symbols),
        "wall_s": round(wall, 2),
        "seconds_per_day": round(wall / days, 4),
        "cpu_s_this_process": round(cpu, 2),
        "cpu_seconds_per_day_this_process": round(cpu / days, 4),
        "embedding_s": round(timings.embed_s, 2),
        "database_s": round(db_s, 2),
        "rest_s": round(rest_s, 2),
        "shares": {"embedding": round(timings.embed_s / wall, 4), "database": round(db_s / wall, 4),
                   "rest": round(rest_s / wall, 4)},
        "cpu_shares_this_process": {
            "embedding": round(timings.embed_cpu_s / cpu, 4), "database": round(timings.persistence_cpu_s / cpu, 4),
            "rest": round((cpu - timings.embed_cpu_s - timings.persistence_cpu_s) / cpu, 4)},
        "embed_calls": timings.embed_calls,
        "embedded_texts": timings.embed_texts,
        "embedded_texts_per_day": round(timings.embed_texts / days, 1),
        "persistence_calls": sum(timings.persistence_calls.values()),
        "units_of_work": timings.units_of_work,
        "top_persistence_calls": dict(timings.persistence_calls.most_common(12)),
        "fills": len(result.fills),
        "decisions": len(result.decisions),
        "failed_cycles": result.failed_cycles,
        "final_equity": str(result.equity[-1].equity),
        "trade_memories": trade_memories,
        "condition_memories": condition_memories,
        "setup_s": {"embedder_load": round(load_s, 2), "build_runner": round(build_s, 2)},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
    if engine is not None:
        adapter_s = db_s - timings.sql_s
        out["database_split"] = {
            "sql_round_trips_s": round(timings.sql_s, 2),
            "sqlalchemy_asyncpg_adapter_s": round(adapter_s, 2),
            "sql_share_of_wall": round(timings.sql_s / wall, 4),
            "adapter_share_of_wall": round(adapter_s / wall, 4),
        }
        out["sql_statements"] = sum(timings.sql_statements.values())
        out["sql_statements_per_day"] = round(out["sql_statements"] / days, 1)
        out["top_sql_statements"] = dict(timings.sql_statements.most_common(12))
        if server_cpu0 is not None and server_cpu1 is not None:
            out["postgres_server_cpu_s"] = round(server_cpu1 - server_cpu0, 2)
    print(f"[backtest_speed] {mode}: {days} sessions in {wall:.1f}s = {wall / days:.3f} s/day "
          f"(embedding {out['shares']['embedding']:.0%}, database {out['shares']['database']:.0%}, "
          f"rest {out['shares']['rest']:.0%}); load {load_before[0]:.2f} -> {load_after[0]:.2f}", flush=True)
    return out


class EmbeddedPostgres:
    """A throw-away embedded server in a temp dir, migrated to head; stopped and removed on exit."""

    def __enter__(self) -> EmbeddedPostgres:
        from adapters.postgres import migrate
        from adapters.postgres.embedded import ensure_embedded_database

        self.workdir = Path(tempfile.mkdtemp(prefix="quorum-bench-backtest-"))
        self.pgdata = self.workdir / "pgdata"
        try:
            self.url = ensure_embedded_database(self.pgdata)
            migrate.upgrade(self.url)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        from adapters.postgres.embedded import stop_embedded_server

        try:
            stop_embedded_server(self.pgdata)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


def run() -> dict[str, Any]:
    started = datetime.now(UTC)
    before = asyncio.run(backtest("test"))
    with EmbeddedPostgres() as pg:
        postgres = asyncio.run(backtest("backtest", url=pg.url, pgdata=pg.pgdata))
    after = asyncio.run(backtest("test"))  # the in-memory run again: load on the machine drifts during the long run
    memory_spd = round((before["seconds_per_day"] + after["seconds_per_day"]) / 2, 4)
    memory_cpu = round((before["cpu_seconds_per_day_this_process"] + after["cpu_seconds_per_day_this_process"]) / 2, 4)
    ratio = postgres["seconds_per_day"] / memory_spd
    cpu_ratio = postgres["cpu_seconds_per_day_this_process"] / memory_cpu
    same = all(postgres[k] == before[k] == after[k] for k in ("fills", "decisions", "final_equity", "trade_memories"))
    return write_result(
        "backtest_speed",
        started=started,
        figures={"postgres_real_model_seconds_per_day": postgres["seconds_per_day"],
                 "postgres_real_model_shares": postgres["shares"],
                 "postgres_database_split": postgres["database_split"],
                 "postgres_real_model_cpu_seconds_per_day": postgres["cpu_seconds_per_day_this_process"]},
        baselines={"inmemory_hashing_seconds_per_day": memory_spd,
                   "inmemory_hashing_seconds_per_day_each_run": [before["seconds_per_day"], after["seconds_per_day"]],
                   "inmemory_hashing_shares_each_run": [before["shares"], after["shares"]],
                   "inmemory_hashing_cpu_seconds_per_day": memory_cpu},
        ratios={"postgres_over_inmemory_seconds_per_day": round(ratio, 3),
                "postgres_over_inmemory_cpu_seconds_per_day": round(cpu_ratio, 3)},
        targets=[],
        details={
            "period": [START.isoformat(), END.isoformat()],
            "symbols": N_SYMBOLS,
            "seed": SEED,
            "llm": "offline policy (every agent)",
            "same_trades_in_all_runs": same,
            "method": "in one process: in-memory, PostgreSQL + model, in-memory again (the baseline is the mean "
                      "of the two in-memory runs); seconds per day = wall seconds of BacktestRunner.run / sessions "
                      "(market generation, model load and wiring excluded, one embedding warm-up call before the run). "
                      "embedding = time inside Embedder.embed; database = time inside unit-of-work repository and "
                      "memory calls, commit, rollback, enter and exit, minus the embedding inside them; rest = wall "
                      "- embedding - database. For PostgreSQL the database time is split into SQL round trips "
                      "(engine before/after_cursor_execute) and adapter overhead. CPU figures are this process only "
                      "(the server's CPU is postgres_server_cpu_s).",
            "inmemory_hashing_runs": [before, after],
            "postgres_real_model": postgres,
        },
    )


async def _profiled(coro: Any, profiler: Any) -> Any:
    profiler.start()
    try:
        return await coro
    finally:
        profiler.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=Path, help="profile the PostgreSQL run into this .html or .txt file")
    parser.add_argument("--mode", choices=("backtest", "test"), default="backtest", help="run to profile")
    args = parser.parse_args()
    if args.profile is None:
        run()
        return
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="enabled", interval=0.005)
    if args.mode == "test":
        asyncio.run(backtest("test", wrap_run=lambda c: _profiled(c, profiler)))
    else:
        with EmbeddedPostgres() as pg:
            asyncio.run(backtest("backtest", url=pg.url, pgdata=pg.pgdata, wrap_run=lambda c: _profiled(c, profiler)))
    out: Path = args.profile
    out.write_text(profiler.output_html() if out.suffix == ".html" else profiler.output_text(show_all=False))
    print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
