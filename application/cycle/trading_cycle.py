"""TradingCycle: lock -> state -> breaker gate -> reconcile -> snapshot -> protection -> rule exits, agents,
validator, hard limits -> exits, entries -> fills -> protection again -> breaker, event log, state.
One cycle is one transaction, under the scope's trading lock."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from application.agents import Agents
from application.cycle.bookkeeping import FIRST_SYNC_LOOKBACK, ClosedTrade, book_fills
from application.cycle.breaker_book import (
    BREAKER_DOC,
    SHADOW_DOC,
    count_closed_trades,
    load_breaker,
    load_shadow_book,
    save_breaker,
    save_shadow_book,
    trip_events,
)
from application.cycle.decide import DecisionInputs, ProposalOutcome, apply_limits, decide
from application.cycle.execute import execute
from application.cycle.protection import protect_positions
from application.cycle.reconcile import merged_positions, reconcile, store_positions
from application.cycle.snapshot import AssetCache, Snapshot, take_snapshot
from application.llm_gateway import LLMGateway
from application.market_conditions import MarketConditionService
from domain import breaker as brk
from domain.events import Event, EventType, Severity
from domain.models.account import Account
from domain.models.trading import Portfolio, Side
from domain.ports.broker import Broker
from domain.ports.clock import MarketCalendar
from domain.ports.embedder import Embedder
from domain.ports.market_data import MarketData
from domain.ports.repositories import CycleRecord, EquityPoint, OrderRecord
from domain.ports.uow import UnitOfWork, UnitOfWorkFactory
from domain.risk.config import RiskSettings
from domain.risk.pdt import count_day_trades
from domain.trading_state import DayStart, TradingState

__all__ = ["BREAKER_DOC", "SHADOW_DOC", "CycleResult", "CycleSettings", "TradingCycle", "client_order_id_for",
           "cycle_id_for"]

log = structlog.get_logger(__name__)
NY = ZoneInfo("America/New_York")
Universe = Callable[[UnitOfWork, datetime], Awaitable[list[str]]]


@dataclass(frozen=True)
class CycleSettings:
    """Knobs of the cycle that are not risk limits."""

    scope: str = "live"
    lookback_days: int = 260
    recall_k: int = 5
    max_candidates: int = 30
    large_position_change_pct: float = 0.2
    lock_wait_seconds: float = 30.0


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


def day_start(state: TradingState, as_of: datetime, account: Account) -> DayStart:
    """The equity today is measured from: the previous session's close when the broker reports it."""
    today = as_of.astimezone(NY).date()
    if state.day_start is not None and state.day_start.day == today:
        return state.day_start
    if account.last_equity is not None and account.last_equity > 0:
        return DayStart(today, account.last_equity, "previous_close")
    return DayStart(today, account.equity, "first_cycle")


