"""The API's hardening: loopback reads as a setting and never through a proxy, the Host header check against DNS
rebinding, /ready's cached broker check, and metric labels from fixed sets only."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from domain.events import Event, EventType, Severity
from domain.ports.repositories import LLMCallRecord
from entrypoints.api import ReadinessCheck, create_app
from entrypoints.api.hosts import AllowedHosts
from entrypoints.api.metric_labels import HTTP_METHODS, OTHER, BoundedLabel
from entrypoints.api.wiring import build_api_services
from entrypoints.container import build_container
from entrypoints.settings import load_settings
from tests.e2e.test_api import API_KEY, OPEN, Api, RecordingQueue, assert_error, at_address, build_api

PROXY_HEADERS = ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9;proto=https"},
                 {"X-Real-IP": "203.0.113.9"}, {"x-forwarded-for": "127.0.0.1"})


def client_at(app: Any, host: str = "127.0.0.1", *, base_url: str = "http://localhost:8000",
              key: str | None = None) -> AsyncTestClient[Any]:
    client: AsyncTestClient[Any] = AsyncTestClient(at_address(app, host), base_url=base_url)
    if key is not None:
        client.headers["X-API-Key"] = key
    return client


@pytest.fixture
async def api() -> Api:
    return await build_api()


class Monotonic:
    """A hand-moved monotonic clock for the readiness cache."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- loopback reads and proxies


async def test_a_proxied_request_from_loopback_is_not_loopback(api: Api) -> None:
    for headers in PROXY_HEADERS:
        async with client_at(api.app) as c:
            assert_error(await c.get("/api/portfolio", headers=headers), 401, "X-API-Key")
            assert_error(await c.get("/metrics", headers=headers), 401, "X-API-Key")
            assert (await c.get("/api/portfolio", headers={**headers, "X-API-Key": API_KEY})).status_code == 200
            assert (await c.get("/health", headers=headers)).status_code == 200
    async with client_at(api.app) as c:
        assert (await c.get("/api/portfolio")).status_code == 200  # the same client without a proxy header


async def test_loopback_reads_can_be_turned_off(api: Api) -> None:
    api.services.open_reads_on_loopback = False
    app = create_app(api.services)
    for host in ("127.0.0.1", "::1"):
        async with client_at(app, host) as c:
            body = assert_error(await c.get("/api/portfolio"), 401, "need the X-API-Key")
            assert "non-loopback" not in body["error"]
            assert (await c.get("/health")).status_code == 200
    async with client_at(app, key=API_KEY) as c:
        assert (await c.get("/api/portfolio")).status_code == 200


async def test_settings_turn_loopback_reads_off_and_name_the_allowed_hosts() -> None:
    settings = load_settings(_env_file=None, env="test", api_key=API_KEY,
                             api={"open_reads_on_loopback": False, "allowed_hosts": "api, quorum.example.com"})
    services = build_api_services(build_container(settings, "test"), RecordingQueue())
    assert services.open_reads_on_loopback is False
    app = create_app(services)
    async with client_at(app, base_url="http://api:8000") as c:
        assert_error(await c.get("/api/portfolio"), 401, "X-API-Key")
        assert (await c.get("/api/portfolio", headers={"X-API-Key": API_KEY})).status_code == 200
    async with client_at(app, base_url="https://quorum.example.com", key=API_KEY) as c:
        assert (await c.get("/api/system/status")).status_code == 200
    async with client_at(app, base_url="http://rebind.attacker.test:8000", key=API_KEY) as c:
        assert (await c.get("/api/system/status")).status_code == 400
    assert load_settings(_env_file=None, env="test").api.open_reads_on_loopback is True  # the development default


# ---------------------------------------------------------------- allowed hosts (DNS rebinding)


