"""On Redis too, a failed cycle asked for again is a new arq job for the same cycle id (its rerun), while a repeat
of a first run is still refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.queue import ArqCycleQueue, payload_to_job
from adapters.queue.arq_queue import job_deserializer
from domain.ports.queue import CycleJob
from tests.conftest import TEST_REDIS_URL

pytestmark = pytest.mark.integration
NOW = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


async def test_a_rerun_is_queued_under_its_own_key_and_carries_its_number(redis: Any) -> None:
    queue = await ArqCycleQueue.connect(TEST_REDIS_URL)
    try:
        job = CycleJob("c-20240304-1000-abc", "manual", "AAPL", NOW)
        assert await queue.enqueue(job) is True
        assert await queue.enqueue(job) is False
        rerun = CycleJob(job.cycle_id, "manual", "AAPL", NOW, rerun=1)
        assert await queue.enqueue(rerun) is True
        assert await queue.enqueue(rerun) is False
        stored = await redis.get(f"arq:job:{rerun.queue_key}")
        payload = job_deserializer(stored)["a"][0]
        assert payload_to_job(payload) == rerun
    finally:
        await queue.close()
