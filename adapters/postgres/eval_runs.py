"""PgEvalRunRepository: eval runs and their verdicts in table `eval_runs`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.tables import eval_runs as table
from domain.ports.repositories import EvalRunRecord, EvalRunRepository, stored_eval_run
from domain.storage import check_limit


class PgEvalRunRepository(EvalRunRepository):
    """Implements `EvalRunRepository` on table `eval_runs`; runs inside the unit of work's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, run: EvalRunRecord) -> None:
        """Store a run (ValueError when its id is taken or it is invalid)."""
        r = stored_eval_run(run)
        row = {"id": r.id, "scope": r.scope, "at": r.at, "kind": r.kind, "baseline_key": r.baseline_key,
               "llm": r.llm, "git_sha": r.git_sha, "verdict": r.verdict, "document": r.document,
               "comparison": r.comparison}
        stmt = pg_insert(table).values(row).on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id)
        if (await self._session.execute(stmt)).first() is None:
            raise ValueError(f"eval run {r.id!r} is already stored")

    async def get(self, run_id: str) -> EvalRunRecord | None:
        """The run with this id."""
        found = (await self._session.execute(select(table).where(table.c.id == run_id))).mappings().first()
        return None if found is None else self._record(found)

    @staticmethod
    def _where(scope: str, kind: str | None, baseline_key: str | None) -> list[Any]:
        where = [table.c.scope == scope]
        if kind is not None:
            where.append(table.c.kind == kind)
        if baseline_key is not None:
            where.append(table.c.baseline_key == baseline_key)
        return where

    async def list(self, scope: str, *, kind: str | None = None, baseline_key: str | None = None, limit: int = 50,
                   offset: int = 0, documents: bool = True) -> list[EvalRunRecord]:
        """Runs of `scope`, newest first."""
        check_limit(limit)
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")
        document = table.c.document if documents else literal({}, JSONB).label("document")
        columns = [c for c in table.c if c.name != "document"] + [document]
        stmt = (select(*columns).where(*self._where(scope, kind, baseline_key))
                .order_by(table.c.at.desc(), table.c.id.desc()).limit(limit).offset(offset))
        return [self._record(r) for r in (await self._session.execute(stmt)).mappings().all()]

    async def count(self, scope: str, *, kind: str | None = None, baseline_key: str | None = None) -> int:
        """How many runs match."""
        stmt = select(func.count()).select_from(table).where(*self._where(scope, kind, baseline_key))
        return int((await self._session.execute(stmt)).scalar_one())

    @staticmethod
    def _record(row: Any) -> EvalRunRecord:
        return EvalRunRecord(id=row["id"], scope=row["scope"], at=row["at"], kind=row["kind"],
                             baseline_key=row["baseline_key"], llm=row["llm"], document=dict(row["document"] or {}),
                             verdict=row["verdict"], git_sha=row["git_sha"], comparison=dict(row["comparison"] or {}))
