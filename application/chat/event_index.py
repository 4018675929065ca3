"""The chat's event search: which events are worth finding by meaning, their text, indexing them as they are
written (or all at once, resumably) and searching them with citations (time and cycle id of each event used).

Indexing resumes after the highest event id stored for the scope, re-reading a window of `LOOKBACK_IDS` ids below
it: ids are handed out when a transaction inserts, not when it commits, so an event committed a moment after a
newer one would otherwise be passed over. An event already stored is skipped without being embedded again, so
nothing is indexed twice. `index_new_events(..., from_start=True)` re-reads the whole log and fills any gap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import structlog

from domain.chat import EventCitation, EventDocument, EventHit
from domain.events import Event, EventType
from domain.ports.chat import EventMemory
from domain.ports.uow import UnitOfWorkFactory

log = structlog.get_logger(__name__)

INDEXED_TYPES = frozenset({
    EventType.SIGNAL, EventType.RISK, EventType.VALIDATION, EventType.LIMIT_APPLIED, EventType.PROPOSAL_REJECTED,
    EventType.ORDER_SUBMITTED, EventType.ORDER_REJECTED, EventType.ORDER_FILLED, EventType.STOP_TRIGGERED,
    EventType.SHADOW_FILL, EventType.BREAKER_TRIPPED, EventType.BREAKER_ELIGIBLE, EventType.BREAKER_RESUMED,
    EventType.RECONCILIATION_DIFF, EventType.CYCLE_SKIPPED, EventType.SYSTEM_ERROR, EventType.LLM_FAILED,
    EventType.LLM_BUDGET_EXHAUSTED, EventType.WATCHLIST_CHANGED, EventType.DISCOVERY_RUN,
    EventType.DISCOVERY_DIVERGENCE, EventType.TRADING_PAUSED, EventType.TRADING_RESUMED,
    EventType.MARKET_CONDITIONS, EventType.ALERT_UNDELIVERABLE, EventType.DAILY_SUMMARY,
    EventType.LARGE_POSITION_CHANGE, EventType.KILL_SWITCH, EventType.EVAL_REGRESSION, EventType.CHAT_ACTION,
})
"""Events the search finds. Left out: cycle started/completed, snapshots, recall counts and LLM call records
(bookkeeping that says nothing about why)."""

HEADINGS = {
    EventType.SIGNAL: "trading decision", EventType.RISK: "risk sizing", EventType.VALIDATION: "validator check",
    EventType.LIMIT_APPLIED: "hard limit applied", EventType.PROPOSAL_REJECTED: "trade proposal rejected",
    EventType.ORDER_REJECTED: "order rejected by the broker",
    EventType.STOP_TRIGGERED: "stop-loss triggered, position stopped out",
    EventType.SHADOW_FILL: "shadow trade while the breaker is tripped", EventType.CYCLE_SKIPPED: "cycle skipped",
    EventType.SYSTEM_ERROR: "system error", EventType.LLM_FAILED: "LLM call failed",
}
"""How a document names its event's type (the type's own name when absent): words a question would use."""
REASON_KEYS = ("reasoning", "reason", "rejected_reason", "warnings", "error", "detail", "note", "trigger")
"""Payload keys (at any depth) whose text explains an event; added to its message."""
SKIPPED_KEYS = frozenset({"memory_evidence", "similar_conditions"})
"""Payload parts not walked: other trades' texts, which would make an event look like what it only recalled."""
MAX_TEXT_CHARS = 1500
LOOKBACK_IDS = 1000
"""Ids below the highest stored one re-read by each indexing run (see the module docstring)."""
MAX_READ_PER_RUN = 2048
"""Events the post-cycle hook and a search read at most per run, so a long unindexed history (before the first
backfill) slows no cycle and no question by more than a few seconds: each run takes the next part of it."""

IndexProgress = Callable[[int, int], None]
"""Called after each batch with (events read, events stored) so far."""


def event_document(event: Event) -> EventDocument | None:
    """The document the event search stores for `event`, or None when it is not worth finding (its type is not
    in `INDEXED_TYPES`, it has no id yet, or it says nothing).

    The text is the type, the symbol and the message, then the reasoning found in the payload (the signal's,
    the risk agent's, the validators' warnings, why a limit or the broker refused...), at most 1,500 characters.
    """
    kind = EventType(event.type)
    if event.id is None or kind not in INDEXED_TYPES:
        return None
    text = render_text(kind, event.symbol, event.message, event.payload)
    if not text:
        return None
    return EventDocument(event_id=event.id, scope=event.scope, at=event.at, type=kind.value, cycle_id=event.cycle_id,
                         symbol=event.symbol, text=text)


def render_text(kind: EventType, symbol: str | None, message: str, payload: Mapping[str, Any]) -> str:
    """`heading symbol: message`, then each reason in the payload not already said, trimmed to `MAX_TEXT_CHARS`."""
    message = " ".join(message.split())
    if not message:
        return ""
    heading = HEADINGS.get(kind, kind.value.replace("_", " "))
    verdict = payload.get("final")
    if kind is EventType.SIGNAL and isinstance(verdict, str) and verdict:
        heading = f"decision to {verdict.lower()}"
    lines = [f"{heading}{' ' + symbol if symbol else ''}: {message}"]
    said = lines[0]
    for label, value in _reasons(payload, ()):
        if value not in said:
            lines.append(f"{label}: {value}")
            said += " " + value
    text = "\n".join(lines)
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1].rstrip() + "…"


