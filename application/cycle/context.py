"""The typed context of one cycle: every stage of `TradingCycle.run` takes a `CycleContext` and returns a new one
(`dataclasses.replace`), never changing the one it was given. Also the cycle's settings and result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import TypeVar

from application.agents import Agents
from application.cycle.decision import DecisionInputs, ProposalOutcome
from application.cycle.fills import ClosedTrade
from application.cycle.market_snapshot import AssetCache, Snapshot
from application.cycle.reconcile import Reconciliation
from application.cycle.transfers import TransferBooking
from application.llm_gateway import LLMGateway
from application.market_conditions import MarketConditionService
from application.tracing import NULL_TRACER
from domain.breaker import BreakerState
from domain.events import Event
from domain.evidence import COMPACT as COMPACT_EVIDENCE
from domain.evidence import EvidencePolicy
from domain.models.account import Account
from domain.models.trading import Fill, Order, Portfolio
from domain.ports.broker import Broker
from domain.ports.clock import MarketCalendar
from domain.ports.embedder import Embedder
from domain.ports.market_data import MarketData
from domain.ports.tracer import Tracer
from domain.ports.uow import UnitOfWork
from domain.risk.config import RiskSettings
from domain.trading_state import DayStart, TradingState

T = TypeVar("T")
Universe = Callable[[UnitOfWork, datetime], Awaitable[list[str]]]


@dataclass(frozen=True)
class CycleSettings:
    """Knobs of the cycle that are not risk limits; `memory_recall` off leaves entry candidates without memory
    evidence (the no-memory ablation of the evals): the trade memory is not queried. `reuse_decisions` keeps an
    agent decision for the session until its inputs change or the price moves `reuse_price_move_pct` percent
    (`application.cycle.reuse`); off, every cycle asks about every candidate. `evidence` chooses which of the
    recalled past trades (`recall_k`) and market conditions (`conditions_k`) the agents see (`domain.evidence`)."""

    scope: str = "live"
    lookback_days: int = 260
    recall_k: int = 5
    memory_recall: bool = True
    conditions_k: int = 3
    evidence: EvidencePolicy = COMPACT_EVIDENCE
    max_candidates: int = 30
    large_position_change_pct: float = 0.2
    lock_wait_seconds: float = 30.0
    reuse_decisions: bool = True
    reuse_price_move_pct: float = 1.0


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


def day_start(state: TradingState, as_of: datetime, account: Account, tz: tzinfo) -> DayStart:
    """The equity today (the exchange day in `tz`) is measured from: the previous session's close when the
    broker reports it."""
    today = as_of.astimezone(tz).date()
    if state.day_start is not None and state.day_start.day == today:
        return state.day_start
    if account.last_equity is not None and account.last_equity > 0:
        return DayStart(today, account.last_equity, "previous_close")
    return DayStart(today, account.equity, "first_cycle")


@dataclass(frozen=True)
class CycleDeps:
    """The ports and settings every stage may use (gathered by `TradingCycle` for each run); `tracer` opens the
    cycle's spans (none recorded by default)."""

    broker: Broker
    market: MarketData
    calendar: MarketCalendar
    embedder: Embedder
    agents: Agents
    gateway: LLMGateway
    conditions: MarketConditionService
    risk: RiskSettings
    universe: Universe
    settings: CycleSettings
    assets: AssetCache
    tracer: Tracer = NULL_TRACER

    @property
    def scope(self) -> str:
        """The scope the cycle reads and writes."""
        return self.settings.scope

    @property
    def cooldown(self) -> timedelta:
        """How long a symbol may not be entered again after a stop closed it."""
        return timedelta(hours=self.risk.reentry_cooldown_hours)


def _known(value: T | None, what: str) -> T:
    if value is None:
        raise RuntimeError(f"the {what} is not known before the stage that sets it")
    return value


@dataclass(frozen=True)
class CycleContext:
    """What one cycle knows so far. Each stage fills in its part.

    Attributes:
        uow: the cycle's transaction.
        opening_equity: the account's equity before reconciling (gate).
        state: Quorum's trading state, as the last stage left it.
        breaker: the circuit breaker as the last stage left it (gate, book-keeping).
        shadow: the breaker was tripped when the cycle began: entries go to the shadow book (gate).
        book: the shadow book in shadow mode, else None (gate, snapshot, send_exits, execute).
        reconciliation: what reconciling with the broker found (snapshot).
        universe: the watchlist symbols considered (snapshot; none while paused).
        snapshot: the broker and the market at `as_of`, positions with Quorum's stops (snapshot).
        stop_now: positions already through their stop (snapshot).
        start: the equity the day is measured from, moved by the money moved since (snapshot).
        transfers: the deposits and withdrawals booked (snapshot).
        inputs: what the decide stage decides on, read before the rule exits were sent (send_exits).
        outcomes: one per symbol considered, exits first (send_exits, decide; execution may reject or hold some).
        executed: how many of the first outcomes were carried out already (the rule exits, sent before any agent
            was asked; the execute stage sends the rest).
        submitted, rejected, shadow_fills, shadow_returns: what execution sent, what the broker refused, the
            shadow book's fills and the returns of the shadow trades they closed (execute).
        events: the event log entries written at book-keeping, in order.
        closed: trades closed by the fills booked, for the breaker.
        result: set by the stage that ends the cycle.
    """

    deps: CycleDeps
    uow: UnitOfWork
    as_of: datetime
    kind: str
    cycle_id: str
    symbol: str | None = None
    opening_equity: Decimal = Decimal(0)
    state: TradingState = field(default_factory=TradingState)
    breaker: BreakerState | None = None
    shadow: bool = False
    book: Portfolio | None = None
    reconciliation: Reconciliation | None = None
    universe: tuple[str, ...] = ()
    snapshot: Snapshot | None = None
    stop_now: tuple[str, ...] = ()
    start: DayStart | None = None
    transfers: TransferBooking | None = None
    inputs: DecisionInputs | None = None
    outcomes: tuple[ProposalOutcome, ...] = ()
    executed: int = 0
    submitted: tuple[Order, ...] = ()
    rejected: tuple[str, ...] = ()
    shadow_fills: tuple[Fill, ...] = ()
    shadow_returns: tuple[float, ...] = ()
    events: tuple[Event, ...] = ()
    closed: tuple[ClosedTrade, ...] = ()
    result: CycleResult | None = None

    @property
    def scope(self) -> str:
        """The scope the cycle reads and writes."""
        return self.deps.scope

    @property
    def paused(self) -> bool:
        """Whether the operator paused trading: only reconciliation, protective stops and rule exits run."""
        return self.state.control.paused

    @property
    def snap(self) -> Snapshot:
        """The snapshot (known from the snapshot stage on)."""
        return _known(self.snapshot, "snapshot")

    @property
    def breaker_state(self) -> BreakerState:
        """The circuit breaker (known from the gate on)."""
        return _known(self.breaker, "breaker state")

    @property
    def day(self) -> DayStart:
        """The equity the day is measured from (known from the snapshot stage on)."""
        return _known(self.start, "day's start")

    @property
    def decision_inputs(self) -> DecisionInputs:
        """What the decide stage decides on (known from the send_exits stage on)."""
        return _known(self.inputs, "decision inputs")

    @property
    def reconciled(self) -> Reconciliation:
        """What reconciling found (known from the snapshot stage on)."""
        return _known(self.reconciliation, "reconciliation")

    def logged(self, *events: Event) -> CycleContext:
        """This context with `events` appended to the event log."""
        return replace(self, events=self.events + events)
