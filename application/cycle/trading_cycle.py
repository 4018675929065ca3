"""TradingCycle: one cycle is one transaction, under the scope's trading lock, run as six stages, each a
function of the cycle's typed context returning a new one:

    gate -> snapshot -> send_exits -> decide -> execute -> book_keeping

(see each stage's module; the rule exits are sent before any agent is asked). Any exception rolls the whole
cycle back; the failure is recorded in a transaction of its own and counted by the circuit breaker.

With a tracer, a cycle is one trace: a "cycle <kind>" span, one child span per stage run, and under the decide
stage the agents' and LLMs' spans (opened by the gateway and the traced LLMs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

import structlog

from application.agents import Agents
from application.cycle.bookkeeping import book_keeping
from application.cycle.breaker_book import (
    BREAKER_DOC,
    SHADOW_DOC,
    book_breaker,
    load_breaker,
    save_breaker,
    trip_events,
)
from application.cycle.context import CycleContext, CycleDeps, CycleResult, CycleSettings, Universe, day_start
from application.cycle.decide import decide
from application.cycle.execute import execute
from application.cycle.gate import LOCK_HELD, gate
from application.cycle.ids import client_order_id_for, cycle_id_for
from application.cycle.market_snapshot import AssetCache
from application.cycle.protection import protect
from application.cycle.reconcile import reconcile, store_positions
from application.cycle.send_exits import send_exits
from application.cycle.snapshot import snapshot
from application.cycle.trace_outputs import cycle_outputs, stage_outputs
from application.cycle.transfers import book_transfers, day_start_with_transfers
from application.llm_gateway import LLMGateway
from application.market_conditions import MarketConditionService
from application.tracing import NULL_TRACER
from domain import breaker as brk
from domain.event_factories import cycle_failed
from domain.ports.broker import Broker
from domain.ports.clock import MarketCalendar
from domain.ports.embedder import Embedder
from domain.ports.market_data import MarketData
from domain.ports.repositories import CycleRecord
from domain.ports.tracer import Tracer
from domain.ports.uow import UnitOfWorkFactory
from domain.risk.config import RiskSettings

__all__ = ["BREAKER_DOC", "SHADOW_DOC", "CycleResult", "CycleSettings", "TradingCycle", "Universe",
           "client_order_id_for", "cycle_id_for", "day_start"]

log = structlog.get_logger(__name__)
Stage = Callable[[CycleContext], Awaitable[CycleContext]]
STAGES: tuple[Stage, ...] = (gate, snapshot, send_exits, decide, execute, book_keeping)


async def run_stages(ctx: CycleContext) -> CycleResult:
    """The stages in order, until one ends the cycle (the gate when another cycle holds the lock, else
    book-keeping); each stage is a span of the tracer's."""
    tracer = ctx.deps.tracer
    for stage in STAGES:
        if tracer.enabled:
            ctx = await _traced(stage, ctx)
        else:
            ctx = await stage(ctx)
        if ctx.result is not None:
            return ctx.result
    raise RuntimeError(f"no stage ended cycle {ctx.cycle_id}")


async def _traced(stage: Stage, ctx: CycleContext) -> CycleContext:
    name = getattr(stage, "__name__", "stage")
    async with ctx.deps.tracer.span(name, metadata={"cycle_id": ctx.cycle_id, "stage": name}) as span:
        ctx = await stage(ctx)
        span.set_outputs(stage_outputs(name, ctx))
    return ctx


