"""InMemoryEventRepository: the event log in a list per scope."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import replace

from adapters.inmemory.journal import Journal
from domain.events import Event, EventType, Severity
from domain.ports.repositories import EventQuery, EventRepository, check_after
from domain.redaction import scrub_event
from domain.storage import json_document, utc, utc_or_none

_RANK = {s: i for i, s in enumerate(Severity)}


class InMemoryEventRepository(EventRepository):
    """Implements `EventRepository` in memory, with the semantics of `PgEventRepository`.

    Time filters are half-open: `since <= at < until`. Events with the same `at` come back in
    reverse order of insertion.
    """

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._by_scope: dict[str, list[Event]] = {}
        self._next_id = 1

    async def add(self, events: Sequence[Event]) -> None:
        """Append events, registered secrets masked in their text."""
        normalised = [
            replace(
                e,
                at=utc(e.at, what="event time"),
                type=EventType(e.type),
                severity=Severity(e.severity),
                payload=json_document(e.payload, what="event payload"),
            )
            for e in map(scrub_event, events)
        ]
        sizes: dict[str, int] = {}
        for e in normalised:
            log = self._by_scope.setdefault(e.scope, [])
            sizes.setdefault(e.scope, len(log))
            log.append(replace(e, id=self._next_id))
            self._next_id += 1
        if sizes:
            self._journal.record(lambda: self._truncate(sizes))

    def _truncate(self, sizes: dict[str, int]) -> None:
        for scope, n in sizes.items():
            del self._by_scope[scope][n:]

    def _matching(self, q: EventQuery) -> list[Event]:
        types = {EventType(t) for t in q.types}
        rank = None if q.min_severity is None else _RANK[Severity(q.min_severity)]
        since = utc_or_none(q.since, what="since")
        until = utc_or_none(q.until, what="until")
        return [
            e
            for e in self._by_scope.get(q.scope, ())
            if (not types or e.type in types)
            and (q.symbol is None or e.symbol == q.symbol)
            and (q.cycle_id is None or e.cycle_id == q.cycle_id)
            and (rank is None or _RANK[e.severity] >= rank)
            and (since is None or e.at >= since)
            and (until is None or e.at < until)
        ]

    async def query(self, q: EventQuery) -> list[Event]:
        """Events matching `q`, newest first."""
        if q.limit < 0 or q.offset < 0:
            raise ValueError(f"limit and offset must not be negative, got {q.limit} and {q.offset}")
        found = sorted(self._matching(q), key=lambda e: (e.at, e.id or 0), reverse=True)
        return [replace(e, payload=copy.deepcopy(e.payload)) for e in found[q.offset : q.offset + q.limit]]

    async def count(self, q: EventQuery) -> int:
        """How many events match `q`, ignoring limit and offset."""
        return len(self._matching(q))

    async def after(self, scope: str, after_id: int, *, limit: int) -> list[Event]:
        """Events of `scope` whose id is above `after_id`, in id order, at most `limit`."""
        check_after(after_id, limit)
        found = [e for e in self._by_scope.get(scope, ()) if (e.id or 0) > after_id]
        return [replace(e, payload=copy.deepcopy(e.payload)) for e in found[:limit]]

    def exists(self, scope: str, event_ids: Iterable[int]) -> set[int]:
        """Which of `event_ids` are events of `scope` (what a foreign key to the event log checks)."""
        known = {e.id for e in self._by_scope.get(scope, ())}
        return {i for i in event_ids if i in known}
