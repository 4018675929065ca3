"""Cycle queue port: trading cycles requested by the API, the scheduler or the event monitor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

CycleKind = Literal["scheduled", "event", "manual"]


@dataclass(frozen=True, slots=True)
class CycleJob:
    """A request to run one trading cycle.

    Attributes:
        cycle_id: deterministic id; a job whose `queue_key` is already queued, running or done is not run again.
        kind: why the cycle runs.
        symbol: for event cycles, the symbol that moved.
        requested_at: when it was asked for (timezone-aware).
        rerun: 0 for the first run; n for the n-th run asked for after the cycle failed (the same cycle id
            runs again: its orders keep their client order ids, so the broker refuses a double).
    """

    cycle_id: str
    kind: CycleKind
    symbol: str | None
    requested_at: datetime
    rerun: int = 0

    @property
    def queue_key(self) -> str:
        """What a queue de-duplicates on: the cycle id, with the rerun number after a failure."""
        return self.cycle_id if self.rerun == 0 else f"{self.cycle_id}#rerun-{self.rerun}"


@runtime_checkable
class CycleQueue(Protocol):
    """Runs cycle jobs one at a time (never two cycles at once)."""

    async def enqueue(self, job: CycleJob) -> bool:
        """Queue `job`.

        Returns:
            True when queued, False when a job with the same `queue_key` was already queued, running or done.
        """
        ...


@runtime_checkable
class EvalRequests(Protocol):
    """Starts an eval run outside the nightly schedule (POST /api/evals/run)."""

    async def request_evals(self, requested_at: datetime) -> str:
        """Queue a manual eval run as of `requested_at`.

        Returns:
            The job's id; asking again for the same time gives the same id and runs it once.
        """
        ...
