"""Requests for trading cycles: validate, de-duplicate, record as queued, enqueue.

The API, the scheduler and the event monitor ask for cycles through `CycleRequestService`. A
request gets a deterministic cycle id (scope, kind, symbol and the request minute), so the same
request twice in one minute is one cycle. An event cycle for a symbol that already had one within
the cooldown is not queued again: the earlier cycle id is returned instead. A cycle that failed is not a
duplicate: asked for again, the same cycle id is queued again as its next rerun (`CycleJob.rerun`, counted in
state document `cycle_reruns`), which the queue takes as a new job.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, tzinfo
from typing import Any, NamedTuple, cast, get_args

import structlog

from application.cycle.trading_cycle import cycle_id_for
from domain.errors import QuorumError
from domain.ports.queue import CycleJob, CycleKind, CycleQueue
from domain.ports.repositories import CycleRecord
from domain.ports.trigger import CycleTrigger
from domain.ports.uow import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)
EVENT_REQUESTS_DOC = "event_requests"
RERUNS_DOC = "cycle_reruns"
RERUNS_KEPT = timedelta(days=2)
CYCLE_KINDS: tuple[str, ...] = get_args(CycleKind)
_SYMBOL = re.compile(r"[A-Z][A-Z.]{0,9}")


class CycleRequestError(ValueError):
    """A cycle request is invalid; the message says what to change."""


class CycleEnqueueError(QuorumError):
    """The cycle queue refused or failed to take a job; nothing was queued."""


class CycleRequested(NamedTuple):
    """The answer to a cycle request.

    Attributes:
        cycle_id: the cycle that covers the request (an earlier one when deduplicated).
        deduplicated: no new job was queued because an earlier cycle covers the request.
    """

    cycle_id: str
    deduplicated: bool


def normalize_symbol(raw: str) -> str:
    """Upper-case and check a ticker: 1 to 10 characters, letters and dots, starting with a letter.

    Raises:
        CycleRequestError: the symbol is empty or has other characters.
    """
    symbol = raw.strip().upper()
    if not _SYMBOL.fullmatch(symbol):
        raise CycleRequestError(f"invalid symbol {raw[:20]!r}: use 1-10 letters or dots, starting with a letter "
                                "(e.g. TSLA, BRK.B)")
    return symbol


def _check_kind(kind: str, symbol: str | None) -> tuple[CycleKind, str | None]:
    if kind not in CYCLE_KINDS:
        raise CycleRequestError(f"invalid cycle type {kind[:20]!r}: use one of {', '.join(CYCLE_KINDS)}")
    sym = None if symbol is None or not symbol.strip() else normalize_symbol(symbol)
    if kind == "event" and sym is None:
        raise CycleRequestError("an event cycle needs the symbol that moved (symbol=...)")
    if kind == "scheduled" and sym is not None:
        raise CycleRequestError("a scheduled cycle covers the whole watchlist; use type=event or manual for one symbol")
    return cast(CycleKind, kind), sym


class CycleRequestService:
    """Turns requests for cycles into queued jobs, at most one event cycle per symbol per cooldown.

    Args:
        uow_factory: opens units of work.
        queue: where jobs go.
        scope: the scope cycles run under.
        cooldown: how long an event for a symbol stays de-duplicated.
    """

    def __init__(self, uow_factory: UnitOfWorkFactory, queue: CycleQueue, *, scope: str, tz: tzinfo,
                 cooldown: timedelta = timedelta(minutes=15)) -> None:
        if cooldown < timedelta(0):
            raise ValueError(f"cooldown must not be negative, got {cooldown}")
        self._uow_factory, self._queue = uow_factory, queue
        self.scope, self.cooldown, self.tz = scope, cooldown, tz
        self._lock = asyncio.Lock()

    async def request(self, kind: str, symbol: str | None, now: datetime) -> CycleRequested:
        """Queue a cycle, or return the cycle that already covers this request.

        Args:
            kind: "scheduled", "event" or "manual".
            symbol: the symbol of an event (required) or manual cycle; upper-cased.
            now: when the request is made (timezone-aware).

        Returns:
            The cycle id, and whether the request was deduplicated: True when no new job was queued because
            an earlier cycle covers the request (same id, or an event for the symbol within the cooldown).

        Raises:
            CycleRequestError: invalid kind, symbol or time.
            CycleEnqueueError: the queue failed; the queued record is marked failed.
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise CycleRequestError(f"request time must be timezone-aware, got {now.isoformat()}")
        cycle_kind, sym = _check_kind(kind, symbol)
        minute = now.replace(second=0, microsecond=0)
        cycle_id = cycle_id_for(self.scope, minute, cycle_kind, sym, tz=self.tz)
        async with self._lock:
            async with self._uow_factory() as uow:
                earlier = await self._covered(uow, cycle_kind, sym, now, cycle_id)
                if earlier is not None:
                    log.info("cycle_request_deduplicated", cycle_id=earlier, kind=cycle_kind, symbol=sym)
                    return CycleRequested(earlier, True)
                rerun = await self._next_rerun(uow, cycle_id, now)
                await uow.cycles.upsert(CycleRecord(cycle_id, self.scope, cycle_kind, minute, "queued", sym,
                                                    {"requested_at": now.isoformat()}))
                if cycle_kind == "event" and sym is not None:
                    await self._remember_event(uow, sym, now, cycle_id)
                await uow.commit()
            queued = await self._enqueue(CycleJob(cycle_id, cycle_kind, sym, now, rerun=rerun), now)
        log.info("cycle_requested", cycle_id=cycle_id, kind=cycle_kind, symbol=sym, queued=queued)
        return CycleRequested(cycle_id, not queued)

    async def _covered(self, uow: UnitOfWork, kind: CycleKind, symbol: str | None, now: datetime,
                       cycle_id: str) -> str | None:
        same = await uow.cycles.get(cycle_id)
        if same is not None and same.status != "failed":
            return cycle_id
        if kind != "event" or symbol is None:
            return None
        doc = await uow.state.load(self.scope, EVENT_REQUESTS_DOC) or {}
        last = doc.get(symbol)
        if not isinstance(last, dict) or "at" not in last:
            return None
        at = datetime.fromisoformat(str(last["at"]))
        if timedelta(0) <= now - at < self.cooldown:
            return str(last["cycle_id"])
        return None

    async def _next_rerun(self, uow: UnitOfWork, cycle_id: str, now: datetime) -> int:
        """0 for a cycle never asked for; else (it failed) the next rerun number, remembered."""
        if await uow.cycles.get(cycle_id) is None:
            return 0
        doc = await uow.state.load(self.scope, RERUNS_DOC) or {}
        keep: dict[str, Any] = {  # cycle id -> {"rerun": n, "at": when asked}
            c: v for c, v in doc.items()
            if isinstance(v, dict) and now - datetime.fromisoformat(str(v.get("at"))) < RERUNS_KEPT
        }
        rerun = int((keep.get(cycle_id) or {}).get("rerun", 0)) + 1
        keep[cycle_id] = {"rerun": rerun, "at": now.isoformat()}
        await uow.state.save(self.scope, RERUNS_DOC, keep, at=now)
        log.info("cycle_rerun_requested", cycle_id=cycle_id, rerun=rerun)
        return rerun

    async def _remember_event(self, uow: UnitOfWork, symbol: str, now: datetime, cycle_id: str) -> None:
        doc = await uow.state.load(self.scope, EVENT_REQUESTS_DOC) or {}
        keep: dict[str, Any] = {  # the stored document: symbol -> {"at", "cycle_id"}
            s: v for s, v in doc.items()
            if isinstance(v, dict) and now - datetime.fromisoformat(str(v.get("at"))) < self.cooldown
        }
        keep[symbol] = {"at": now.isoformat(), "cycle_id": cycle_id}
        await uow.state.save(self.scope, EVENT_REQUESTS_DOC, keep, at=now)

    async def _enqueue(self, job: CycleJob, now: datetime) -> bool:
        try:
            return await self._queue.enqueue(job)
        except Exception as exc:  # any queue failure: undo the request and report it
            error = f"could not enqueue: {type(exc).__name__}: {exc}"
            log.error("cycle_enqueue_failed", cycle_id=job.cycle_id, error=error)
            async with self._uow_factory() as uow:
                await uow.cycles.upsert(CycleRecord(job.cycle_id, self.scope, job.kind,
                                                    now.replace(second=0, microsecond=0), "failed", job.symbol,
                                                    {"requested_at": now.isoformat()}, error))
                if job.symbol is not None and job.kind == "event":
                    doc = await uow.state.load(self.scope, EVENT_REQUESTS_DOC) or {}
                    if (doc.get(job.symbol) or {}).get("cycle_id") == job.cycle_id:
                        doc.pop(job.symbol)
                        await uow.state.save(self.scope, EVENT_REQUESTS_DOC, doc, at=now)
                await uow.commit()
            raise CycleEnqueueError(f"the cycle queue is unavailable ({type(exc).__name__}); try again") from exc


class RequestingTrigger(CycleTrigger):
    """Implements `CycleTrigger` inside one process: the event monitor's moves become event-cycle requests.

    Args:
        requests: the request service the API uses too (same de-duplication and cooldown).
    """

    def __init__(self, requests: CycleRequestService) -> None:
        self._requests = requests

    async def trigger(self, symbol: str, move: float, at: datetime) -> str | None:
        """Request an event cycle for `symbol`; the cycle id (an earlier one when de-duplicated)."""
        return (await self._requests.request("event", symbol, at)).cycle_id