async def test_requests_naming_another_host_are_refused(api: Api) -> None:
    async with client_at(api.app) as c:
        for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST:1"):
            assert (await c.get("/api/portfolio", headers={"Host": host})).status_code == 200, host
        for host in ("attacker.example", "attacker.example:8000", "127.0.0.1.nip.io", "localhost.attacker.example",
                     "[::2]:8000", "localhost:8000@attacker.example", "[::1]x.attacker.example", "localhost:"):
            for path in ("/api/portfolio", "/health", "/ready", "/metrics"):
                refused = await c.get(path, headers={"Host": host})
                assert refused.status_code == 400, (host, path)
                assert refused.json()["error"] == "invalid host header"
        refused = await c.post("/api/system/pause", headers={"Host": "attacker.example", "X-API-Key": API_KEY})
        assert refused.status_code == 400
        assert (await c.get("/api/system/status")).json()["trading"]["paused"] is False


def test_allowed_host_names_and_wildcards() -> None:
    hosts = AllowedHosts(["api", "*.example.com"])
    assert all(hosts.allows(h) for h in ("api:8000", "a.example.com", "b.a.example.com:443", "[::1]", "localhost"))
    assert not any(hosts.allows(h) for h in ("example.com", "api.evil", "xexample.com", None, "", "apix"))
    assert AllowedHosts(["*"]).allows("anything.at.all")
    for bad in ("a*.example.com", "*example.com", "*.*.com", ""):
        with pytest.raises(ValueError, match="allowed host"):
            AllowedHosts([bad])


# ---------------------------------------------------------------- /ready caches the broker


async def test_ready_asks_the_broker_once_per_period_however_many_requests(api: Api, monkeypatch: Any) -> None:
    broker = api.broker
    calls: list[int] = []
    account = broker.account

    async def counting_account() -> Any:
        calls.append(1)
        return await account()

    monkeypatch.setattr(broker, "account", counting_account)
    clock = Monotonic()
    [wired] = [c for c in api.services.readiness if c.name == "broker"]
    assert wired.cache_s == 30.0  # settings.api.ready_broker_cache_s
    check = ReadinessCheck("broker", wired.probe, timeout_s=wired.timeout_s, cache_s=wired.cache_s, monotonic=clock)
    api.services.readiness = [c for c in api.services.readiness if c.name != "broker"] + [check]
    async with client_at(api.app, "203.0.113.9") as anonymous:
        answers = await asyncio.gather(*(anonymous.get("/ready") for _ in range(20)))
        answers += [await anonymous.get("/ready") for _ in range(20)]
        assert {a.status_code for a in answers} == {200}
        assert len(calls) == 1
        clock.now += 29.9
        assert (await anonymous.get("/ready")).json()["checks"]["broker"]["age_s"] == 29.9
        assert len(calls) == 1
        clock.now += 0.1
        assert (await anonymous.get("/ready")).json()["checks"]["broker"]["age_s"] == 0.0
        assert len(calls) == 2


