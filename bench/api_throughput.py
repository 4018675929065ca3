"""API throughput and latency on loopback, against a bare Litestar hello-world endpoint in the same run.

Two uvicorn servers run in child processes on 127.0.0.1: the Quorum API (in-memory container,
simulated paper broker holding the positions of one cycle, a queue that accepts jobs without
running them) and a one-route Litestar app. A minimal asyncio HTTP/1.1 client (CONCURRENCY keep-alive
connections) sends N_REQUESTS per scenario after a warm-up, in ROUNDS interleaved rounds so background
load hits every scenario alike, and we report req/s and p50/p99 latency:

- hello_world: GET /hello on the bare app (the baseline: what Litestar, uvicorn and this client
  can do on this machine);
- portfolio: GET /api/portfolio (broker account and positions, stops from the state store, quotes);
- cycles_run_new: POST /api/cycles/run?type=manual&symbol=<unique> with the API key: every request
  validates, writes a queued cycle record and enqueues a job;
- cycles_run_event_dedupe: POST /api/cycles/run?type=event over 50 symbols: after the first 50,
  every request is answered from the cooldown (the event monitor's common case).

Servers log at WARNING (one info line per queued cycle would otherwise be measured too). The
client runs in this process (wrk is not assumed to be installed), so the hello-world figure is
also the ceiling of client and machine: compare ratios, not absolute numbers across machines.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import os
import socket
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.common import Target, percentiles_ms, write_result

N_REQUESTS = 2_000
WARMUP = 200
CONCURRENCY = 16
ROUNDS = 4
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
    from dependency_injector import providers

    from adapters.inmemory.clock import SimClock
    from entrypoints.api import create_app
    from entrypoints.api.wiring import build_api_services
    from entrypoints.container import build_container
    from entrypoints.settings import Settings

    settings = Settings(_env_file=None, env="test", api_key=API_KEY)  # type: ignore[call-arg]
    container = build_container(settings, "test")
    calendar = container.calendar()
    today = datetime.now(UTC).date()
    session = calendar.sessions(today - timedelta(days=10), today - timedelta(days=1))[-1]
    container.system_clock.override(providers.Object(SimClock(calendar.session_open(session) + timedelta(minutes=30))))
    await container.runner().run_cycle()  # so the portfolio holds positions
    return create_app(build_api_services(container, _AcceptingQueue()))


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
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # proto TCP: asyncio sets TCP_NODELAY
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


@dataclass(frozen=True)
class Scenario:
    """One kind of request, sent to one server."""

    name: str
    url: str
    method: str
    path: Callable[[int], str]
    expect: int
    pid: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


async def _drive(s: Scenario, *, n: int, offset: int) -> tuple[list[float], int, float]:
    """Send `n` requests over CONCURRENCY keep-alive connections: (latencies, unexpected statuses, wall seconds).

    A minimal HTTP/1.1 client on asyncio streams (one connection per worker, Content-Length bodies):
    httpx.AsyncClient costs more CPU per request than the hello-world server and stalls at 16
    connections on a busy 2-CPU machine, so it would measure itself.
    """
    host, port = s.url.removeprefix("http://").rsplit(":", 1)
    head_lines = f"Host: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in s.headers.items())
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while (i := next(counter)) < n:
                request = f"{s.method} {s.path(offset + i)} HTTP/1.1\r\n{head_lines}Content-Length: 0\r\n\r\n"
                start = time.perf_counter()
                writer.write(request.encode())
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                length = next((int(v) for k, _, v in (ln.partition(b":") for ln in lines[1:])
                               if k.strip().lower() == b"content-length"), 0)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - start)
                errors += int(lines[0].split()[1]) != s.expect
        finally:
            writer.close()
            await writer.wait_closed()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return latencies, errors, time.perf_counter() - start


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(scenarios: list[Scenario]) -> dict[str, dict[str, Any]]:
    """Warm up each scenario, then run ROUNDS interleaved rounds (rotating the order) so load hits all alike.

    Besides latency and throughput, the server process's CPU time per request: unlike wall-clock
    figures it hardly depends on what else the machine is doing.
    """
    for s in scenarios:
        asyncio.run(_drive(s, n=WARMUP, offset=100_000))
    per_round = N_REQUESTS // ROUNDS
    lat: dict[str, list[float]] = {s.name: [] for s in scenarios}
    errors = dict.fromkeys(lat, 0)
    wall = dict.fromkeys(lat, 0.0)
    cpu: dict[str, float | None] = dict.fromkeys(lat, 0.0)
    for r in range(ROUNDS):
        for s in scenarios[r % len(scenarios):] + scenarios[:r % len(scenarios)]:
            cpu0 = _cpu_seconds(s.pid)
            latencies, err, seconds = asyncio.run(_drive(s, n=per_round, offset=r * per_round))
            cpu1, used = _cpu_seconds(s.pid), cpu[s.name]
            cpu[s.name] = None if used is None or cpu0 is None or cpu1 is None else used + cpu1 - cpu0
            lat[s.name] += latencies
            errors[s.name] += err
            wall[s.name] += seconds
    return {name: {"requests": len(lat[name]), "errors": errors[name], "seconds": wall[name],
                   "rps": len(lat[name]) / wall[name], "latency_ms": percentiles_ms(lat[name]),
                   "server_cpu_us_per_request": None if cpu[name] is None else cpu[name] / len(lat[name]) * 1e6}
            for name in lat}


def _summary(name: str, r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    cpu = r["server_cpu_us_per_request"]
    line = f"[api_throughput] {name:<24} {r['rps']:6.0f} req/s  p50 {lat['p50']:6.2f} ms  p99 {lat['p99']:6.2f} ms"
    return line if cpu is None else f"{line}  server CPU {cpu:5.0f} us/req"


def run() -> dict[str, Any]:
    started = datetime.now(UTC)
    servers = [_start("quorum"), _start("hello")]
    (api_proc, api_url), (hello_proc, hello_url) = servers
    key = {"X-API-Key": API_KEY}
    scenarios = [
        Scenario("hello_world", hello_url, "GET", lambda i: "/hello", 200, hello_proc.pid),
        Scenario("portfolio", api_url, "GET", lambda i: "/api/portfolio", 200, api_proc.pid),
        Scenario("cycles_run_new", api_url, "POST", lambda i: f"/api/cycles/run?type=manual&symbol={_ticker(i)}",
                 202, api_proc.pid, key),
        Scenario("cycles_run_event_dedupe", api_url, "POST",
                 lambda i: f"/api/cycles/run?type=event&symbol={_ticker(i % EVENT_SYMBOLS)}", 202, api_proc.pid, key),
    ]
    try:
        results = _measure(scenarios)
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.join(timeout=10)
    hello = results.pop("hello_world")
    portfolio, new, dedupe = results["portfolio"], results["cycles_run_new"], results["cycles_run_event_dedupe"]
    figures = {"portfolio": portfolio, "cycles_run_new": new, "cycles_run_event_dedupe": dedupe}
    for name, r in {"hello_world": hello, **figures}.items():
        print(_summary(name, r), flush=True)
    ratios = {}
    for name, r in figures.items():
        ratios[f"{name}_rps_vs_hello"] = r["rps"] / hello["rps"]
        ratios[f"{name}_p99_vs_hello"] = r["latency_ms"]["p99"] / hello["latency_ms"]["p99"]
        if r["server_cpu_us_per_request"] and hello["server_cpu_us_per_request"]:
            ratios[f"{name}_server_cpu_vs_hello"] = r["server_cpu_us_per_request"] / hello["server_cpu_us_per_request"]
    errors = sum(r["errors"] for r in (hello, *figures.values()))
    return write_result(
        "api_throughput",
        figures=figures,
        baselines={"hello_world": hello},
        ratios=ratios,
        targets=[Target("unexpected_status_responses", "<=", 0, errors)],
        details={"requests_per_scenario": N_REQUESTS, "warmup": WARMUP, "concurrency": CONCURRENCY,
                 "client": "minimal HTTP/1.1 keep-alive client on asyncio streams, in the benchmark process",
                 "server": "uvicorn, one worker per app, each in its own process, 127.0.0.1",
                 "quorum_config": "in-memory container, simulated paper broker after one cycle, accepting queue"},
        started=started,
    )


if __name__ == "__main__":
    run()
