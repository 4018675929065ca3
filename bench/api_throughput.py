"""API throughput and latency on loopback, against a bare Litestar hello-world endpoint in the same run.

Two uvicorn servers run in child processes on 127.0.0.1: the Quorum API (in-memory container,
simulated paper broker holding the positions of one cycle, a queue that accepts jobs without
running them) and a one-route Litestar app. An httpx.AsyncClient pool (CONCURRENCY connections,
keep-alive) sends N_REQUESTS per scenario after a warm-up, and we report req/s and p50/p99 latency:

- hello_world: GET /hello on the bare app (the baseline: what Litestar, uvicorn and this client
  can do on this machine);
- portfolio: GET /api/portfolio (broker account and positions, stops from the state store, quotes);
- cycles_run_new: POST /api/cycles/run?type=manual&symbol=<unique> with the API key: every request
  validates, writes a queued cycle record and enqueues a job;
- cycles_run_event_dedupe: POST /api/cycles/run?type=event over 50 symbols: after the first 50,
  every request is answered from the cooldown (the event monitor's common case).

Servers log at WARNING (one info line per queued cycle would otherwise be measured too). The
client runs in this process; wrk is used for nothing (it is usually not installed), so the
hello-world figure is also the ceiling of the client.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import socket
import string
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

from bench.common import Target, percentiles_ms, write_result

N_REQUESTS = 2_000
WARMUP = 200
CONCURRENCY = 16
API_KEY = "bench-api-key-3f1c9e2a7b"
EVENT_SYMBOLS = 50


class _AcceptingQueue:
    """Takes every job and runs none (the benchmark measures the API, not the cycle)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    async def enqueue(self, job: Any) -> bool:
        if job.cycle_id in self.ids:
            return False
        self.ids.add(job.cycle_id)
        return True


async def _quorum_app() -> Any:
    from adapters.inmemory.clock import SimClock
    from entrypoints.api import create_app
    from entrypoints.api.wiring import build_api_services
    from entrypoints.container import build_container
    from entrypoints.live import build_live_app
    from entrypoints.settings import Settings

    settings = Settings(_env_file=None, env="test", api_key=API_KEY)  # type: ignore[call-arg]
    container = build_container(settings, "test")
    from adapters.calendar.nyse import NyseCalendar

    calendar = NyseCalendar()
    today = datetime.now(UTC).date()
    session = calendar.sessions(today - timedelta(days=10), today - timedelta(days=1))[-1]
    clock = SimClock(calendar.session_open(session) + timedelta(minutes=30))
    live = await build_live_app(settings, container, clock=clock)
    await live.run_cycle()  # so the portfolio holds positions
    return create_app(build_api_services(settings, container, live, _AcceptingQueue()))


def _hello_app() -> Any:
    from litestar import Litestar, get

    @get("/hello", sync_to_thread=False)
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    return Litestar([hello], logging_config=None)


def _serve(kind: str, conn: Connection) -> None:
    import uvicorn

    from entrypoints.logging_setup import configure_logging

    configure_logging("WARNING")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))

    async def main() -> None:
        app = await _quorum_app() if kind == "quorum" else _hello_app()
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if serving.done():
                await serving
            await asyncio.sleep(0.01)
        conn.send(sock.getsockname()[1])
        await serving

    asyncio.run(main())


def _start(kind: str) -> tuple[mp.process.BaseProcess, str]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(kind, child), name=f"bench-{kind}-server", daemon=True)
    proc.start()
    if not parent.poll(120):
        proc.terminate()
        raise RuntimeError(f"the {kind} server did not start within 120 s")
    return proc, f"http://127.0.0.1:{parent.recv()}"


def _ticker(i: int) -> str:
    letters = string.ascii_uppercase
    return "".join(letters[(i // 26**k) % 26] for k in range(4))


async def _drive(url: str, method: str, path: Callable[[int], str], *, expect: int, headers: dict[str, str],
                 n: int, offset: int = 0) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, headers=headers) as client:

        async def worker() -> None:
            nonlocal errors
            while (i := next(counter)) < n:
                start = time.perf_counter()
                response = await client.request(method, path(offset + i))
                latencies.append(time.perf_counter() - start)
                errors += response.status_code != expect

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        wall = time.perf_counter() - start
    return {"requests": n, "errors": errors, "seconds": wall, "rps": n / wall, "latency_ms": percentiles_ms(latencies)}


async def _scenario(url: str, method: str, path: Callable[[int], str], *, expect: int,
                    headers: dict[str, str] | None = None) -> dict[str, Any]:
    await _drive(url, method, path, expect=expect, headers=headers or {}, n=WARMUP, offset=10_000)
    return await _drive(url, method, path, expect=expect, headers=headers or {}, n=N_REQUESTS)


def _summary(name: str, r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    return f"[api_throughput] {name:<26} {r['rps']:8.0f} req/s  p50 {lat['p50']:6.2f} ms  p99 {lat['p99']:6.2f} ms"


def run() -> dict[str, Any]:
    started = datetime.now(UTC)
    servers = [_start("quorum"), _start("hello")]
    (_, api_url), (_, hello_url) = servers
    key = {"X-API-Key": API_KEY}
    try:
        hello = asyncio.run(_scenario(hello_url, "GET", lambda i: "/hello", expect=200))
        portfolio = asyncio.run(_scenario(api_url, "GET", lambda i: "/api/portfolio", expect=200))
        new = asyncio.run(_scenario(api_url, "POST", lambda i: f"/api/cycles/run?type=manual&symbol={_ticker(i)}",
                                    expect=202, headers=key))
        dedupe = asyncio.run(_scenario(api_url, "POST", lambda i: "/api/cycles/run?type=event&symbol="
                                       f"{_ticker(i % EVENT_SYMBOLS)}", expect=202, headers=key))
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.join(timeout=10)
    figures = {"portfolio": portfolio, "cycles_run_new": new, "cycles_run_event_dedupe": dedupe}
    for name, r in {"hello_world": hello, **figures}.items():
        print(_summary(name, r), flush=True)
    ratios = {}
    for name, r in figures.items():
        ratios[f"{name}_rps_vs_hello"] = r["rps"] / hello["rps"]
        ratios[f"{name}_p99_vs_hello"] = r["latency_ms"]["p99"] / hello["latency_ms"]["p99"]
    errors = sum(r["errors"] for r in (hello, *figures.values()))
    return write_result(
        "api_throughput",
        figures=figures,
        baselines={"hello_world": hello},
        ratios=ratios,
        targets=[Target("unexpected_status_responses", "<=", 0, errors)],
        details={"requests_per_scenario": N_REQUESTS, "warmup": WARMUP, "concurrency": CONCURRENCY,
                 "client": "httpx.AsyncClient (keep-alive pool) in the benchmark process",
                 "server": "uvicorn, one worker per app, each in its own process, 127.0.0.1",
                 "quorum_config": "in-memory container, simulated paper broker after one cycle, accepting queue"},
        started=started,
    )


if __name__ == "__main__":
    run()
