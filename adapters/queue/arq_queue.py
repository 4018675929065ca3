"""ArqCycleQueue: the `CycleQueue` port (and `EvalRequests`) on Redis through arq.

A cycle job is enqueued as arq job `run_cycle` with the cycle id as arq job id, and the id is also
remembered in a key of its own for `remember` (a week by default): arq refuses an id that is queued,
running or still has a result, and the marker refuses it after arq has forgotten it. An eval run asked for
through the API is arq job `evals` with kind "manual".

Jobs and their results are stored in Redis as JSON, never pickled: every pool that enqueues and every worker
uses `job_serializer`/`job_deserializer` (`create_json_pool`, `worker_settings`), so a pickled job planted
in Redis is refused, not unpickled. Job arguments are plain strings and dicts of strings.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import default_queue_name

from domain.ports.queue import CycleJob, CycleQueue, EvalRequests

RUN_CYCLE = "run_cycle"
EVALS = "evals"
SEEN_PREFIX = "quorum:cycle-id:"


def job_serializer(obj: Any) -> bytes:
    """arq's job (and job result) serializer: JSON. An exception (a failed job's result) becomes its text;
    anything else JSON cannot hold is refused (arq then raises `SerializationError` at enqueue)."""

    def fallback(value: Any) -> str:
        if isinstance(value, BaseException):
            return f"{type(value).__name__}: {value}"
        raise TypeError(f"{type(value).__name__} is not JSON-serialisable: pass strings, numbers, lists or dicts")

    return json.dumps(obj, default=fallback, separators=(",", ":")).encode()


def job_deserializer(data: bytes) -> Any:
    """arq's job (and job result) deserializer: JSON only, so a pickled payload fails to load (arq records the
    job as failed) instead of running code."""
    return json.loads(data)


async def create_json_pool(settings: RedisSettings, **kwargs: Any) -> ArqRedis:
    """An arq pool that writes and reads jobs as JSON (`job_serializer`, `job_deserializer`)."""
    return await create_pool(settings, job_serializer=job_serializer, job_deserializer=job_deserializer, **kwargs)


def job_to_payload(job: CycleJob) -> dict[str, str | None]:
    """A plain dict for the arq job (no pickled Quorum classes in Redis)."""
    payload = {"cycle_id": job.cycle_id, "kind": job.kind, "symbol": job.symbol,
               "requested_at": job.requested_at.isoformat()}
    return payload | ({"rerun": str(job.rerun)} if job.rerun else {})


def payload_to_job(payload: dict[str, Any]) -> CycleJob:
    """The `CycleJob` of a payload written by `job_to_payload`."""
    requested = datetime.fromisoformat(str(payload["requested_at"]))
    if requested.tzinfo is None:
        raise ValueError(f"cycle job {payload.get('cycle_id')} has a naive requested_at")
    return CycleJob(str(payload["cycle_id"]), payload["kind"], payload.get("symbol"), requested,
                    rerun=int(payload.get("rerun") or 0))


def evals_job_id(kind: str, at: datetime) -> str:
    """The arq job id of an eval run: one per kind and time."""
    return f"quorum:{EVALS}:{kind}:{at.isoformat()}"


def redis_settings(url: str) -> RedisSettings:
    """arq connection settings from a redis:// (or rediss://, unix://) URL; ?db=N or /N picks the database."""
    return RedisSettings.from_dsn(url)


class ArqCycleQueue(CycleQueue, EvalRequests):
    """Implements `CycleQueue` and `EvalRequests` on an arq Redis pool.

    Args:
        pool: an `ArqRedis` pool writing JSON (`ArqCycleQueue.connect(url)` or `create_json_pool` makes one).
        queue_name: the arq queue the workers read.
        remember: how long an accepted cycle id is refused again.
    """

    def __init__(self, pool: ArqRedis, *, queue_name: str = default_queue_name,
                 remember: timedelta = timedelta(days=7)) -> None:
        if getattr(pool, "job_serializer", None) is not job_serializer:
            raise ValueError("ArqCycleQueue needs a pool that serialises jobs as JSON (create_json_pool), not pickle")
        self.pool = pool
        self._queue_name = queue_name
        self._remember_ms = int(remember.total_seconds() * 1000)

    @classmethod
    async def connect(cls, redis: str | RedisSettings, **kwargs: Any) -> ArqCycleQueue:
        """A queue on a new pool for a URL or `RedisSettings`."""
        settings = redis_settings(redis) if isinstance(redis, str) else redis
        return cls(await create_json_pool(settings), **kwargs)

    async def enqueue(self, job: CycleJob) -> bool:
        """Queue `job` unless its `queue_key` was seen. Returns whether it was queued."""
        marker = SEEN_PREFIX + job.queue_key
        if not await self.pool.set(marker, job.requested_at.isoformat(), nx=True, px=self._remember_ms):
            return False
        try:
            queued = await self.pool.enqueue_job(RUN_CYCLE, job_to_payload(job), _job_id=job.queue_key,
                                                 _queue_name=self._queue_name)
        except BaseException:
            await self.pool.delete(marker)
            raise
        return queued is not None

    async def request_evals(self, requested_at: datetime) -> str:
        """Queue a manual eval run as of `requested_at` for the workers. Returns its job id (queued once)."""
        job_id = evals_job_id("manual", requested_at)
        await self.pool.enqueue_job(EVALS, requested_at.isoformat(), "manual", _job_id=job_id,
                                    _queue_name=self._queue_name)
        return job_id

    async def queued(self) -> int:
        """How many jobs wait in the queue (all functions, deferred retries included)."""
        return int(await self.pool.zcard(self._queue_name))

    async def ping(self) -> bool:
        """Whether Redis answers (the API's readiness check calls it)."""
        return bool(await self.pool.ping())

    async def close(self) -> None:
        """Close the pool."""
        await self.pool.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose
