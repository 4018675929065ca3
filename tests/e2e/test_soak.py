"""Soak: 200 cycle requests (and duplicates) through the HTTP API onto Redis, run by two arq workers.

The API is the real Litestar app (`create_app(build_api_services(...))`, called over ASGI on the
test's event loop) with an `ArqCycleQueue` on Redis database 5, the settings spelled out by the test (the
simulated broker whatever the environment or a `.env` says); the workers run the test container's
`TradingService` (the real `TradingCycle` on the simulated venue, brought up to each cycle's time),
each cycle at its own market minute. Checked afterwards: every accepted request has
exactly one completed cycle, nothing ran twice, the broker has no two orders with the same client
order id, and the event log has one CYCLE_STARTED per cycle.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from dependency_injector import providers

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.clock import SimClock
from adapters.queue import ArqCycleQueue, WorkerDeps, redis_settings, worker_settings
from application.cycle.trading_cycle import CycleResult
from application.trading_service import TradingService
from domain.events import EventType
from domain.models.trading import OrderStatus
from domain.ports.repositories import EventQuery
from entrypoints.container import build_container
from tests.conftest import TEST_REDIS_URL as REDIS_URL
from tests.support.explicit_settings import explicit_settings

pytestmark = [pytest.mark.slow, pytest.mark.integration]

API_KEY = "soak-test-key-0123456789abcdef"
CAL = NyseCalendar()
DAY = date(2024, 3, 5)
CYCLES = 200
DUPLICATE_EVERY = 9




class ClockedRunner:
    """Runs each cycle with the system clock at the cycle's own minute."""

    def __init__(self, service: TradingService, clock: SimClock) -> None:
        self.service, self.clock = service, clock
        self.runs: list[str] = []

    async def run_cycle(self, *, kind: str = "scheduled", symbol: str | None = None, as_of: datetime | None = None,
                        cycle_id: str | None = None) -> CycleResult:
        assert as_of is not None and cycle_id is not None
        self.runs.append(cycle_id)
        self.clock.reset(as_of)
        return await self.service.run_cycle(kind=kind, symbol=symbol, as_of=as_of, cycle_id=cycle_id)


async def test_200_cycles_through_api_and_workers_nothing_lost_or_duplicated(redis: Any) -> None:
    import httpx
    from arq.worker import Worker

    from entrypoints.api.app import create_app
    from entrypoints.api.wiring import build_api_services

    settings = explicit_settings(env="test", api_key=API_KEY)  # nothing from the environment or .env
    assert settings.broker.provider == "sim" and settings.broker.alpaca_api_key is None
    assert settings.effective_database_url is None and settings.redis_url is None
    container = build_container(settings, "test")
    open_ = CAL.session_open(DAY)
    clock = SimClock(open_)
    container.system_clock.override(providers.Object(clock))
    scope = container.scope()
    queue = await ArqCycleQueue.connect(REDIS_URL)
    app = create_app(build_api_services(container, queue))
    headers = {"X-API-Key": API_KEY}

    accepted: list[str] = []
    duplicates = 0
    transport = httpx.ASGITransport(app=app)  # the app runs on this event loop, like under uvicorn
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for i in range(CYCLES):
            clock.reset(open_ + timedelta(minutes=5 + i, seconds=7))
            tries = 2 if i % DUPLICATE_EVERY == 0 else 1
            for n in range(tries):
                r = await client.post("/api/cycles/run", params={"type": "manual"}, headers=headers)
                assert r.status_code == 202, r.text
                body = r.json()
                assert body["deduplicated"] is (n > 0)
                if n == 0:
                    accepted.append(body["cycle_id"])
                else:
                    duplicates += 1
                    assert body["cycle_id"] == accepted[-1]
        assert len(set(accepted)) == CYCLES and duplicates == len(range(0, CYCLES, DUPLICATE_EVERY))
        assert await queue.queued() == CYCLES

        runner = ClockedRunner(container.runner(), clock)
        deps = WorkerDeps(runner=runner, uow_factory=container.uow_factory(), calendar=container.calendar(),
                          clock=clock, scope=scope, conditions=container.conditions(), cycle_max_delay=None,
                          lock_poll=0.002)
        workers = [Worker(**worker_settings(deps, redis_settings=redis_settings(REDIS_URL), schedule=False,
                                            burst=True, poll_delay=0.01, max_jobs=4, handle_signals=False))
                   for _ in range(2)]
        await asyncio.gather(*(w.async_run() for w in workers))
        await asyncio.gather(*(w.close() for w in workers))
        assert sum(w.jobs_complete for w in workers) == CYCLES and sum(w.jobs_failed for w in workers) == 0
        assert await queue.queued() == 0

        for cid in (accepted[0], accepted[CYCLES // 2], accepted[-1]):
            r = await client.get(f"/api/cycles/{cid}", headers=headers)
            assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    await queue.close()

    assert sorted(runner.runs) == sorted(accepted)
    async with container.uow_factory()() as uow:
        statuses = {cid: (await uow.cycles.get(cid)).status for cid in accepted}  # type: ignore[union-attr]
        started = await uow.events.query(EventQuery(scope, types=(EventType.CYCLE_STARTED,), limit=10_000))
        recorded_orders = await uow.orders.list(scope, limit=100_000)
    assert set(statuses.values()) == {"completed"}, Counter(statuses.values())
    per_cycle = Counter(e.cycle_id for e in started)
    assert set(per_cycle) == set(accepted) and set(per_cycle.values()) == {1}
    broker_ids = [o.client_order_id for o in container.broker().all_orders()]  # type: ignore[attr-defined]
    assert broker_ids and len(broker_ids) == len(set(broker_ids))
    sent = {r.order.client_order_id for r in recorded_orders if r.order.status is not OrderStatus.REJECTED}
    assert sent <= set(broker_ids)  # orders the broker refused are recorded as rejected, with no broker id
    refused = [r.order for r in recorded_orders if r.order.status is OrderStatus.REJECTED]
    assert all(not o.broker_order_id and o.client_order_id not in broker_ids for o in refused)
