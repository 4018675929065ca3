"""Builds the API's services from the container (called by `quorum serve`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from application.cycle.breaker_book import BREAKER_DOC
from application.cycle_requests import CycleRequestService
from domain.ports.broker import Broker
from domain.ports.queue import CycleQueue, EvalRequests
from domain.ports.uow import UnitOfWorkFactory
from entrypoints.api.services import ApiServices, ReadinessCheck
from entrypoints.container import Container

EVENT_COOLDOWN = timedelta(minutes=15)


def database_probe(uow_factory: UnitOfWorkFactory, scope: str) -> Callable[[], Awaitable[object]]:
    """Opens a unit of work and reads one small document."""

    async def probe() -> object:
        async with uow_factory() as uow:
            return await uow.state.load(scope, BREAKER_DOC)

    return probe


def redis_probe(redis_url: str, queue: CycleQueue) -> Callable[[], Awaitable[object]]:
    """PING through the queue when it can, else through a short-lived Redis client."""

    async def probe() -> object:
        ping = getattr(queue, "ping", None)
        if callable(ping):
            return await ping()
        import redis.asyncio as aioredis

        client = aioredis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            return await client.ping()
        finally:
            await client.aclose()  # type: ignore[attr-defined]  # redis>=5; the stubs lag

    return probe


def broker_probe(broker: Broker) -> Callable[[], Awaitable[object]]:
    """Reads the account."""

    async def probe() -> object:
        return await broker.account()

    return probe


def build_api_services(container: Container, queue: CycleQueue, *,
                       cooldown: timedelta = EVENT_COOLDOWN, evals: EvalRequests | None = None) -> ApiServices:
    """The API's services on the container's system.

    Args:
        container: the composition root: settings, unit of work, broker, market, calendar, clock, discovery.
        queue: where requested cycles go.
        cooldown: how long an event cycle for a symbol is de-duplicated.
        evals: where POST /api/evals/run sends eval runs (default: `queue` when it takes them, as the Redis queue
            does; `quorum serve` without Redis passes its in-process jobs).

    Returns:
        Services with readiness checks for the database, Redis (when REDIS_URL is set) and the broker (its answer
        cached for settings.api.ready_broker_cache_s).
    """
    settings = container.settings()
    uow_factory = container.uow_factory()
    scope = container.scope()
    broker = container.broker()
    checks = [ReadinessCheck("database", database_probe(uow_factory, scope))]
    if settings.redis_url:
        checks.append(ReadinessCheck("redis", redis_probe(settings.redis_url, queue)))
    checks.append(ReadinessCheck("broker", broker_probe(broker), timeout_s=5.0,
                                 cache_s=settings.api.ready_broker_cache_s))
    return ApiServices(
        uow_factory=uow_factory,
        cycle_requests=CycleRequestService(uow_factory, queue, scope=scope, tz=container.calendar().tz,
                                          cooldown=cooldown),
        broker=broker,
        calendar=container.calendar(),
        clock=container.clock(),
        breaker_settings=settings.risk.breaker,
        api_key=None if settings.api_key is None else settings.api_key.get_secret_value(),
        scope=scope,
        market=container.market(),
        discovery=container.discovery(),
        evals=evals if evals is not None else queue if isinstance(queue, EvalRequests) else None,
        readiness=checks,
        open_reads_on_loopback=settings.api.open_reads_on_loopback,
        allowed_hosts=tuple(settings.api.allowed_hosts),
        currency=container.currency_display(),
    )