def _reasons(value: Any, path: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in SKIPPED_KEYS:
                continue
            if key in REASON_KEYS:
                yield from _texts(" ".join((*path, key)).replace("_", " "), item)
            elif isinstance(item, Mapping | list):
                yield from _reasons(item, (*path, str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from _reasons(item, path)


def _texts(label: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        cleaned = " ".join(value.split())
        if cleaned:
            yield label, cleaned
    elif isinstance(value, list):
        joined = "; ".join(" ".join(v.split()) for v in value if isinstance(v, str) and v.strip())
        if joined:
            yield label, joined


async def index_new_events(uow_factory: UnitOfWorkFactory, memory: EventMemory, scope: str, *, batch: int = 256,
                           lookback: int = LOOKBACK_IDS, from_start: bool = False, max_read: int | None = None,
                           progress: IndexProgress | None = None) -> int:
    """Store in `memory` the events of `scope` it does not hold yet, reading the log in id order in batches.

    Resumable: each batch is stored before the next is read, and a run resumes after the highest id stored
    (minus `lookback` ids, see the module docstring). Nothing is stored twice.

    Args:
        uow_factory: opens a read of the event log per batch.
        memory: where documents go.
        scope: whose events.
        batch: events read per batch.
        lookback: ids below the highest stored one to read again.
        from_start: read the whole log (fills any gap an earlier run left).
        max_read: stop after the batch that reaches this many events above the highest id stored (the window
            below it is always read whole; None: read to the end).
        progress: told (events read, events stored) after each batch.

    Returns:
        How many events were stored.

    Raises:
        ValueError: `batch` or `max_read` is not positive, or `lookback` is negative.
    """
    if batch <= 0 or lookback < 0 or (max_read is not None and max_read <= 0):
        raise ValueError(f"batch and max_read must be positive and lookback not negative, got {batch}, {max_read} "
                         f"and {lookback}")
    mark = await memory.last_event_id(scope)
    after = 0 if from_start else max(0, mark - lookback)
    read = stored = fresh = 0
    while True:
        async with uow_factory() as uow:
            found = await uow.events.after(scope, after, limit=batch)
        if not found:
            break
        stored += await memory.add([d for d in map(event_document, found) if d is not None])
        read += len(found)
        fresh += sum(1 for e in found if (e.id or 0) > mark)
        after = max(e.id or 0 for e in found)
        if progress is not None:
            progress(read, stored)
        if len(found) < batch or (max_read is not None and fresh >= max_read):
            break
    return stored


class EventIndexer:
    """Keeps the event search of one scope up to date; the post-cycle hook of the running system.

    Args:
        memory: the event search store.
        uow_factory: reads the event log.
        scope: whose events.
        batch: events read per batch.
        max_read: events read at most per run (`MAX_READ_PER_RUN`; a backlog is taken in parts, run by run).
    """

    def __init__(self, memory: EventMemory, uow_factory: UnitOfWorkFactory, scope: str, *, batch: int = 256,
                 max_read: int = MAX_READ_PER_RUN) -> None:
        self.memory, self.scope = memory, scope
        self._uow_factory, self._batch, self._max_read = uow_factory, batch, max_read

    async def catch_up(self) -> int:
        """Index the events written since the last run (at most `max_read` of them); returns how many were stored.

        Raises:
            Exception: whatever reading the log, embedding or storing raised.
        """
        return await index_new_events(self._uow_factory, self.memory, self.scope, batch=self._batch,
                                      max_read=self._max_read)

    async def catch_up_quietly(self) -> int:
        """`catch_up`, a failure logged and answered 0 (the next run picks up what this one missed)."""
        try:
            return await self.catch_up()
        except Exception as exc:  # noqa: BLE001 - indexing must never fail a cycle or a search
            log.warning("event_index_failed", scope=self.scope, error=f"{type(exc).__name__}: {exc}")
            return 0


class EventSearch:
    """The chat's event search over one scope: catches up indexing, then finds events by meaning.

    Args:
        memory: the event search store.
        uow_factory: reads the event log (to catch up).
        scope: whose events.
    """

    def __init__(self, memory: EventMemory, uow_factory: UnitOfWorkFactory, scope: str) -> None:
        self.indexer = EventIndexer(memory, uow_factory, scope)

    async def search(self, query: str, *, as_of: datetime, k: int = 8, symbol: str | None = None,
                     since: datetime | None = None) -> list[EventHit]:
        """The `k` events nearest to `query`, closest first, none after `as_of` nor before `since`.

        Events written since the last indexing run are indexed first, up to `MAX_READ_PER_RUN` of them (a failure
        there is logged and the search answers from what is indexed).

        Args:
            query: the question, in words.
            as_of: nothing later is found.
            k: how many events at most.
            symbol: only this symbol's events (any case).
            since: nothing earlier is found.

        Raises:
            EmptyTextError: the query is empty.
            ValueError: k is not positive, or as_of or since has no time zone.
        """
        await self.indexer.catch_up_quietly()
        return await self.indexer.memory.search(query, scope=self.indexer.scope, k=k, as_of=as_of, since=since,
                                                symbol=symbol.strip().upper() if symbol else None)


def citations(hits: list[EventHit] | tuple[EventHit, ...]) -> tuple[EventCitation, ...]:
    """The events `hits` used, in order, each once: id, time, cycle id, type, symbol."""
    seen: set[int] = set()
    out = []
    for h in hits:
        d = h.document
        if d.event_id not in seen:
            seen.add(d.event_id)
            out.append(EventCitation(event_id=d.event_id, at=d.at, cycle_id=d.cycle_id, type=d.type,
                                     symbol=d.symbol))
    return tuple(out)
