"""InMemoryEvalRunRepository: eval runs and their verdicts, with the semantics of `PgEvalRunRepository`."""

from __future__ import annotations

import copy
from dataclasses import replace

from adapters.inmemory.journal import Journal
from domain.ports.repositories import EvalRunRecord, EvalRunRepository, stored_eval_run
from domain.storage import check_limit


class InMemoryEvalRunRepository(EvalRunRepository):
    """Implements `EvalRunRepository` in memory; every change is undone by a rollback of the unit of work."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._journal = journal or Journal()
        self._rows: dict[str, EvalRunRecord] = {}

    async def add(self, run: EvalRunRecord) -> None:
        """Store a run (ValueError when its id is taken or it is invalid)."""
        stored = stored_eval_run(run)
        if stored.id in self._rows:
            raise ValueError(f"eval run {stored.id!r} is already stored")
        self._rows[stored.id] = stored
        self._journal.record(lambda: self._remove(stored.id))

    def _remove(self, run_id: str) -> None:
        self._rows.pop(run_id, None)

    async def get(self, run_id: str) -> EvalRunRecord | None:
        """The run with this id."""
        row = self._rows.get(run_id)
        return None if row is None else copy.deepcopy(row)

    def _matching(self, scope: str, kind: str | None, baseline_key: str | None) -> list[EvalRunRecord]:
        rows = [r for r in self._rows.values() if r.scope == scope and (kind is None or r.kind == kind)
                and (baseline_key is None or r.baseline_key == baseline_key)]
        rows.sort(key=lambda r: (r.at, r.id), reverse=True)
        return rows

    async def list(self, scope: str, *, kind: str | None = None, baseline_key: str | None = None, limit: int = 50,
                   offset: int = 0, documents: bool = True) -> list[EvalRunRecord]:
        """Runs of `scope`, newest first."""
        check_limit(limit)
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")
        page = self._matching(scope, kind, baseline_key)[offset:offset + limit]
        return [copy.deepcopy(r) if documents else replace(r, document={}, comparison=copy.deepcopy(r.comparison))
                for r in page]

    async def count(self, scope: str, *, kind: str | None = None, baseline_key: str | None = None) -> int:
        """How many runs match."""
        return len(self._matching(scope, kind, baseline_key))
