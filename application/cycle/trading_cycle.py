"""TradingCycle: breaker gate -> universe -> snapshot -> recall -> agents -> validator -> hard limits
-> orders -> fills -> event log, trade memory, breaker update. One cycle is one transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from application.agents import Agents
from application.cycle.decide import DecisionInputs, ProposalOutcome, apply_limits, decide
from application.cycle.execute import OPEN_TRADES_DOC, submit_orders, sync_fills
from application.cycle.reconcile import reconcile, store_positions
from application.cycle.snapshot import AssetCache, take_snapshot
from application.llm_gateway import LLMGateway
from application.market_conditions import MarketConditionService
from domain import breaker as brk
from domain.events import Event, EventType, Severity
from domain.models.trading import Portfolio
from domain.ports.broker import Broker
from domain.ports.clock import MarketCalendar
from domain.ports.embedder import Embedder
from domain.ports.market_data import MarketData
from domain.ports.repositories import CycleRecord, EquityPoint
from domain.ports.uow import UnitOfWork, UnitOfWorkFactory
from domain.risk.config import RiskSettings
from domain.risk.pdt import count_day_trades
from domain.shadow import portfolio_from_dict, portfolio_to_dict

log = structlog.get_logger(__name__)
NY = ZoneInfo("America/New_York")
BREAKER_DOC, DAY_DOC, SHADOW_DOC, CONTROL_DOC = "breaker", "day", "shadow_book", "control"
Universe = Callable[[UnitOfWork, datetime], Awaitable[list[str]]]


@dataclass(frozen=True)
class CycleSettings:
    """Knobs of the cycle that are not risk limits."""

    scope: str = "live"
    lookback_days: int = 260
    recall_k: int = 5
    max_candidates: int = 30
    large_position_change_pct: float = 0.2


@dataclass
class CycleResult:
    """Outcome of one cycle."""

    cycle_id: str
    as_of: datetime
    status: str
    outcomes: list[ProposalOutcome] = field(default_factory=list)
    orders: int = 0
    shadow: bool = False
    error: str | None = None
    equity: Decimal | None = None


def cycle_id_for(scope: str, as_of: datetime, kind: str, symbol: str | None = None) -> str:
    """Deterministic id: the same scope, time, kind and symbol always give the same id."""
    raw = f"{scope}|{as_of.astimezone(ZoneInfo('UTC')).isoformat()}|{kind}|{symbol or ''}"
    return f"c-{as_of.astimezone(NY):%Y%m%d-%H%M}-{hashlib.sha1(raw.encode()).hexdigest()[:10]}"


def client_order_id_for(cycle_id: str, symbol: str, action: str) -> str:
    """Deterministic client order id: a retried cycle resubmits the same id and the broker refuses a double."""
    return f"q-{hashlib.sha1(f'{cycle_id}|{symbol}|{action}'.encode()).hexdigest()[:24]}"


class TradingCycle:
    """The trading use case; build once, call `run` for each cycle."""

    def __init__(self, *, uow_factory: UnitOfWorkFactory, broker: Broker, market: MarketData,
                 calendar: MarketCalendar, embedder: Embedder, agents: Agents, gateway: LLMGateway,
                 conditions: MarketConditionService, risk: RiskSettings, universe: Universe,
                 settings: CycleSettings = CycleSettings()) -> None:
        self._uow_factory = uow_factory
        self._broker, self._market, self._calendar = broker, market, calendar
        self._embedder, self._agents, self._gateway = embedder, agents, gateway
        self._conditions, self._risk, self._universe = conditions, risk, universe
        self.settings = settings
        self._assets = AssetCache(market)

    @property
    def scope(self) -> str:
        """The scope this cycle writes under."""
        return self.settings.scope

    async def run(self, *, as_of: datetime, kind: str = "scheduled", symbol: str | None = None,
                  cycle_id: str | None = None) -> CycleResult:
        """Run one cycle at `as_of`; on any exception roll back and record a system error separately."""
        cid = cycle_id or cycle_id_for(self.scope, as_of, kind, symbol)
        structlog.contextvars.bind_contextvars(cycle_id=cid)
        try:
            async with self._uow_factory() as uow:
                result = await self._run(uow, as_of=as_of, kind=kind, symbol=symbol, cycle_id=cid)
                await self._gateway.flush(uow)
                await uow.commit()
            return result
        except Exception as exc:
            log.exception("cycle_failed", error=str(exc))
            return await self._record_failure(as_of, cid, kind, symbol, exc)
        finally:
            structlog.contextvars.unbind_contextvars("cycle_id")

    async def reconcile(self, *, as_of: datetime) -> int:
        """Reconcile with the broker in a transaction of its own (start-up, end of a backtest).

        Returns:
            The number of differences found (each one is in the event log).
        """
        async with self._uow_factory() as uow:
            account = await self._broker.account()
            diffs = await reconcile(uow, self._broker, scope=self.scope, as_of=as_of, cycle_id=None,
                                    equity=account.equity,
                                    large_change_pct=self.settings.large_position_change_pct)
            await uow.commit()
        return len(diffs)

    async def _record_failure(self, as_of: datetime, cid: str, kind: str, symbol: str | None,
                              exc: Exception) -> CycleResult:
        error = f"{type(exc).__name__}: {exc}"
        async with self._uow_factory() as uow:
            await self._gateway.flush(uow)
            state = await self._breaker(uow, as_of)
            state, trip = brk.record_cycle_outcome(state, error=True, as_of=as_of, settings=self._risk.breaker)
            events = [Event(EventType.SYSTEM_ERROR, as_of, f"cycle {cid} failed and was rolled back: {error}",
                            Severity.CRITICAL, cid, symbol, {"error": error, "kind": kind}, self.scope)]
            events += self._trip_events(trip, cid)
            await uow.events.add(events)
            await uow.state.save(self.scope, BREAKER_DOC, state.to_dict(), at=as_of)
            await uow.cycles.upsert(CycleRecord(cid, self.scope, kind, as_of, "failed", symbol, {}, error))
            await uow.commit()
        return CycleResult(cid, as_of, "failed", error=error)

    async def _breaker(self, uow: UnitOfWork, as_of: datetime, equity: Decimal | None = None) -> brk.BreakerState:
        doc = await uow.state.load(self.scope, BREAKER_DOC)
        if doc is not None:
            return brk.BreakerState.from_dict(doc)
        if equity is None:
            equity = (await self._broker.account()).equity
        return brk.initial_state(equity)

    def _trip_events(self, trip: brk.Trip | None, cid: str) -> list[Event]:
        if trip is None:
            return []
        return [Event(EventType.BREAKER_TRIPPED, trip.at, f"circuit breaker tripped ({trip.trigger}): {trip.reason}; "
                      "new entries blocked, exits and stops still run, decisions continue in shadow mode",
                      Severity.CRITICAL, cid, None, {"trigger": trip.trigger, "reason": trip.reason}, self.scope)]

    async def _day_start(self, uow: UnitOfWork, as_of: datetime, equity: Decimal) -> Decimal:
        day = as_of.astimezone(NY).date().isoformat()
        doc = await uow.state.load(self.scope, DAY_DOC)
        if doc and doc.get("day") == day:
            return Decimal(doc["start_equity"])
        await uow.state.save(self.scope, DAY_DOC, {"day": day, "start_equity": str(equity)}, at=as_of)
        return equity

    async def _run(self, uow: UnitOfWork, *, as_of: datetime, kind: str, symbol: str | None,
                   cycle_id: str) -> CycleResult:
        events: list[Event] = [Event(EventType.CYCLE_STARTED, as_of, f"{kind} cycle started", Severity.DEBUG,
                                     cycle_id, symbol, {"kind": kind}, self.scope)]
        control = await uow.state.load(self.scope, CONTROL_DOC) or {}
        if control.get("paused"):
            events.append(Event(EventType.CYCLE_SKIPPED, as_of, f"trading paused by {control.get('by')}: "
                                f"{control.get('reason', '')}", Severity.INFO, cycle_id, symbol, {}, self.scope))
            await uow.events.add(events)
            await uow.cycles.upsert(CycleRecord(cycle_id, self.scope, kind, as_of, "skipped", symbol,
                                                {"reason": "paused"}))
            return CycleResult(cycle_id, as_of, "skipped")
        await self._gateway.load_spend(uow, as_of)
        state = await self._breaker(uow, as_of)
        state, check = brk.check_auto_resume(state, as_of=as_of, settings=self._risk.breaker)
        if check.eligible and state.eligible_since == as_of:
            events.append(Event(EventType.BREAKER_ELIGIBLE, as_of, "circuit breaker is eligible to resume; "
                                "waiting for manual approval (quorum breaker resume --approve)", Severity.WARNING,
                                cycle_id, None, {"drawdown": check.drawdown, "win_streak": check.win_streak,
                                                 "sharpe_7d": check.sharpe_7d}, self.scope))
        shadow = brk.in_shadow_mode(state)
        book_doc = await uow.state.load(self.scope, SHADOW_DOC)
        book = portfolio_from_dict(book_doc) if (shadow and book_doc) else None
        pre = await self._broker.account()
        await reconcile(uow, self._broker, scope=self.scope, as_of=as_of, cycle_id=cycle_id, equity=pre.equity,
                        large_change_pct=self.settings.large_position_change_pct)
        trades = await uow.state.load(self.scope, OPEN_TRADES_DOC) or {}
        stops = {s: Decimal(t["stop_price"]) for s, t in trades.items() if t.get("stop_price")}
        universe = [symbol] if symbol else await self._universe(uow, as_of)
        snap = await take_snapshot(as_of=as_of, universe=universe, broker=self._broker, market=self._market,
                                   assets=self._assets, conditions=self._conditions,
                                   lookback=self.settings.lookback_days, stops=stops,
                                   held_extra=dict(book.positions) if book else {})
        if shadow and book is None:
            book = Portfolio(cash=state.equity_at_trip or snap.account.equity)
        day_start = await self._day_start(uow, as_of, snap.account.equity)
        sessions = self._calendar.sessions(as_of.date() - timedelta(days=10), as_of.date())[-5:]
        recent = await uow.fills.list(self.scope, since=as_of - timedelta(days=10))
        day_trades = count_day_trades([r.fill for r in recent], sessions=sessions, tz=NY)
        if snap.market is not None:
            recalled = await self._conditions.recall(uow, snap.market, as_of=as_of, k=3)
            snap.market = snap.market.model_copy(update={"similar_conditions": recalled})
        inputs = DecisionInputs(as_of, cycle_id, self.scope, self._calendar.is_open(as_of), day_start, day_trades,
                                entries_allowed=True if shadow else brk.allows_entries(state),
                                entry_block_reason=state.trip_reason or "",
                                shadow_positions=dict(book.positions) if book else {})
        outcomes, _ = await decide(uow, snap, inputs, universe=universe, agents=self._agents,
                                   embedder=self._embedder, risk=self._risk, recall_k=self.settings.recall_k,
                                   max_candidates=self.settings.max_candidates)
        outcomes = apply_limits(outcomes, snap, inputs, self._risk,
                                lambda s, a: client_order_id_for(cycle_id, s, a))
        res, book_after = await submit_orders(uow, self._broker, outcomes, as_of=as_of, cycle_id=cycle_id,
                                              scope=self.scope, shadow=shadow, book=book or Portfolio(Decimal(0)),
                                              snap=snap, fees=self._risk.fees)
        reasons = {o.limit.order.client_order_id: o for o in outcomes if o.limit and o.limit.order}
        await sync_fills(uow, self._broker, res, as_of=as_of, cycle_id=cycle_id, scope=self.scope, reasons=reasons,
                         equity=snap.account.equity, large_change_pct=self.settings.large_position_change_pct)
        account = await self._broker.account()
        await store_positions(uow, self.scope, await self._broker.positions())
        trips: list[brk.Trip | None] = []
        for r in res.closed_returns:
            state, trip = brk.record_trade_result(state, return_pct=r, as_of=as_of, settings=self._risk.breaker)
            trips.append(trip)
        state, trip = brk.record_equity(state, equity=account.equity, day_start_equity=day_start, as_of=as_of,
                                        settings=self._risk.breaker)
        trips.append(trip)
        state, trip = brk.record_cycle_outcome(state, error=False, as_of=as_of, settings=self._risk.breaker)
        trips.append(trip)
        if brk.in_shadow_mode(state):
            if book is None:
                book_after = Portfolio(cash=state.equity_at_trip or account.equity)
            prices = {s: snap.prices.get(s, p.avg_entry_price) for s, p in book_after.positions.items()}
            state = brk.record_shadow(state, day=as_of.astimezone(NY).date(),
                                      shadow_equity=book_after.equity(prices),
                                      closed_trade_returns=res.shadow_closed_returns)
            await uow.state.save(self.scope, SHADOW_DOC, portfolio_to_dict(book_after), at=as_of)
        for t in trips:
            events += self._trip_events(t, cycle_id)
        await uow.state.save(self.scope, BREAKER_DOC, state.to_dict(), at=as_of)
        events += self._decision_events(outcomes, as_of, cycle_id)
        await uow.events.add(events)
        await uow.equity.add(self.scope, EquityPoint(as_of, account.equity, account.cash,
                                                     snap.gross_exposure))
        summary = {"orders": len(res.submitted), "rejected": len(res.rejected), "shadow": shadow,
                   "shadow_fills": len(res.shadow_fills), "fills": len(res.fills), "equity": str(account.equity),
                   "considered": len(outcomes), "breaker": state.status.value}
        await uow.cycles.upsert(CycleRecord(cycle_id, self.scope, kind, as_of, "completed", symbol, summary))
        return CycleResult(cycle_id, as_of, "completed", outcomes, len(res.submitted), shadow, equity=account.equity)

    def _decision_events(self, outcomes: list[ProposalOutcome], as_of: datetime, cid: str) -> list[Event]:
        out = []
        for o in outcomes:
            payload: dict[str, Any] = o.to_json()
            if o.limit is not None and o.limit.adjustments:
                out.append(Event(EventType.LIMIT_APPLIED, as_of, f"{o.symbol}: " + "; ".join(
                    f"{a.limit}: {a.detail}" for a in o.limit.adjustments), Severity.INFO, cid, o.symbol,
                    {"limits": [a.limit for a in o.limit.adjustments]}, self.scope))
            if o.final == "REJECTED":
                limit = o.limit.rejected_by if o.limit and o.limit.rejected_by else None
                out.append(Event(EventType.PROPOSAL_REJECTED, as_of, f"{o.symbol} {o.signal.action} rejected: "
                                 f"{o.reason}", Severity.INFO, cid, o.symbol, {**payload, "limit": limit},
                                 self.scope))
            else:
                out.append(Event(EventType.SIGNAL, as_of, f"{o.symbol}: {o.final} — {o.signal.reasoning}",
                                 Severity.DEBUG if o.final == "HOLD" else Severity.INFO, cid, o.symbol, payload,
                                 self.scope))
        return out
