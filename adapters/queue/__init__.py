"""arq on Redis: the cycle queue, the worker's job functions and schedule, and a Redis lock."""

from adapters.queue.arq_queue import ArqCycleQueue, job_to_payload, payload_to_job, redis_settings
from adapters.queue.redis_lock import LockNotAcquiredError, RedisLock
from adapters.queue.worker import ALERTS_LOCKED, SCHEDULED_KINDS, WorkerDeps, job_id, run_scheduled_job, worker_settings

__all__ = [
    "ALERTS_LOCKED",
    "SCHEDULED_KINDS",
    "ArqCycleQueue",
    "LockNotAcquiredError",
    "RedisLock",
    "WorkerDeps",
    "job_id",
    "job_to_payload",
    "payload_to_job",
    "redis_settings",
    "run_scheduled_job",
    "worker_settings",
]
