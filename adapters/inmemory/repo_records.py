"""Cycles, state documents and LLM calls in memory, with the semantics of the PostgreSQL repositories."""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import replace
from datetime import datetime
from typing import Any

from adapters.inmemory.journal import MISSING, Journal, restore
from domain.ports.repositories import (
    CycleRecord,
    CycleRepository,
    LLMCallRecord,
    LLMCallRepository,
    StateDocument,
    StateRepository,
)
from domain.storage import json_document, utc


class InMemoryCycleRepository(CycleRepository):
    """Implements `CycleRepository` in memory; a cycle id belongs to one scope.

    `last` is the cycle with the latest `as_of`; on a tie, the one inserted last.
    """

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._cycles: dict[str, tuple[int, CycleRecord]] = {}
        self._seq = itertools.count()

    async def upsert(self, record: CycleRecord) -> None:
        """Insert or update by id."""
        rec = replace(
            record,
            as_of=utc(record.as_of, what="cycle as_of"),
            summary=json_document(record.summary, what="cycle summary"),
        )
        old = self._cycles.get(record.id, MISSING)
        if old is not MISSING and old[1].scope != record.scope:
            raise ValueError(f"cycle id {record.id!r} belongs to another scope")
        seq = next(self._seq) if old is MISSING else old[0]
        self._cycles[record.id] = (seq, rec)
        self._journal.record(lambda: restore(self._cycles, record.id, old))

    async def get(self, cycle_id: str) -> CycleRecord | None:
        """The cycle with this id."""
        hit = self._cycles.get(cycle_id)
        return None if hit is None else self._copy(hit[1])

    async def last(self, scope: str) -> CycleRecord | None:
        """The cycle of `scope` with the latest `as_of`."""
        mine = [(rec.as_of, seq, rec) for seq, rec in self._cycles.values() if rec.scope == scope]
        if not mine:
            return None
        return self._copy(max(mine, key=lambda t: (t[0], t[1]))[2])

    @staticmethod
    def _copy(rec: CycleRecord) -> CycleRecord:
        return replace(rec, summary=copy.deepcopy(rec.summary))


class InMemoryStateRepository(StateRepository):
    """Implements `StateRepository` in memory."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._docs: dict[tuple[str, str], dict[str, Any]] = {}
        self._saved_at: dict[tuple[str, str], datetime] = {}

    async def load(self, scope: str, name: str) -> dict[str, Any] | None:
        """The stored document, or None."""
        doc = self._docs.get((scope, name))
        return None if doc is None else copy.deepcopy(doc)

    async def save(self, scope: str, name: str, value: dict[str, Any], *, at: datetime) -> None:
        """Store (replace) a document."""
        doc = json_document(value, what=f"state document {name!r}")
        saved_at = utc(at, what="at")
        key = (scope, name)
        old, old_at = self._docs.get(key, MISSING), self._saved_at.get(key, MISSING)
        self._docs[key], self._saved_at[key] = doc, saved_at
        self._journal.record(lambda: restore(self._docs, key, old))
        self._journal.record(lambda: restore(self._saved_at, key, old_at))

    async def latest(self, name: str, *, scope_prefix: str = "") -> StateDocument | None:
        """The document called `name` saved last among the scopes starting with `scope_prefix` (tie: greatest
        scope), or None."""
        keys = [k for k in self._docs if k[1] == name and k[0].startswith(scope_prefix)]
        if not keys:
            return None
        key = max(keys, key=lambda k: (self._saved_at[k], k[0]))
        return StateDocument(key[0], name, copy.deepcopy(self._docs[key]), self._saved_at[key])


class InMemoryLLMCallRepository(LLMCallRepository):
    """Implements `LLMCallRepository` in memory."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._by_scope: dict[str, list[LLMCallRecord]] = {}

    async def add(self, record: LLMCallRecord) -> None:
        """Record a call."""
        for what, v in (("cost_usd", record.cost_usd), ("latency_ms", record.latency_ms)):
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{what} must be a finite non-negative number, got {v}")
        rec = replace(
            record,
            at=utc(record.at, what="call time"),
            cost_usd=float(record.cost_usd),
            latency_ms=float(record.latency_ms),
        )
        calls = self._by_scope.setdefault(record.scope, [])
        calls.append(rec)
        n = len(calls) - 1
        self._journal.record(lambda: calls.__delitem__(slice(n, None)))

    async def spend(self, scope: str, *, since: datetime, until: datetime) -> float:
        """USD spent by `scope` in [since, until)."""
        since, until = utc(since, what="since"), utc(until, what="until")
        return math.fsum(c.cost_usd for c in self._by_scope.get(scope, ()) if since <= c.at < until)

    async def list(self, scope: str, *, limit: int = 1000) -> list[LLMCallRecord]:
        """Calls of `scope`, newest first."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        calls = self._by_scope.get(scope, [])
        order = sorted(range(len(calls)), key=lambda i: (calls[i].at, i), reverse=True)
        return [calls[i] for i in order[:limit]]