@dataclass
class _Books:
    """What a cycle accumulates for the breaker and the event log."""

    events: list[Event] = field(default_factory=list)
    closed: list[ClosedTrade] = field(default_factory=list)


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

    @property
    def risk(self) -> RiskSettings:
        """The hard limits and breaker thresholds this cycle trades under."""
        return self._risk

    @property
    def _cooldown(self) -> timedelta:
        return timedelta(hours=self._risk.reentry_cooldown_hours)

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
            self._gateway.discard()
            return await self._record_failure(as_of, cid, kind, symbol, exc)
        finally:
            structlog.contextvars.unbind_contextvars("cycle_id")

    async def reconcile(self, *, as_of: datetime) -> int:
        """Reconcile with the broker in a transaction of its own (start-up, the close of a simulated session):
        book fills, protect every position, count closed trades and the day's loss with the breaker.

        Returns:
            The number of differences found (each one is in the event log).
        """
        async with self._uow_factory() as uow:
            if not await uow.lock_cycles(self.scope, wait_seconds=self.settings.lock_wait_seconds):
                log.warning("reconcile_skipped", reason="another cycle holds the trading lock")
                return 0
            state = await uow.trading.load(self.scope)
            account = await self._broker.account()
            breaker = await load_breaker(uow, self.scope, account.equity)
            books = _Books()
            rec = await reconcile(uow, self._broker, state, scope=self.scope, as_of=as_of, cycle_id=None,
                                  equity=account.equity, large_change_pct=self.settings.large_position_change_pct,
                                  cooldown=self._cooldown)
            books.events += rec.events(as_of=as_of, cycle_id=None, scope=self.scope)
            books.closed += rec.booking.closed
            state, _ = await self._protect(uow, rec.state, rec.positions, rec.open_orders, {}, as_of, None, books)
            await store_positions(uow, self.scope, rec.positions, state)
            account = await self._broker.account()
            start = day_start(state, as_of, account)
            breaker = self._book_breaker(breaker, books, account.equity, start.equity, as_of, None, error=None)
            await uow.trading.save(self.scope, replace(state, day_start=start), at=as_of)
            await save_breaker(uow, self.scope, breaker, at=as_of)
            await uow.events.add(books.events)
            await uow.commit()
        return len(rec.differences)

    async def _record_failure(self, as_of: datetime, cid: str, kind: str, symbol: str | None,
                              exc: Exception) -> CycleResult:
        error = f"{type(exc).__name__}: {exc}"
        async with self._uow_factory() as uow:
            state = await load_breaker(uow, self.scope, (await self._broker.account()).equity)
            state, trip = brk.record_cycle_outcome(state, error=True, as_of=as_of, settings=self._risk.breaker)
            events = [Event(EventType.SYSTEM_ERROR, as_of, f"cycle {cid} failed and was rolled back: {error}",
                            Severity.CRITICAL, cid, symbol, {"error": error, "kind": kind}, self.scope)]
            await uow.events.add(events + trip_events([trip], cid, self.scope))
            await save_breaker(uow, self.scope, state, at=as_of)
            await uow.cycles.upsert(CycleRecord(cid, self.scope, kind, as_of, "failed", symbol, {}, error))
            await uow.commit()
        return CycleResult(cid, as_of, "failed", error=error)

    def _book_breaker(self, state: brk.BreakerState, books: _Books, equity: Decimal, start: Decimal,
                      as_of: datetime, cycle_id: str | None, *, error: bool | None) -> brk.BreakerState:
        settings = self._risk.breaker
        state, trips = count_closed_trades(state, books.closed, as_of=as_of, settings=settings)
        state, trip = brk.record_equity(state, equity=equity, day_start_equity=start, as_of=as_of, settings=settings)
        outcome_trip = None
        if error is not None:
            state, outcome_trip = brk.record_cycle_outcome(state, error=error, as_of=as_of, settings=settings)
        books.events += trip_events([*trips, trip, outcome_trip], cycle_id, self.scope)
        books.closed = []
        return state

    async def _protect(self, uow: UnitOfWork, state: TradingState, positions: Any, open_orders: Any,
                       prices: dict[str, Decimal], as_of: datetime, cycle_id: str | None, books: _Books,
                       ) -> tuple[TradingState, tuple[str, ...]]:
        opened: dict[str, datetime] = {}
        for r in await uow.fills.list(self.scope, since=as_of - FIRST_SYNC_LOOKBACK):
            if r.fill.side is Side.BUY:
                opened[r.fill.symbol] = r.fill.at
        purpose_key = cycle_id or f"reconcile|{as_of.isoformat()}"
        prot = await protect_positions(
            self._broker, state, positions=positions, open_orders=open_orders, prices=prices, as_of=as_of,
            cycle_id=cycle_id, scope=self.scope, risk=self._risk, opened=opened, lookback=FIRST_SYNC_LOOKBACK,
            client_order_id=lambda sym, purpose: client_order_id_for(purpose_key, sym, purpose))
        books.events += prot.events
        for order in prot.placed:
            await uow.orders.upsert(OrderRecord(order, self.scope, cycle_id))
        return prot.state, tuple(prot.stop_now)

    async def _run(self, uow: UnitOfWork, *, as_of: datetime, kind: str, symbol: str | None,
                   cycle_id: str) -> CycleResult:
        books = _Books([Event(EventType.CYCLE_STARTED, as_of, f"{kind} cycle started", Severity.DEBUG, cycle_id,
                              symbol, {"kind": kind}, self.scope)])
        if not await uow.lock_cycles(self.scope, wait_seconds=self.settings.lock_wait_seconds):
            return await self._skip(uow, books, as_of, kind, symbol, cycle_id, "another cycle holds the trading lock")
        state = await uow.trading.load(self.scope)
        await self._gateway.load_spend(uow, as_of)
        pre = await self._broker.account()
        breaker = await load_breaker(uow, self.scope, pre.equity)
        breaker, check = brk.check_auto_resume(breaker, as_of=as_of, settings=self._risk.breaker)
        if check.eligible and breaker.eligible_since == as_of:
            books.events.append(Event(
                EventType.BREAKER_ELIGIBLE, as_of, "circuit breaker is eligible to resume; waiting for manual approval "
                "(quorum breaker resume --approve)", Severity.WARNING, cycle_id, None,
                {"drawdown": check.drawdown, "win_streak": check.win_streak, "sharpe_7d": check.sharpe_7d}, self.scope))
        shadow = brk.in_shadow_mode(breaker)
        book = await load_shadow_book(uow, self.scope) if shadow else None
        rec = await reconcile(uow, self._broker, state, scope=self.scope, as_of=as_of, cycle_id=cycle_id,
                              equity=pre.equity, large_change_pct=self.settings.large_position_change_pct,
                              cooldown=self._cooldown)
        books.events += rec.events(as_of=as_of, cycle_id=cycle_id, scope=self.scope)
        books.closed += rec.booking.closed
        paused = rec.state.control.paused
        universe = [] if paused else ([symbol] if symbol else await self._universe(uow, as_of))
        snap = await take_snapshot(as_of=as_of, universe=universe, broker=self._broker, market=self._market,
                                   assets=self._assets, conditions=self._conditions,
                                   lookback=self.settings.lookback_days, state=rec.state,
                                   held_extra=dict(book.positions) if book else {})
        state, stop_now = await self._protect(uow, rec.state, list(snap.positions.values()), snap.open_orders,
                                              snap.prices, as_of, cycle_id, books)
        snap.positions = {p.symbol: p for p in merged_positions(list(snap.positions.values()), state)}
        if shadow and book is None:
            book = Portfolio(cash=breaker.equity_at_trip or snap.account.equity)
        start = day_start(state, as_of, snap.account)
        inputs = await self._inputs(uow, snap, state, breaker, book if shadow else None, start, as_of, cycle_id)
        inputs.stop_now = stop_now
        if paused:
            books.events.append(Event(EventType.CYCLE_SKIPPED, as_of, f"trading paused by {state.control.by}"
                                      f"{': ' + state.control.reason if state.control.reason else ''}; only "
                                      "reconciliation, protective stops and rule exits ran", Severity.INFO, cycle_id,
                                      symbol, {"reason": "paused"}, self.scope))
        elif snap.market is not None:
            recalled = await self._conditions.recall(uow, snap.market, as_of=as_of, k=3)
            snap.market = snap.market.model_copy(update={"similar_conditions": recalled})
        outcomes, _ = await decide(uow, snap, inputs, universe=universe, agents=self._agents, embedder=self._embedder,
                                   risk=self._risk, recall_k=self.settings.recall_k,
                                   max_candidates=self.settings.max_candidates)
        outcomes = apply_limits(outcomes, snap, inputs, self._risk, lambda s, a: client_order_id_for(cycle_id, s, a))
        res = await execute(uow, self._broker, outcomes, state=state, as_of=as_of, cycle_id=cycle_id,
                            scope=self.scope, shadow=shadow, book=book or Portfolio(Decimal(0)), snap=snap,
                            fees=self._risk.fees)
        account = await self._broker.account()
        after = await book_fills(uow, self._broker, res.state, as_of=as_of, cycle_id=cycle_id, scope=self.scope,
                                 equity=account.equity, large_change_pct=self.settings.large_position_change_pct,
                                 cooldown=self._cooldown)
        books.events += after.events
        books.closed += after.closed
        positions = await self._broker.positions()
        state, _ = await self._protect(uow, after.state, positions, await self._broker.open_orders(), snap.prices,
                                       as_of, cycle_id, books)
        await store_positions(uow, self.scope, positions, state)
        account = await self._broker.account()
        breaker = self._book_breaker(breaker, books, account.equity, start.equity, as_of, cycle_id, error=False)
        if brk.in_shadow_mode(breaker):
            book_after = res.book if book is not None else Portfolio(cash=breaker.equity_at_trip or account.equity)
            prices = {s: snap.prices.get(s, p.avg_entry_price) for s, p in book_after.positions.items()}
            breaker = brk.record_shadow(breaker, day=as_of.astimezone(NY).date(),
                                        shadow_equity=book_after.equity(prices),
                                        closed_trade_returns=res.shadow_closed_returns)
            await save_shadow_book(uow, self.scope, book_after, at=as_of)
        await uow.trading.save(self.scope, replace(state, day_start=start), at=as_of)
        await save_breaker(uow, self.scope, breaker, at=as_of)
        books.events += self._decision_events(outcomes, as_of, cycle_id)
        await uow.events.add(books.events)
        await uow.equity.add(self.scope, EquityPoint(as_of, account.equity, account.cash, snap.gross_exposure))
        summary = {"orders": len(res.submitted), "rejected": len(res.rejected), "shadow": shadow,
                   "shadow_fills": len(res.shadow_fills), "fills": len(rec.booking.fills) + len(after.fills),
                   "equity": str(account.equity), "considered": len(outcomes), "breaker": breaker.status.value,
                   "mode": "protective" if paused else "trading"}
        await uow.cycles.upsert(CycleRecord(cycle_id, self.scope, kind, as_of, "completed", symbol, summary))
        return CycleResult(cycle_id, as_of, "completed", outcomes, len(res.submitted), shadow, equity=account.equity)

    async def _inputs(self, uow: UnitOfWork, snap: Snapshot, state: TradingState, breaker: brk.BreakerState,
                      book: Portfolio | None, start: DayStart, as_of: datetime, cycle_id: str) -> DecisionInputs:
        sessions = self._calendar.sessions(as_of.date() - timedelta(days=10), as_of.date())[-5:]
        recent = await uow.fills.list(self.scope, since=as_of - timedelta(days=10))
        day_trades = count_day_trades([r.fill for r in recent], sessions=sessions, tz=NY)
        paused = state.control.paused
        shadow = book is not None
        allowed = False if paused else (True if shadow else brk.allows_entries(breaker))
        reason = f"trading paused by {state.control.by}" if paused else (breaker.trip_reason or "")
        return DecisionInputs(as_of, cycle_id, self.scope, self._calendar.is_open(as_of), start.equity, day_trades,
                              entries_allowed=allowed, entry_block_reason=reason,
                              shadow_positions=dict(book.positions) if book else {}, state=state,
                              agents_enabled=not paused, shadow_book=book)

    async def _skip(self, uow: UnitOfWork, books: _Books, as_of: datetime, kind: str, symbol: str | None,
                    cycle_id: str, reason: str) -> CycleResult:
        books.events.append(Event(EventType.CYCLE_SKIPPED, as_of, f"{kind} cycle skipped: {reason}", Severity.WARNING,
                                  cycle_id, symbol, {"reason": reason}, self.scope))
        await uow.events.add(books.events)
        await uow.cycles.upsert(CycleRecord(cycle_id, self.scope, kind, as_of, "skipped", symbol, {"reason": reason}))
        return CycleResult(cycle_id, as_of, "skipped")

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
