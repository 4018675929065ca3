"""Prometheus metrics of the API process, in its own CollectorRegistry.

How the figures are fed:
- Trading figures (cycles, orders, fills, rejects by limit) and LLM figures (latency, cost,
  tokens, calls by provider) are read from the event log and the llm_calls table on each
  scrape (`ApiMetrics.refresh`): every event and call stamped within `overlap` (2 h) before the
  previous scrape and not counted yet (events by id, calls by content) is added, so cycles run
  by another process (the arq worker) are counted too, and a cycle that commits its events a
  while after its `as_of` is not missed. Counters start at the process start minus `overlap`
  and only go up; when several API replicas are scraped, aggregate them with max(), not sum().
- The breaker state and the pause switch are gauges read from their state documents.
- Job durations come from whoever runs jobs in this process (`observe_job`); HTTP request
  durations from `HttpMetricsMiddleware`.
- Every label value comes from a fixed set (`metric_labels`): routes are the app's route
  templates, never a request's path; anything else is "other".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from application.cycle.breaker_book import BREAKER_DOC
from domain.breaker import BreakerStatus
from domain.events import Event, EventType
from domain.ports.clock import Clock
from domain.ports.repositories import EventQuery, LLMCallRecord
from domain.ports.uow import UnitOfWork, UnitOfWorkFactory
from entrypoints.api.metric_labels import (
    CYCLE_KINDS,
    HTTP_METHODS,
    HTTP_STATUSES,
    OTHER,
    SIDES,
    BoundedLabel,
    one_of,
)

log = structlog.get_logger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TYPES = (EventType.CYCLE_STARTED, EventType.CYCLE_SKIPPED, EventType.SYSTEM_ERROR, EventType.ORDER_SUBMITTED,
          EventType.ORDER_REJECTED, EventType.ORDER_FILLED, EventType.SHADOW_FILL, EventType.PROPOSAL_REJECTED)
_PAGE = 500
_MAX_CALLS = 128_000
_LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
_JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _call_key(c: LLMCallRecord) -> tuple[Any, ...]:
    return (c.at, c.agent, c.provider, c.model, c.prompt_tokens, c.completion_tokens, c.cost_usd, c.latency_ms,
            c.cycle_id, c.request_hash)


class ApiMetrics:
    """The registry and its metrics; `refresh` before rendering a scrape.

    Args:
        uow_factory: opens units of work.
        scope: whose events and LLM calls are counted.
        clock: the time source.
        overlap: how far back each refresh looks for events and calls not counted yet.
    """

    def __init__(self, uow_factory: UnitOfWorkFactory, scope: str, clock: Clock, *,
                 overlap: timedelta = timedelta(hours=2)) -> None:
        self._uow_factory, self._scope, self._clock, self._overlap = uow_factory, scope, clock, overlap
        self._lock = asyncio.Lock()
        self._last_refresh: datetime | None = None
        self._seen_events: dict[int, datetime] = {}
        self._seen_calls: dict[tuple[Any, ...], datetime] = {}
        self._provider, self._limit, self._job = BoundedLabel(), BoundedLabel(), BoundedLabel()
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.cycles = Counter("quorum_cycles", "Trading cycles by kind and outcome (completed, skipped, failed)",
                              ["kind", "outcome"], registry=r)
        self.orders = Counter("quorum_orders", "Orders submitted to the broker, by side", ["side"], registry=r)
        self.fills = Counter("quorum_fills", "Fills recorded, real or shadow book", ["book"], registry=r)
        self.rejects = Counter("quorum_rejects", "Rejected proposals by the hard limit that rejected them "
                               "('broker' for broker rejections, 'other' for agent or validator vetoes)",
                               ["limit"], registry=r)
        self.breaker_state = Gauge("quorum_breaker_state", "1 for the circuit breaker's current status",
                                   ["status"], registry=r)
        self.trading_paused = Gauge("quorum_trading_paused", "1 while trading is paused by an operator",
                                    registry=r)
        self.llm_latency = Histogram("quorum_llm_latency_seconds", "LLM call latency by provider", ["provider"],
                                     buckets=_LLM_BUCKETS, registry=r)
        self.llm_cost = Counter("quorum_llm_cost_usd", "LLM spend in USD by provider", ["provider"], registry=r)
        self.llm_tokens = Counter("quorum_llm_tokens", "LLM tokens by provider and kind (prompt, completion)",
                                  ["provider", "kind"], registry=r)
        self.llm_calls = Counter("quorum_llm_calls", "LLM calls by provider and outcome", ["provider", "ok"],
                                 registry=r)
        self.job_duration = Histogram("quorum_job_duration_seconds", "Duration of jobs run in this process",
                                      ["job"], buckets=_JOB_BUCKETS, registry=r)
        self.http_duration = Histogram("quorum_http_request_duration_seconds", "HTTP request duration by route",
                                       ["method", "route", "status"], buckets=_HTTP_BUCKETS, registry=r)
        self.refresh_errors = Counter("quorum_metrics_refresh_errors", "Scrapes whose refresh from the "
                                      "database failed (figures are then stale)", registry=r)
        for status in BreakerStatus:
            self.breaker_state.labels(status.value).set(1 if status is BreakerStatus.ACTIVE else 0)

    def observe_job(self, job: str, seconds: float) -> None:
        """Record the duration of one job (a cycle, a discovery run, a back-fill)."""
        self.job_duration.labels(self._job(job)).observe(max(seconds, 0.0))

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    async def refresh(self) -> None:
        """Count the events and LLM calls recorded since the last refresh; update the gauges.

        A database failure is logged and counted in quorum_metrics_refresh_errors_total; the
        scrape then shows the figures of the last successful refresh.
        """
        async with self._lock:
            now = self._clock.now()
            since = (self._last_refresh or now) - self._overlap
            try:
                async with self._uow_factory() as uow:
                    events = await self._events_since(uow, since)
                    calls = await self._calls_since(uow, since)
                    breaker = await uow.state.load(self._scope, BREAKER_DOC)
                    paused = (await uow.trading.load(self._scope)).control.paused
            except Exception as exc:  # noqa: BLE001 - the scrape must still answer; the error is counted
                self.refresh_errors.inc()
                log.warning("metrics_refresh_failed", error=f"{type(exc).__name__}: {exc}")
                return
            self._count_events(events)
            self._count_calls(calls)
            status = str((breaker or {}).get("status", BreakerStatus.ACTIVE.value))
            for s in BreakerStatus:
                self.breaker_state.labels(s.value).set(1 if s.value == status else 0)
            self.trading_paused.set(1 if paused else 0)
            self._seen_events = {i: at for i, at in self._seen_events.items() if at >= since}
            self._seen_calls = {k: at for k, at in self._seen_calls.items() if at >= since}
            self._last_refresh = now

    async def _events_since(self, uow: UnitOfWork, since: datetime) -> list[Event]:
        out: list[Event] = []
        offset = 0
        while True:
            batch = await uow.events.query(EventQuery(self._scope, types=_TYPES, since=since, limit=_PAGE,
                                                      offset=offset))
            out += [e for e in batch if e.id is not None and e.id not in self._seen_events]
            if len(batch) < _PAGE:
                return out
            offset += _PAGE

    async def _calls_since(self, uow: UnitOfWork, since: datetime) -> list[LLMCallRecord]:
        limit = _PAGE
        while True:
            calls = await uow.llm_calls.list(self._scope, limit=limit)
            if len(calls) < limit or calls[-1].at < since or limit >= _MAX_CALLS:
                return [c for c in calls if c.at >= since]
            limit *= 4

    def _count_events(self, events: Iterable[Event]) -> None:
        started: dict[str, str] = {}
        skipped: set[str] = set()
        for e in events:
            if e.id is None:
                raise ValueError(f"event {e.type} at {e.at.isoformat()} was not read from the log (no id)")
            self._seen_events[e.id] = e.at
            if e.type is EventType.CYCLE_STARTED and e.cycle_id:
                started[e.cycle_id] = one_of(e.payload.get("kind"), CYCLE_KINDS)
            elif e.type is EventType.CYCLE_SKIPPED and e.cycle_id:
                skipped.add(e.cycle_id)
            else:
                self._count_event(e)
        for cycle_id, kind in started.items():
            self.cycles.labels(kind, "skipped" if cycle_id in skipped else "completed").inc()

    def _count_event(self, event: Event) -> None:
        """Count an event that is neither the start nor the skip of a cycle."""
        p = event.payload
        if event.type is EventType.SYSTEM_ERROR and event.cycle_id:
            self.cycles.labels(one_of(p.get("kind"), CYCLE_KINDS), "failed").inc()
        elif event.type is EventType.ORDER_SUBMITTED:
            self.orders.labels(one_of(p.get("side"), SIDES)).inc()
        elif event.type in (EventType.ORDER_FILLED, EventType.SHADOW_FILL):
            self.fills.labels("real" if event.type is EventType.ORDER_FILLED else "shadow").inc()
        elif event.type is EventType.ORDER_REJECTED:
            self.rejects.labels("broker").inc()
        elif event.type is EventType.PROPOSAL_REJECTED:
            self.rejects.labels(self._limit(p.get("limit") or OTHER)).inc()

    def _count_calls(self, calls: Iterable[LLMCallRecord]) -> None:
        for c in calls:
            key = _call_key(c)
            if key in self._seen_calls:
                continue
            self._seen_calls[key] = c.at
            provider = self._provider(c.provider)
            self.llm_latency.labels(provider).observe(c.latency_ms / 1000.0)
            self.llm_cost.labels(provider).inc(c.cost_usd)
            self.llm_tokens.labels(provider, "prompt").inc(c.prompt_tokens)
            self.llm_tokens.labels(provider, "completion").inc(c.completion_tokens)
            self.llm_calls.labels(provider, "true" if c.ok else "false").inc()

    def tally(self) -> dict[str, float]:
        """Current values of every sample, by name and labels (for tests and debugging)."""
        out: dict[str, float] = {}
        for metric in self.registry.collect():
            for s in metric.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                key = f"{s.name}{{{labels}}}" if labels else s.name
                out[key] = out.get(key, 0.0) + s.value
        return out


class HttpMetricsMiddleware(ASGIMiddleware):
    """Times every HTTP request into quorum_http_request_duration_seconds, labelled by route template.

    Args:
        metrics: where the durations go.
        route_templates: the app's route templates (set once the app is built): a request matched to none of them
            (unknown path, a mount's sub-path) is labelled "other", never with its own path.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, metrics: ApiMetrics, route_templates: frozenset[str] = frozenset()) -> None:
        self._metrics = metrics
        self.route_templates = route_templates

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run the request and observe its duration with its status code."""
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await next_app(scope, receive, send_wrapper)
        finally:
            route = one_of(scope.get("path_template"), self.route_templates)
            method = one_of(str(scope.get("method", "GET")).upper(), HTTP_METHODS)
            self._metrics.http_duration.labels(method, route, one_of(status, HTTP_STATUSES)).observe(
                time.perf_counter() - start)
