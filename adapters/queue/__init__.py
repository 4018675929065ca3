"""Cycles and jobs: on Redis with arq (the cycle queue, the worker's job functions and schedule, a Redis lock),
or inside one process without Redis (`InProcessCycleQueue`, `InProcessJobs`)."""

from adapters.queue.arq_queue import (
    ArqCycleQueue,
    create_json_pool,
    job_deserializer,
    job_serializer,
    job_to_payload,
    payload_to_job,
    redis_settings,
)
from adapters.queue.inprocess_jobs import InProcessJobs
from adapters.queue.inprocess_queue import InProcessCycleQueue
from adapters.queue.redis_lock import LockNotAcquiredError, RedisLock
from adapters.queue.worker import ALERTS_LOCKED, SCHEDULED_KINDS, WorkerDeps, job_id, run_scheduled_job, worker_settings

__all__ = [
    "ALERTS_LOCKED",
    "SCHEDULED_KINDS",
    "ArqCycleQueue",
    "InProcessCycleQueue",
    "InProcessJobs",
    "LockNotAcquiredError",
    "RedisLock",
    "WorkerDeps",
    "create_json_pool",
    "job_deserializer",
    "job_id",
    "job_serializer",
    "job_to_payload",
    "payload_to_job",
    "redis_settings",
    "run_scheduled_job",
    "worker_settings",
]
