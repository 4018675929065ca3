"""The HTTP API through Litestar's test client, on the in-memory container and the simulated paper broker.

Every request goes through `at_address`, which sets the ASGI client address, so the loopback rule
is exercised as a real server applies it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import structlog
from dependency_injector import providers
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.inmemory.clock import SimClock
from application.cycle.trading_cycle import BREAKER_DOC
from application.queries import ReadModels
from application.trading_service import TradingService
from domain import breaker as brk
from domain.discovery.evaluation import ABReport, HorizonPerformance
from domain.events import EventType
from domain.models.trading import Fill, Side
from domain.ports.discovery import DiscoveryRun, Suggestion, WatchlistChange, WatchlistEntry
from domain.ports.discovery_api import (
    DiscoveryApi,
    DiscoveryOutcome,
    DiscoveryPerformance,
    DiscoveryStatus,
    WatchlistEdit,
)
from domain.ports.market_data import MarketData
from domain.ports.queue import CycleJob
from domain.ports.repositories import EquityPoint, EventQuery, FillRecord, LLMCallRecord
from domain.risk.config import BreakerSettings
from entrypoints.api import ApiServices, ReadinessCheck, create_app
from entrypoints.api.wiring import build_api_services
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings

API_KEY = "test-api-key-5b9c1f0e7d2a4c68"
OPEN = datetime(2024, 6, 12, 15, 0, tzinfo=UTC)  # Wednesday 11:00 in New York: the session is open
Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class RecordingQueue:
    """A CycleQueue that keeps the jobs instead of running them; `failing` makes it raise like a dead Redis."""

    def __init__(self) -> None:
        self.jobs: list[CycleJob] = []
        self.failing = False

    async def enqueue(self, job: CycleJob) -> bool:
        if self.failing:
            raise ConnectionError("redis is down")
        if any(j.cycle_id == job.cycle_id for j in self.jobs):
            return False
        self.jobs.append(job)
        return True


class FakeDiscovery(DiscoveryApi):
    """Implements domain.ports.discovery_api.DiscoveryApi and remembers what it was asked."""

    def __init__(self) -> None:
        self.watchlist: list[str] = ["AAPL"]
        self.runs = 0

    def _entries(self) -> tuple[WatchlistEntry, ...]:
        return tuple(WatchlistEntry(s, "manual", "by hand", OPEN) for s in self.watchlist)

    async def status(self) -> DiscoveryStatus:
        return DiscoveryStatus(True, ("metric",), False, None, None, len(self.watchlist), 20, len(self.watchlist))

    async def run(self) -> DiscoveryOutcome:
        self.runs += 1
        return DiscoveryOutcome(DiscoveryRun(f"d-{self.runs}", "live", OPEN, ("metric",), 3, {}), [],
                                watchlist=list(self._entries()))

    async def suggestions(self) -> list[Suggestion]:
        return [Suggestion("d-1", "live", "ensemble", s, 0.9 - i / 10, i + 1, OPEN, (f"rank {i + 1}",))
                for i, s in enumerate(["NVDA", "AMD", "MU"])]

    async def performance(self) -> DiscoveryPerformance:
        hit = HorizonPerformance(5, 2, 0.5, 0.01, 0.005, 0.005)
        return DiscoveryPerformance(OPEN, {"ensemble": {5: hit}}, ABReport("ensemble", 5, [], []))

    async def watchlist_add(self, symbol: str) -> WatchlistEdit:
        self.watchlist.append(symbol)
        return WatchlistEdit((WatchlistChange("live", symbol, "add", "manual", "by hand", OPEN),), self._entries())

    async def watchlist_remove(self, symbol: str) -> WatchlistEdit:
        if symbol not in self.watchlist:
            raise ValueError(f"{symbol} is not on the watchlist")
        self.watchlist.remove(symbol)
        return WatchlistEdit((WatchlistChange("live", symbol, "remove", "manual", "by hand", OPEN),),
                             self._entries())


@dataclass
class Api:
    """An app over an in-memory system, and its parts."""

    app: Litestar
    services: ApiServices
    queue: RecordingQueue
    clock: SimClock
    container: Container
    clients: list[AsyncTestClient[Any]] = field(default_factory=list)

    def uow(self) -> Any:
        return self.services.uow_factory()

    @property
    def runner(self) -> TradingService:
        """What the scheduler and the workers run: cycles and reconciliation on the simulated venue."""
        return self.container.runner()

    @property
    def broker(self) -> Any:
        return self.container.broker()


async def build_api(*, api_key: str | None = API_KEY, discovery: Any = None, at: datetime = OPEN,
                    market: MarketData | None = None) -> Api:
    """The API wired by `build_api_services` on the test container, a SimClock and the simulated venue."""
    settings = Settings(_env_file=None, env="test", api_key=api_key,  # type: ignore[call-arg]
                        api={"allowed_hosts": ["testserver.local", "testserver"]})  # test clients
    container = build_container(settings, "test")
    clock = SimClock(at)
    container.system_clock.override(providers.Object(clock))
    if market is not None:
        container.history.override(providers.Object(market))
    container.discovery.override(providers.Object(discovery))
    queue = RecordingQueue()
    services = build_api_services(container, queue)
    return Api(create_app(services), services, queue, clock, container)


def at_address(app: Any, host: str) -> Asgi:
    """The app as seen from a client at `host` (the ASGI scope's client address)."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": (host, 40123)}
        await app(scope, receive, send)

    return asgi


@pytest.fixture(scope="module")
async def market() -> MarketData:
    """The synthetic market, built once (it is read-only)."""
    return (await build_api()).container.market()


@pytest.fixture
async def api(market: MarketData) -> Api:
    return await build_api(market=market)


@pytest.fixture
async def client(api: Api) -> AsyncIterator[AsyncTestClient[Any]]:
    """A loopback client that sends the API key."""
    async with open_client(api.app, key=API_KEY) as c:
        yield c


def open_client(app: Any, host: str = "127.0.0.1", key: str | None = None) -> AsyncTestClient[Any]:
    """A test client at `host`, sending `key` as X-API-Key when given."""
    client: AsyncTestClient[Any] = AsyncTestClient(at_address(app, host))  # type: ignore[arg-type]
    if key is not None:
        client.headers["X-API-Key"] = key
    return client


def assert_error(response: Any, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    for w in words:
        assert w.lower() in body["error"].lower(), body
    return body


# ---------------------------------------------------------------- health, readiness, schema


async def test_health_and_ready_check_database_and_broker(api: Api, client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {"database", "broker"}


async def test_ready_is_503_naming_the_failing_dependency(api: Api, client: AsyncTestClient[Any]) -> None:
    async def down() -> None:
        raise ConnectionError("connection refused")

    async def slow() -> None:
        import asyncio

        await asyncio.sleep(10)

    api.services.readiness = [*api.services.readiness, ReadinessCheck("redis", down),
                              ReadinessCheck("broker-slow", slow, timeout_s=0.05)]
    body = assert_error(await client.get("/ready"), 503, "redis", "broker-slow")
    checks = body["detail"]["checks"]
    assert checks["redis"] == {"ok": False, "ms": checks["redis"]["ms"], "error": "ConnectionError"}
    assert "within" in checks["broker-slow"]["error"] and checks["database"]["ok"]


async def test_schema_is_valid_openapi_3_listing_every_endpoint(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.") and schema["info"]["title"] == "Quorum API"
    expected = {
        ("post", "/api/cycles/run"), ("get", "/api/cycles/{cycle_id}"), ("get", "/api/system/status"),
        ("post", "/api/system/pause"), ("post", "/api/system/resume"), ("get", "/api/system/circuit-breaker"),
        ("post", "/api/system/circuit-breaker/resume"), ("get", "/api/portfolio"), ("get", "/api/trades"),
        ("get", "/api/events"), ("get", "/api/performance"), ("get", "/api/discovery/status"),
        ("post", "/api/discovery/run"), ("get", "/api/discovery/suggestions"), ("get", "/api/discovery/performance"),
        ("post", "/api/discovery/watchlist/add"), ("post", "/api/discovery/watchlist/remove"), ("get", "/health"),
        ("get", "/ready"), ("get", "/metrics"),
    }
    assert expected <= {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert schema["components"]["securitySchemes"]["ApiKeyHeader"]["name"] == "X-API-Key"
    assert schema["paths"]["/api/cycles/run"]["post"]["security"] == [{"ApiKeyHeader": []}]
    assert (await client.get("/schema")).status_code == 200
    definitions = pytest.importorskip("schemathesis.specs.openapi.definitions", reason="schemathesis not installed")
    definitions.OPENAPI_31_VALIDATOR.validate(schema)


# ---------------------------------------------------------------- cycles


async def test_run_cycle_records_queued_cycle_and_enqueues_job(api: Api, client: AsyncTestClient[Any]) -> None:
    response = await client.post("/api/cycles/run", params={"type": "event", "symbol": "tsla"})
    assert response.status_code == 202
    body = response.json()
    assert body["deduplicated"] is False
    [job] = api.queue.jobs
    assert (job.cycle_id, job.kind, job.symbol, job.requested_at) == (body["cycle_id"], "event", "TSLA", OPEN)
    cycle = (await client.get(body["status_url"])).json()
    assert (cycle["id"], cycle["status"], cycle["kind"], cycle["symbol"]) == (job.cycle_id, "queued", "event", "TSLA")


async def test_same_event_within_cooldown_is_deduplicated(api: Api, client: AsyncTestClient[Any]) -> None:
    first = (await client.post("/api/cycles/run?type=event&symbol=TSLA")).json()
    api.clock.advance(timedelta(minutes=14))
    again = (await client.post("/api/cycles/run?type=event&symbol=TSLA")).json()
    other = (await client.post("/api/cycles/run?type=event&symbol=NVDA")).json()
    assert again == {**first, "deduplicated": True}
    assert other["deduplicated"] is False and other["cycle_id"] != first["cycle_id"]
    api.clock.advance(timedelta(minutes=2))
    later = (await client.post("/api/cycles/run?type=event&symbol=TSLA")).json()
    assert later["deduplicated"] is False and later["cycle_id"] != first["cycle_id"]
    assert [j.symbol for j in api.queue.jobs] == ["TSLA", "NVDA", "TSLA"]


async def test_scheduled_cycle_twice_in_a_minute_is_one_cycle(api: Api, client: AsyncTestClient[Any]) -> None:
    first = (await client.post("/api/cycles/run?type=scheduled")).json()
    api.clock.advance(timedelta(seconds=30))
    second = (await client.post("/api/cycles/run?type=scheduled")).json()
    assert second["cycle_id"] == first["cycle_id"] and second["deduplicated"] is True
    assert len(api.queue.jobs) == 1


@pytest.mark.parametrize(("query", "words"), [
    ("", ["type"]),
    ("?type=weekly", ["type"]),
    ("?type=event", ["event cycle needs the symbol"]),
    ("?type=event&symbol=TS%20LA!", ["invalid symbol"]),
    ("?type=event&symbol=ABCDEFGHIJK", ["invalid symbol"]),
    ("?type=scheduled&symbol=TSLA", ["whole watchlist"]),
])
async def test_run_cycle_bad_input_is_400_with_a_message(api: Api, client: AsyncTestClient[Any], query: str,
                                                        words: list[str]) -> None:
    assert_error(await client.post(f"/api/cycles/run{query}"), 400, *words)
    assert api.queue.jobs == []


async def test_queue_failure_is_503_and_can_be_retried(api: Api, client: AsyncTestClient[Any]) -> None:
    api.queue.failing = True
    assert_error(await client.post("/api/cycles/run?type=event&symbol=TSLA"), 503, "queue is unavailable")
    api.queue.failing = False
    retry = await client.post("/api/cycles/run?type=event&symbol=TSLA")
    assert retry.status_code == 202 and retry.json()["deduplicated"] is False
    assert [j.symbol for j in api.queue.jobs] == ["TSLA"]


async def test_unknown_cycle_is_404_and_a_malformed_id_400(client: AsyncTestClient[Any]) -> None:
    assert_error(await client.get("/api/cycles/c-nope"), 404, "no cycle")
    assert_error(await client.get("/api/cycles/c%00x"), 400, "cycle_id")
    assert_error(await client.get("/api/events?cycle_id=a%20b"), 400, "cycle_id")


# ---------------------------------------------------------------- auth


async def test_mutations_need_the_right_key(api: Api) -> None:
    async with open_client(api.app) as anonymous, open_client(api.app, key="wrong-key") as wrong:
        refused = await anonymous.post("/api/cycles/run?type=scheduled")
        assert_error(refused, 401, "missing X-API-Key")
        assert refused.headers["WWW-Authenticate"] == 'ApiKey header="X-API-Key"'
        assert_error(await wrong.post("/api/system/pause"), 401, "invalid X-API-Key")
        assert_error(await wrong.get("/api/portfolio"), 401, "invalid X-API-Key")
        assert (await anonymous.get("/api/system/status")).json()["trading"]["paused"] is False
    assert api.queue.jobs == []


async def test_reads_are_open_on_loopback_only(api: Api) -> None:
    for host in ("127.0.0.1", "::1", "127.8.9.10", "::ffff:127.0.0.1"):
        async with open_client(api.app, host) as c:
            assert (await c.get("/api/portfolio")).status_code == 200, host
    for host in ("10.0.0.7", "203.0.113.9", "2001:db8::1", "localhost", "testclient"):
        async with open_client(api.app, host) as c:
            assert_error(await c.get("/api/portfolio"), 401, "non-loopback")
            assert_error(await c.get("/metrics"), 401, "non-loopback")
            assert (await c.get("/health")).status_code == 200
    async with open_client(api.app, "203.0.113.9", API_KEY) as c:
        assert (await c.get("/api/portfolio")).status_code == 200
        assert (await c.post("/api/cycles/run?type=scheduled")).status_code == 202


async def test_without_configured_key_mutations_are_refused(market: MarketData) -> None:
    api = await build_api(api_key=None, market=market)
    async with open_client(api.app, key="anything") as keyed, open_client(api.app) as c:
        assert_error(await c.post("/api/system/pause"), 503, "QUORUM_API_KEY")
        assert_error(await keyed.post("/api/system/pause"), 503, "QUORUM_API_KEY")
        assert_error(await keyed.get("/api/system/status"), 401, "QUORUM_API_KEY is not set")
        assert (await c.get("/api/system/status")).status_code == 200
    assert api.queue.jobs == []


async def test_the_key_is_never_logged(api: Api) -> None:
    with structlog.testing.capture_logs() as logs:
        async with open_client(api.app, "203.0.113.9", "a-guessed-key-123") as wrong, \
                open_client(api.app, key=API_KEY) as right:
            await wrong.post("/api/system/pause")
            await right.post("/api/cycles/run?type=event&symbol=TSLA")
    assert logs and not any(k in repr(logs) for k in (API_KEY, "a-guessed-key-123"))


# ---------------------------------------------------------------- system and breaker


async def test_pause_and_resume_trading(api: Api, client: AsyncTestClient[Any]) -> None:
    status = (await client.get("/api/system/status")).json()
    assert status["trading"]["state"] == "active" and status["market"]["open"] is True
    assert status["market"]["closes_at"] == "2024-06-12T20:00:00+00:00" and status["last_cycle"] is None
    paused = await client.post("/api/system/pause", json={"by": "alice", "reason": "earnings week"})
    assert paused.status_code == 200 and paused.json()["paused"] is True
    status = (await client.get("/api/system/status")).json()
    assert status["trading"] | {"at": None} == {"state": "paused", "paused": True, "by": "alice",
                                                "reason": "earnings week", "at": None}
    result = await api.runner.run_cycle()  # paused: reconciliation, stops and rule exits only, no entry, no agent
    assert result.status == "completed" and result.orders == 0
    assert all(o.signal.action != "BUY" for o in result.outcomes)
    last = (await client.get("/api/system/status")).json()["last_cycle"]
    assert (last["status"], last["summary"]["mode"]) == ("completed", "protective")
    assert (await client.post("/api/system/resume")).json()["paused"] is False
    assert (await client.get("/api/system/status")).json()["trading"]["state"] == "active"
    events = (await client.get("/api/events?type=trading_paused&type=trading_resumed")).json()
    assert [e["type"] for e in events["items"]] == ["trading_resumed", "trading_paused"]


@pytest.mark.parametrize("body", [{"by": ""}, {"by": "x" * 101}, {"by": "a", "unknown": 1}, [1, 2], "text",
                                  {"reason": "nul \x00 byte"}, {"by": "bell\x07"}])
async def test_pause_bad_body_is_400(client: AsyncTestClient[Any], body: Any) -> None:
    assert_error(await client.post("/api/system/pause", json=body), 400)


async def test_flatten_needs_the_key_then_closes_everything_and_pauses(api: Api, client: AsyncTestClient[Any]) -> None:
    await api.runner.run_cycle()
    await fills_after_the_cycle(api)
    held = {p.symbol for p in await api.broker.positions()}
    assert held, "the first cycle should have bought something"
    async with open_client(api.app, "127.0.0.1") as anonymous:
        assert (await anonymous.post("/api/system/flatten")).status_code == 401
    r = await client.post("/api/system/flatten", json={"by": "alice", "reason": "leaving on holiday"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {s["symbol"] for s in body["sells"]} == held and body["failed"] == [] and body["market_open"] is True
    status = (await client.get("/api/system/status")).json()
    assert status["trading"]["paused"] and status["trading"]["by"] == "alice"
    kill = (await client.get("/api/events?type=kill_switch")).json()["items"]
    assert len(kill) == 1 and kill[0]["severity"] == "critical" and "leaving on holiday" in kill[0]["message"]
    await fills_after_the_cycle(api)
    assert await api.broker.positions() == []


async def test_market_closed_status_names_the_next_open(market: MarketData) -> None:
    api = await build_api(at=datetime(2024, 6, 15, 14, 0, tzinfo=UTC), market=market)  # a Saturday
    async with open_client(api.app) as c:
        assert (await c.get("/api/system/status")).json()["market"] == {
            "open": False, "next_open": "2024-06-17T13:30:00+00:00"}


async def save_breaker(api: Api, state: brk.BreakerState) -> None:
    async with api.uow() as uow:
        await uow.state.save(api.services.scope, BREAKER_DOC, state.to_dict(), at=api.clock.now())
        await uow.commit()


def tripped_state(settings: BreakerSettings) -> brk.BreakerState:
    state, trip = brk.record_equity(brk.initial_state(Decimal(650)), equity=Decimal(500),
                                    day_start_equity=Decimal(500), as_of=datetime(2024, 6, 3, 15, tzinfo=UTC),
                                    settings=settings)
    assert trip is not None and state.status is brk.BreakerStatus.TRIPPED
    return state


async def test_breaker_resume_is_refused_with_the_reason_unless_eligible(api: Api,
                                                                         client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/api/system/circuit-breaker")).json()["status"] == "active"
    assert_error(await client.post("/api/system/circuit-breaker/resume", json={"by": "alice"}), 409, "never tripped")
    await save_breaker(api, tripped_state(api.services.breaker_settings))
    breaker = (await client.get("/api/system/circuit-breaker")).json()
    assert breaker["status"] == "tripped" and breaker["can_resume"] is False and "drawdown" in breaker["trip_reason"]
    assert (await client.get("/api/system/status")).json()["trading"]["state"] == "exits_only"
    assert_error(await client.post("/api/system/circuit-breaker/resume", json={"by": "alice"}), 409,
                 "not eligible", "win streak 0 < 3")
    assert (await client.get("/api/system/circuit-breaker")).json()["status"] == "tripped"
    assert_error(await client.post("/api/system/circuit-breaker/resume", json={}), 400, "by")


async def test_breaker_resume_is_accepted_when_eligible(api: Api, client: AsyncTestClient[Any]) -> None:
    state = tripped_state(api.services.breaker_settings)
    for day, equity in ((date(2024, 6, 5), 600), (date(2024, 6, 6), 606), (date(2024, 6, 7), 615),
                        (date(2024, 6, 10), 619), (date(2024, 6, 11), 631)):
        state = brk.record_shadow(state, day=day, shadow_equity=Decimal(equity), closed_trade_returns=[])
    state = brk.record_shadow(state, day=date(2024, 6, 11), shadow_equity=Decimal(631),
                              closed_trade_returns=[0.01, 0.02, 0.015])
    await save_breaker(api, state)
    response = await client.post("/api/system/circuit-breaker/resume", json={"by": "alice", "note": "shadow is fine"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "active" and body["approvals"][-1]["by"] == "alice"
    events = (await client.get("/api/events?type=breaker_resumed")).json()["items"]
    assert len(events) == 1 and events[0]["payload"] == {"approved_by": "alice", "note": "shadow is fine"}


# ---------------------------------------------------------------- portfolio, trades, events, performance


async def test_portfolio_after_a_cycle_shows_broker_positions_with_stops(api: Api,
                                                                         client: AsyncTestClient[Any]) -> None:
    result = await api.runner.run_cycle()
    assert result.status == "completed" and result.orders > 0
    body = (await client.get("/api/portfolio")).json()
    account, positions = await api.broker.account(), await api.broker.positions()
    assert (body["cash"], body["equity"]) == (str(account.cash), str(account.equity))
    assert [p["symbol"] for p in body["positions"]] == sorted(p.symbol for p in positions)
    for p in body["positions"]:
        assert Decimal(p["stop_price"]) < Decimal(p["avg_entry_price"])
        assert Decimal(p["market_value"]) == (Decimal(p["qty"]) * Decimal(p["last_price"])).quantize(Decimal("0.01"))
    assert Decimal(body["gross_exposure"]) == sum(Decimal(p["market_value"]) for p in body["positions"])


async def test_trades_are_paged_newest_first(api: Api, client: AsyncTestClient[Any]) -> None:
    fills = [Fill(f"o{i}", "AAPL" if i % 2 else "MSFT", Side.BUY, Decimal(1), Decimal(100 + i), Decimal(0),
                  OPEN - timedelta(days=10 - i)) for i in range(7)]
    async with api.uow() as uow:
        await uow.fills.add([FillRecord(f, api.services.scope, None) for f in fills])
        await uow.commit()
    first = (await client.get("/api/trades?limit=4")).json()
    second = (await client.get("/api/trades?limit=4&offset=4")).json()
    assert first["total"] == second["total"] == 7
    assert [t["client_order_id"] for t in first["items"] + second["items"]] == [f"o{i}" for i in range(6, -1, -1)]
    assert Decimal(first["items"][0]["price"]) == 106 and first["items"][0]["side"] == "buy"
    aapl = (await client.get("/api/trades?symbol=aapl")).json()
    assert {t["symbol"] for t in aapl["items"]} == {"AAPL"} and aapl["total"] == 3
    since = (await client.get("/api/trades", params={"since": (OPEN - timedelta(days=5)).isoformat()})).json()
    assert since["total"] == 2


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "offset=-1", "limit=abc", "since=yesterday",
                                   "since=2024-06-10T00:00:00Z&until=2024-06-09T00:00:00Z", "symbol=%24%24"])
async def test_list_endpoints_refuse_bad_paging_and_filters(client: AsyncTestClient[Any], query: str) -> None:
    assert_error(await client.get(f"/api/trades?{query}"), 400)
    assert_error(await client.get(f"/api/events?{query}"), 400)


async def fills_after_the_cycle(api: Api) -> None:
    """A minute later the broker has filled what the cycle sent (never inside submit, like Alpaca); reconcile."""
    api.clock.advance(timedelta(minutes=1))
    await api.runner.reconcile_now()


async def test_events_filter_and_page(api: Api, client: AsyncTestClient[Any]) -> None:
    await api.runner.run_cycle()
    await fills_after_the_cycle(api)
    async with api.uow() as uow:
        total = await uow.events.count(EventQuery(api.services.scope))
        fills = await uow.events.count(EventQuery(api.services.scope, types=(EventType.ORDER_FILLED,)))
    everything = (await client.get("/api/events?limit=500")).json()
    assert everything["total"] == total == len(everything["items"])
    page1 = (await client.get("/api/events?limit=3")).json()["items"]
    page2 = (await client.get("/api/events?limit=3&offset=3")).json()["items"]
    assert [e["id"] for e in page1 + page2] == [e["id"] for e in everything["items"][:6]]
    filled = (await client.get("/api/events?type=order_filled")).json()
    assert filled["total"] == fills > 0 and {e["type"] for e in filled["items"]} == {"order_filled"}
    naive = (await client.get("/api/events", params={"until": "2024-06-12T14:59:59"})).json()
    assert naive["total"] == 0
    assert_error(await client.get("/api/events?type=nonsense"), 400)
    assert_error(await client.get("/api/events?min_severity=loud"), 400)
    warnings = (await client.get("/api/events?min_severity=warning")).json()["items"]
    assert all(e["severity"] in ("warning", "critical") for e in warnings)


async def add_equity(api: Api, points: Sequence[tuple[date, int, int]]) -> None:
    async with api.uow() as uow:
        for day, equity, deposits in points:
            at = datetime(day.year, day.month, day.day, 19, 0, tzinfo=UTC)
            await uow.equity.add(api.services.scope, EquityPoint(at, Decimal(equity), Decimal(equity), Decimal(0),
                                                                 Decimal(deposits)))
        await uow.commit()


async def test_performance_per_window(api: Api, client: AsyncTestClient[Any]) -> None:
    days = [date(2024, 6, d) for d in (3, 4, 5, 6, 7, 10, 11)]
    values = [650, 655, 660, 652, 670, 675, 680]
    await add_equity(api, [(d, v, 0) for d, v in zip(days, values, strict=True)])
    api.clock.reset(datetime(2024, 6, 11, 20, 30, tzinfo=UTC))  # after the close of the last valuation
    got = {w: (await client.get(f"/api/performance?window={w}")).json() for w in ("today", "week", "month", "all")}
    assert got["today"]["performance"]["total_return"] == pytest.approx(680 / 675 - 1)
    assert got["week"]["performance"]["total_return"] == pytest.approx(680 / 655 - 1)
    assert Decimal(got["week"]["start_equity"]) == 655 and got["week"]["valuations"] == 6
    assert got["all"]["performance"]["total_return"] == pytest.approx(680 / 650 - 1)
    assert got["month"]["performance"]["total_return"] == got["all"]["performance"]["total_return"]
    assert got["all"]["performance"]["max_drawdown"] == pytest.approx(1 - 652 / 660)
    assert_error(await client.get("/api/performance?window=year"), 400, "window")


async def test_performance_does_not_count_deposits_as_profit(api: Api, client: AsyncTestClient[Any]) -> None:
    await add_equity(api, [(date(2024, 6, 10), 650, 0), (date(2024, 6, 11), 750, 100)])
    perf = (await client.get("/api/performance?window=all")).json()["performance"]
    assert perf["total_return"] == pytest.approx(0.0) and Decimal(perf["profit"]) == 0
    assert Decimal(perf["net_deposits"]) == 100


# ---------------------------------------------------------------- metrics


async def test_metrics_count_cycles_orders_fills_rejects_and_llm_calls(api: Api,
                                                                       client: AsyncTestClient[Any]) -> None:
    result = await api.runner.run_cycle()
    await fills_after_the_cycle(api)
    scope = api.services.scope
    async with api.uow() as uow:
        await uow.llm_calls.add(LLMCallRecord(OPEN, scope, "signal", "anthropic", "claude", 1200, 300, 0.0125,
                                              1500.0, True))
        await uow.commit()
        rejected = await uow.events.count(EventQuery(scope, types=(EventType.PROPOSAL_REJECTED,)))
        calls = await uow.llm_calls.list(scope)
    text = (await client.get("/metrics")).text
    assert "quorum_breaker_state{status=\"active\"} 1.0" in text
    m = api.services.prometheus.tally()
    assert m['quorum_cycles_total{kind=scheduled,outcome=completed}'] == 1
    assert m["quorum_orders_total{side=buy}"] == result.orders
    assert m["quorum_fills_total{book=real}"] == result.orders
    assert sum(v for k, v in m.items() if k.startswith("quorum_rejects_total")) == rejected
    assert m["quorum_llm_calls_total{ok=true,provider=offline}"] == len(calls) - 1
    assert m["quorum_llm_cost_usd_total{provider=anthropic}"] == pytest.approx(0.0125)
    assert m["quorum_llm_tokens_total{kind=prompt,provider=anthropic}"] == 1200
    assert m["quorum_llm_latency_seconds_bucket{le=2.0,provider=anthropic}"] == 1
    assert m["quorum_llm_latency_seconds_bucket{le=1.0,provider=anthropic}"] == 0
    await client.get("/metrics")
    assert api.services.prometheus.tally()['quorum_cycles_total{kind=scheduled,outcome=completed}'] == 1
    api.clock.advance(timedelta(hours=1))
    await client.post("/api/system/pause")
    await api.runner.run_cycle()  # paused: only the protective part ran (stops, reconciliation); trading skipped
    await client.get("/metrics")
    m = api.services.prometheus.tally()
    assert m['quorum_cycles_total{kind=scheduled,outcome=skipped}'] == 1
    assert m["quorum_trading_paused"] == 1
    assert any(k.startswith("quorum_http_request_duration_seconds_count{method=POST,route=/api/system/pause")
               for k in m)


# ---------------------------------------------------------------- discovery and errors


async def test_discovery_not_configured_is_503(client: AsyncTestClient[Any]) -> None:
    assert_error(await client.get("/api/discovery/status"), 503, "discovery not configured")
    assert_error(await client.post("/api/discovery/watchlist/add", json={"symbol": "TSLA"}), 503, "not configured")


async def test_discovery_endpoints(market: MarketData) -> None:
    discovery = FakeDiscovery()
    api = await build_api(discovery=discovery, market=market)
    async with open_client(api.app, key=API_KEY) as c, open_client(api.app) as anonymous:
        assert (await c.get("/api/discovery/status")).json()["watchlist_size"] == 1
        ran = await c.post("/api/discovery/run")
        assert ran.status_code == 202 and discovery.runs == 1
        assert ran.json() == {
            "status": "completed", "run_id": "d-1", "as_of": OPEN.isoformat(), "pickers": ["metric"],
            "universe_size": 3, "skipped": None, "llm_error": None, "suggestions": [], "divergent": [], "changes": [],
            "watchlist": [{"symbol": "AAPL", "source": "manual", "score": None, "reason": "by hand",
                           "added_at": OPEN.isoformat()}]}
        suggestions = (await c.get("/api/discovery/suggestions?limit=2&offset=1")).json()
        assert [s["symbol"] for s in suggestions["items"]] == ["AMD", "MU"] and suggestions["total"] == 3
        assert suggestions["items"][0] == {
            "run_id": "d-1", "picker": "ensemble", "symbol": "AMD", "score": 0.8, "rank": 2,
            "as_of": OPEN.isoformat(), "reasons": ["rank 2"], "entry_price": None, "forward_returns": {},
            "universe_returns": {}}
        assert (await c.get("/api/discovery/performance")).json() == {
            "as_of": OPEN.isoformat(),
            "pickers": {"ensemble": {"5d": {"n": 2, "hit_rate": 0.5, "avg_return": 0.01, "avg_universe_return": 0.005,
                                            "avg_excess": 0.005}}},
            "paper_trades": {"picker": "ensemble", "horizon_days": 5, "actual_trades": 0, "hypothetical_trades": 0,
                             "mean_actual": None, "mean_hypothetical": None, "difference": None, "t": None,
                             "df": None, "p_value": None}}
        added = (await c.post("/api/discovery/watchlist/add", json={"symbol": " brk.b "})).json()
        assert [e["symbol"] for e in added["watchlist"]] == ["AAPL", "BRK.B"]
        assert added["changes"] == [{"symbol": "BRK.B", "change": "add", "source": "manual", "reason": "by hand",
                                     "at": OPEN.isoformat()}]
        assert (await c.post("/api/discovery/watchlist/remove", json={"symbol": "AAPL"})).status_code == 200
        assert_error(await c.post("/api/discovery/watchlist/remove", json={"symbol": "AAPL"}), 400, "not on")
        assert_error(await c.post("/api/discovery/watchlist/add", json={"symbol": "1234"}), 400, "invalid symbol")
        assert_error(await c.post("/api/discovery/watchlist/add", json={}), 400, "symbol")
        assert_error(await anonymous.post("/api/discovery/run"), 401)
    assert discovery.watchlist == ["BRK.B"] and discovery.runs == 1


async def test_unreachable_database_is_503_not_500(api: Api, client: AsyncTestClient[Any]) -> None:
    from sqlalchemy.exc import OperationalError

    def refused() -> Any:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    def reset() -> Any:
        raise ConnectionResetError("connection reset by peer")

    rm = api.services.read_models
    api.services.read_models = ReadModels(refused, rm.scope, rm.broker, rm.calendar, rm.market)
    assert_error(await client.get("/api/system/status"), 503, "database unavailable")
    api.services.read_models = ReadModels(reset, rm.scope, rm.broker, rm.calendar, rm.market)
    assert_error(await client.get("/api/trades"), 503, "unreachable")


async def test_unknown_route_method_and_malformed_json_get_error_bodies(client: AsyncTestClient[Any]) -> None:
    assert_error(await client.get("/api/nope"), 404)
    assert_error(await client.delete("/api/portfolio"), 405)
    bad_json = await client.post("/api/system/pause", content=b"{not json", headers={"Content-Type":
                                                                                     "application/json"})
    assert_error(bad_json, 400)
