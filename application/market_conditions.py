"""MarketConditionService: today's market conditions, stored as embeddings, recalled with what followed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import structlog

from domain.agents.schemas import MarketConditions, MemoryEvidence
from domain.evidence import LEGACY, EvidencePolicy
from domain.market_conditions import (
    BENCHMARK,
    FORWARD_DAYS,
    SECTOR_ETFS,
    VIX,
    compute_conditions,
    forward_outcome,
)
from domain.memory import MemoryFilters, MemoryKind, MemoryRecord
from domain.models.market import BarSeries
from domain.ports.market_data import MarketData
from domain.ports.uow import UnitOfWork

log = structlog.get_logger(__name__)
CONTEXT_SYMBOLS = (BENCHMARK, VIX, *SECTOR_ETFS)
PENDING_DOC = "conditions_pending"


class MarketConditionService:
    """Computes, stores and recalls market conditions for one scope."""

    def __init__(self, market: MarketData, *, scope: str, lookback: int = 120) -> None:
        self._market = market
        self._scope = scope
        self._lookback = lookback

    async def current(self, as_of: datetime, bars: Mapping[str, BarSeries] | None = None) -> MarketConditions | None:
        """Conditions from bars known at `as_of` (fetched unless given)."""
        if bars is None or BENCHMARK not in bars:
            bars = await self._market.daily_bars(CONTEXT_SYMBOLS, as_of=as_of, lookback=self._lookback)
        spy = bars.get(BENCHMARK)
        if spy is None:
            log.warning("market_conditions_unavailable", reason="no SPY bars", as_of=as_of.isoformat())
            return None
        sectors = {s: bars[s] for s in SECTOR_ETFS if s in bars}
        return compute_conditions(spy, bars.get(VIX), sectors)

    async def recall(self, uow: UnitOfWork, conditions: MarketConditions, *, as_of: datetime,
                     k: int = 3, policy: EvidencePolicy = LEGACY) -> tuple[MemoryEvidence, ...]:
        """The most similar past conditions known at `as_of`, with what SPY did after them when known; at most
        `k`, chosen by `policy` (by default the nearest `k`, as recalled, the current session's own record
        included)."""
        items = await uow.condition_memory.similar(conditions.text, k=policy.fetch(k), as_of=as_of,
                                                   filters=MemoryFilters(scope=self._scope))
        return policy.evidence(items, k)

    async def record(self, uow: UnitOfWork, *, as_of: datetime) -> MemoryRecord | None:
        """Store the conditions of the session that closed at or before `as_of`, and fill in the
        forward SPY return of conditions stored `FORWARD_DAYS` sessions earlier (known from `as_of` on)."""
        bars = await self._market.daily_bars(CONTEXT_SYMBOLS, as_of=as_of, lookback=self._lookback)
        conditions = await self.current(as_of, bars)
        if conditions is None:
            return None
        spy = bars[BENCHMARK]
        day = spy.days[-1].isoformat()
        doc = await uow.state.load(self._scope, PENDING_DOC) or {"pending": []}
        pending = [p for p in doc["pending"] if p["day"] != day]
        if len(pending) != len(doc["pending"]):
            return None
        still: list[dict[str, object]] = []
        for p in pending:
            idx = spy.index_of(datetime.fromisoformat(str(p["day"])).date())
            if idx is not None and len(spy) - 1 - idx >= FORWARD_DAYS:
                ret = float(spy.close[idx + FORWARD_DAYS] / spy.close[idx] - 1.0)
                await uow.condition_memory.record_outcome(int(str(p["id"])), outcome=forward_outcome(ret),
                                                          return_pct=round(ret, 6), outcome_at=as_of)
            elif idx is not None:
                still.append(p)
        record = MemoryRecord(MemoryKind.CONDITION, conditions.text, as_of, scope=self._scope,
                              metadata={"day": day, **conditions.model_dump(exclude={"text",
                                                                                      "similar_conditions"})})
        stored = (await uow.condition_memory.store([record]))[0]
        still.append({"id": stored.id, "day": day})
        await uow.state.save(self._scope, PENDING_DOC, {"pending": still}, at=as_of)
        return stored