async def test_a_failing_broker_is_cached_too_and_reported_until_it_answers(api: Api) -> None:
    clock, calls, failing = Monotonic(), [], [True]

    async def broker_probe() -> None:
        calls.append(1)
        if failing[0]:
            raise ConnectionError("broker down")

    api.services.readiness = [*[c for c in api.services.readiness if c.name != "broker"],
                              ReadinessCheck("broker", broker_probe, cache_s=30, monotonic=clock)]
    async with client_at(api.app) as c:
        for _ in range(5):
            assert_error(await c.get("/ready"), 503, "broker")
        assert len(calls) == 1
        failing[0] = False
        assert (await c.get("/ready")).status_code == 503  # still the cached answer
        clock.now += 30
        ready = await c.get("/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["broker"]["ok"] is True
        assert len(calls) == 2


# ---------------------------------------------------------------- metric labels


async def test_http_metric_labels_never_come_from_the_request(api: Api) -> None:
    marks = [uuid.uuid4().hex for _ in range(3)]
    async with client_at(api.app, key=API_KEY) as c:
        await c.get(f"/api/nope-{marks[0]}")
        await c.get(f"/schema/{marks[1]}")
        assert (await c.get(f"/api/cycles/c-{marks[2]}")).status_code == 404
        await c.request("PURGE", "/api/portfolio")
        await c.request("X-CUSTOM-VERB", "/health")
        metrics = (await c.get("/metrics")).text
    routes = {route.path_format for route in api.app.routes} | {OTHER}
    series = [k for k in api.services.prometheus.tally() if k.startswith("quorum_http_request_duration_seconds")]
    labels = [dict(p.split("=", 1) for p in k[k.index("{") + 1:-1].split(",")) for k in series]
    assert {lab["route"] for lab in labels} <= routes
    assert {lab["method"] for lab in labels} <= HTTP_METHODS | {OTHER}
    assert any(lab["route"] == "/api/cycles/{cycle_id}" for lab in labels)
    assert not any(mark in metrics for mark in marks) and "X-CUSTOM-VERB" not in metrics and "PURGE" not in metrics


async def test_the_http_middleware_labels_an_unknown_template_and_method_other(api: Api) -> None:
    from entrypoints.api.metrics import HttpMetricsMiddleware

    middleware = HttpMetricsMiddleware(api.services.prometheus, frozenset({"/api/portfolio"}))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 799, "headers": []})

    async def send(message: Any) -> None:
        return None

    scope = {"type": "http", "method": "BREW", "path": "/x/secret", "path_template": "/x/secret"}
    await middleware.handle(scope, None, send, app)  # type: ignore[arg-type]
    await middleware.handle({**scope, "method": "GET", "path_template": "/api/portfolio"}, None, send,  # type: ignore
                            app)
    m = api.services.prometheus.tally()
    assert m["quorum_http_request_duration_seconds_count{method=other,route=other,status=other}"] == 1
    assert m["quorum_http_request_duration_seconds_count{method=GET,route=/api/portfolio,status=other}"] == 1
    assert not any("secret" in k or "BREW" in k or "799" in k for k in m)


async def test_labels_read_from_stored_events_and_calls_come_from_fixed_sets(api: Api) -> None:
    scope = api.services.scope
    hostile = "kind-" + uuid.uuid4().hex
    async with api.uow() as uow:
        await uow.events.add([
            Event(type=EventType.CYCLE_STARTED, at=OPEN, message="x", severity=Severity.DEBUG, cycle_id="c-h1",
                  payload={"kind": hostile}, scope=scope),
            Event(type=EventType.ORDER_SUBMITTED, at=OPEN, message="x", severity=Severity.INFO, cycle_id="c-h1",
                  payload={"side": hostile}, scope=scope),
            Event(type=EventType.PROPOSAL_REJECTED, at=OPEN, message="x", severity=Severity.INFO, cycle_id="c-h1",
                  payload={"limit": "a label {with} \"quotes\"\nand a newline"}, scope=scope),
        ])
        await uow.llm_calls.add(LLMCallRecord(OPEN, scope, "signal", "provider with spaces", "m", 1, 1, 0.0, 1.0,
                                              True))
        await uow.commit()
    await api.services.prometheus.refresh()
    m = api.services.prometheus.tally()
    assert m["quorum_cycles_total{kind=other,outcome=completed}"] == 1
    assert m["quorum_orders_total{side=other}"] == 1
    assert m["quorum_rejects_total{limit=other}"] == 1
    assert m["quorum_llm_calls_total{ok=true,provider=other}"] == 1
    assert not any(hostile in k or "newline" in k or "spaces" in k for k in m)


def test_a_bounded_label_takes_a_fixed_number_of_names() -> None:
    label = BoundedLabel(max_values=3)
    assert [label(v) for v in ("anthropic", "openai", "gemini", "groq", "anthropic")] == \
        ["anthropic", "openai", "gemini", OTHER, "anthropic"]
    assert label("x" * 65) == OTHER and label("a b") == OTHER
