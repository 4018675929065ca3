"""Cycles, state documents and LLM calls on PostgreSQL."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.tables import cycles, llm_calls, state_documents
from domain.ports.repositories import (
    CycleRecord,
    CycleRepository,
    LLMCallRecord,
    LLMCallRepository,
    StateDocument,
    StateRepository,
)
from domain.storage import json_document, utc


class PgCycleRepository(CycleRepository):
    """Implements `CycleRepository` on table `cycles`.

    A cycle id belongs to one scope: upserting it under another scope raises ValueError.
    `last` is the cycle with the latest `as_of`; on a tie, the one inserted last.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def upsert(self, record: CycleRecord) -> None:
        """Insert or update by id."""
        row = {
            "id": record.id,
            "scope": record.scope,
            "kind": record.kind,
            "as_of": utc(record.as_of, what="cycle as_of"),
            "status": record.status,
            "symbol": record.symbol,
            "summary": json_document(record.summary, what="cycle summary"),
            "error": record.error,
        }
        now = func.statement_timestamp()
        ins = pg_insert(cycles).values({**row, "started_at": now, "updated_at": now})
        stmt = ins.on_conflict_do_update(
            index_elements=[cycles.c.id],
            set_={**{k: ins.excluded[k] for k in row if k != "id"}, "updated_at": now},
            where=cycles.c.scope == ins.excluded.scope,
        ).returning(cycles.c.id)
        if (await self._session.execute(stmt)).first() is None:
            raise ValueError(f"cycle id {record.id!r} belongs to another scope")

    async def get(self, cycle_id: str) -> CycleRecord | None:
        """The cycle with this id."""
        row = (await self._session.execute(select(cycles).where(cycles.c.id == cycle_id))).mappings().first()
        return None if row is None else self._record(row)

    async def last(self, scope: str) -> CycleRecord | None:
        """The cycle of `scope` with the latest `as_of`."""
        stmt = (
            select(cycles)
            .where(cycles.c.scope == scope)
            .order_by(cycles.c.as_of.desc(), cycles.c.started_at.desc(), cycles.c.id.collate("C").desc())
            .limit(1)
        )
        row = (await self._session.execute(stmt)).mappings().first()
        return None if row is None else self._record(row)

    @staticmethod
    def _record(row: Any) -> CycleRecord:
        return CycleRecord(
            id=row["id"],
            scope=row["scope"],
            kind=row["kind"],
            as_of=row["as_of"],
            status=row["status"],
            symbol=row["symbol"],
            summary=dict(row["summary"] or {}),
            error=row["error"],
        )


class PgStateRepository(StateRepository):
    """Implements `StateRepository` on table `state_documents`."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def load(self, scope: str, name: str) -> dict[str, Any] | None:
        """The stored document, or None."""
        t = state_documents
        stmt = select(t.c.value).where(t.c.scope == scope, t.c.name == name)
        value = (await self._session.execute(stmt)).scalar_one_or_none()
        return None if value is None else dict(value)

    async def save(self, scope: str, name: str, value: dict[str, Any], *, at: datetime) -> None:
        """Store (replace) a document."""
        row = {
            "scope": scope,
            "name": name,
            "value": json_document(value, what=f"state document {name!r}"),
            "updated_at": utc(at, what="at"),
        }
        ins = pg_insert(state_documents).values(row)
        stmt = ins.on_conflict_do_update(
            index_elements=[state_documents.c.scope, state_documents.c.name],
            set_={"value": ins.excluded.value, "updated_at": ins.excluded.updated_at},
        )
        await self._session.execute(stmt)

    async def latest(self, name: str, *, scope_prefix: str = "") -> StateDocument | None:
        """The document called `name` saved last among the scopes starting with `scope_prefix` (tie: greatest
        scope), or None."""
        t = state_documents
        stmt = (select(t.c.scope, t.c.value, t.c.updated_at)
                .where(t.c.name == name, t.c.scope.startswith(scope_prefix, autoescape=True))
                .order_by(t.c.updated_at.desc(), t.c.scope.collate("C").desc()).limit(1))
        row = (await self._session.execute(stmt)).one_or_none()
        return None if row is None else StateDocument(row.scope, name, dict(row.value), row.updated_at)


class PgLLMCallRepository(LLMCallRepository):
    """Implements `LLMCallRepository` on table `llm_calls`."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, record: LLMCallRecord) -> None:
        """Record a call."""
        for what, v in (("cost_usd", record.cost_usd), ("latency_ms", record.latency_ms)):
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{what} must be a finite non-negative number, got {v}")
        row = {
            "at": utc(record.at, what="call time"),
            "scope": record.scope,
            "agent": record.agent,
            "provider": record.provider,
            "model": record.model,
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "cost_usd": float(record.cost_usd),
            "latency_ms": float(record.latency_ms),
            "ok": record.ok,
            "cycle_id": record.cycle_id,
            "error": record.error,
            "request_hash": record.request_hash,
        }
        await self._session.execute(insert(llm_calls).values(row))

    async def spend(self, scope: str, *, since: datetime, until: datetime) -> float:
        """USD spent by `scope` in [since, until)."""
        t = llm_calls
        stmt = select(func.coalesce(func.sum(t.c.cost_usd), 0.0)).where(
            t.c.scope == scope, t.c.at >= utc(since, what="since"), t.c.at < utc(until, what="until")
        )
        return float((await self._session.execute(stmt)).scalar_one())

    async def list(self, scope: str, *, limit: int = 1000) -> list[LLMCallRecord]:
        """Calls of `scope`, newest first."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        t = llm_calls
        stmt = select(t).where(t.c.scope == scope).order_by(t.c.at.desc(), t.c.id.desc()).limit(limit)
        return [
            LLMCallRecord(
                at=row["at"],
                scope=row["scope"],
                agent=row["agent"],
                provider=row["provider"],
                model=row["model"],
                prompt_tokens=row["prompt_tokens"],
                completion_tokens=row["completion_tokens"],
                cost_usd=row["cost_usd"],
                latency_ms=row["latency_ms"],
                ok=row["ok"],
                cycle_id=row["cycle_id"],
                error=row["error"],
                request_hash=row["request_hash"],
            )
            for row in (await self._session.execute(stmt)).mappings().all()
        ]