class TradingCycle:
    """The trading use case; build once, call `run` for each cycle."""

    def __init__(self, *, uow_factory: UnitOfWorkFactory, broker: Broker, market: MarketData,
                 calendar: MarketCalendar, embedder: Embedder, agents: Agents, gateway: LLMGateway,
                 conditions: MarketConditionService, risk: RiskSettings, universe: Universe,
                 settings: CycleSettings = CycleSettings(), tracer: Tracer = NULL_TRACER) -> None:
        self._uow_factory = uow_factory
        self._broker, self._market, self._calendar = broker, market, calendar
        self._embedder, self._agents, self._gateway = embedder, agents, gateway
        self._conditions, self._risk, self._universe = conditions, risk, universe
        self.settings = settings
        self._tracer = tracer
        self._assets = AssetCache(market)

    @property
    def scope(self) -> str:
        """The scope this cycle writes under."""
        return self.settings.scope

    @property
    def risk(self) -> RiskSettings:
        """The hard limits and breaker thresholds this cycle trades under."""
        return self._risk

    def _deps(self) -> CycleDeps:
        return CycleDeps(self._broker, self._market, self._calendar, self._embedder, self._agents, self._gateway,
                         self._conditions, self._risk, self._universe, self.settings, self._assets, self._tracer)

    async def run(self, *, as_of: datetime, kind: str = "scheduled", symbol: str | None = None,
                  cycle_id: str | None = None) -> CycleResult:
        """Run one cycle at `as_of` (`run_stages` in one transaction); on any exception roll back and record a
        system error separately. With tracing on, the cycle is one trace ("cycle <kind>")."""
        cid = cycle_id or cycle_id_for(self.scope, as_of, kind, symbol, tz=self._calendar.tz)
        if not self._tracer.enabled:
            return await self._run(as_of, kind, symbol, cid)
        metadata = {"cycle_id": cid, "scope": self.scope, "kind": kind, "as_of": as_of.isoformat(), "symbol": symbol}
        async with self._tracer.span(f"cycle {kind}", inputs={"as_of": as_of.isoformat(), "kind": kind,
                                                             "symbol": symbol}, metadata=metadata) as span:
            result = await self._run(as_of, kind, symbol, cid)
            span.set_outputs(cycle_outputs(result))
            if result.error is not None:
                span.set_error(result.error)
        return result

    async def _run(self, as_of: datetime, kind: str, symbol: str | None, cid: str) -> CycleResult:
        structlog.contextvars.bind_contextvars(cycle_id=cid)
        try:
            async with self._uow_factory() as uow:
                result = await run_stages(CycleContext(self._deps(), uow, as_of=as_of, kind=kind, cycle_id=cid,
                                                       symbol=symbol))
                await self._gateway.flush(uow, cid)
                await uow.commit()
            return result
        except Exception as exc:
            log.exception("cycle_failed", error=str(exc))
            self._gateway.discard(cid)
            return await self._record_failure(as_of, cid, kind, symbol, exc)
        finally:
            structlog.contextvars.unbind_contextvars("cycle_id")

    async def reconcile(self, *, as_of: datetime) -> int:
        """Reconcile with the broker in a transaction of its own (start-up, the close of a simulated session):
        book fills, protect every position, count closed trades and the day's loss with the breaker.

        Returns:
            The number of differences found (each one is in the event log).
        """
        d = self._deps()
        async with self._uow_factory() as uow:
            if not await uow.lock_cycles(self.scope, wait_seconds=self.settings.lock_wait_seconds):
                log.warning("reconcile_skipped", reason=LOCK_HELD)
                return 0
            state = await uow.trading.load(self.scope)
            account = await d.broker.account()
            breaker = await load_breaker(uow, self.scope, account.equity)
            rec = await reconcile(uow, d.broker, state, scope=self.scope, as_of=as_of, cycle_id=None,
                                  equity=account.equity, large_change_pct=self.settings.large_position_change_pct,
                                  cooldown=d.cooldown)
            prot = await protect(uow, d.broker, rec.state, positions=rec.positions, open_orders=rec.open_orders,
                                 prices={}, as_of=as_of, cycle_id=None, scope=self.scope, risk=d.risk)
            await store_positions(uow, self.scope, rec.positions, prot.state)
            transfers = await book_transfers(uow, d.broker, scope=self.scope, as_of=as_of, cycle_id=None)
            account = await d.broker.account()
            today = as_of.astimezone(self._calendar.tz).date()
            stored = prot.state.day_start is not None and prot.state.day_start.day == today
            start = day_start_with_transfers(day_start(prot.state, as_of, account, self._calendar.tz), stored=stored,
                                             booking=transfers, as_of=as_of, calendar=self._calendar)
            breaker, trips = book_breaker(breaker, rec.booking.closed, equity=account.equity,
                                          day_start_equity=start.equity, as_of=as_of, settings=d.risk.breaker,
                                          error=None, flow=transfers.flow)
            await uow.trading.save(self.scope, replace(prot.state, day_start=start), at=as_of)
            await save_breaker(uow, self.scope, breaker, at=as_of)
            await uow.events.add([*rec.events(as_of=as_of, cycle_id=None, scope=self.scope), *prot.events,
                                  *transfers.events, *trip_events(trips, None, self.scope)])
            await uow.commit()
        return len(rec.differences)

    async def _record_failure(self, as_of: datetime, cid: str, kind: str, symbol: str | None,
                              exc: Exception) -> CycleResult:
        error = f"{type(exc).__name__}: {exc}"
        async with self._uow_factory() as uow:
            state = await load_breaker(uow, self.scope, (await self._broker.account()).equity)
            state, trip = brk.record_cycle_outcome(state, error=True, as_of=as_of, settings=self._risk.breaker)
            await uow.events.add([cycle_failed(at=as_of, scope=self.scope, cycle_id=cid, kind=kind, error=error,
                                               symbol=symbol), *trip_events([trip], cid, self.scope)])
            await save_breaker(uow, self.scope, state, at=as_of)
            await uow.cycles.upsert(CycleRecord(cid, self.scope, kind, as_of, "failed", symbol, {}, error))
            await uow.commit()
        return CycleResult(cid, as_of, "failed", error=error)
