"""Backtest: the real trading cycle, run once per NYSE session on a simulated market and broker."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from application.benchmarks import benchmarks
from application.breaker_history import RESUME_POLICIES, ResumePolicy, breaker_history
from application.control import approve_breaker_resume, breaker_state
from application.cycle.reuse import llm_decision_totals
from application.cycle.trading_cycle import TradingCycle
from application.discovery.service import DiscoveryService
from application.dividends import DividendPayment, DividendPolicy, DividendVenue, dividend_policy, dividends_in
from application.llm_cost_report import llm_cost_summary
from application.market_conditions import MarketConditionService
from application.round_trips import RoundTrip, round_trip_returns, round_trips
from domain.analytics import Performance, performance
from domain.breaker import BreakerStatus
from domain.market_conditions import BENCHMARK
from domain.models.trading import Fill
from domain.money import money, price
from domain.ports.broker import Broker
from domain.ports.clock import MarketCalendar
from domain.ports.market_data import MarketData
from domain.ports.repositories import EquityPoint
from domain.ports.uow import UnitOfWorkFactory
from domain.ports.venue import SimulatedVenue

__all__ = ["BacktestResult", "BacktestRunner", "EquityRow"]

log = structlog.get_logger(__name__)
NO_DIVIDEND_VENUE = DividendPolicy(False, "the simulated venue has no dividend information: Quorum and the "
                                          "benchmarks are price returns")
FILL_DELAY = timedelta(minutes=1)
Progress = Callable[[int, int, date, Decimal], None]


@dataclass(frozen=True)
class EquityRow:
    """One line of equity.csv."""

    day: date
    equity: Decimal
    cash: Decimal
    exposure: Decimal


@dataclass
class BacktestResult:
    """Everything a report needs. `fills` are executions; `round_trips` the trades (flat to flat); `dividends`
    says whether dividends were counted (for Quorum and every benchmark alike) and `dividend_payments` what
    Quorum's account was credited; `benchmark_curves` each benchmark's value from the session before the run to
    its last (its first value is the starting cash)."""

    run_id: str
    scope: str
    start: date
    end: date
    starting_cash: Decimal
    symbols: list[str]
    equity: list[EquityRow]
    fills: list[Fill]
    decisions: list[dict[str, Any]]
    performance: Performance
    benchmarks: dict[str, dict[str, float | None]]
    llm_cost_usd: float = 0.0
    failed_cycles: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    dividends: DividendPolicy = NO_DIVIDEND_VENUE
    dividend_payments: list[DividendPayment] = field(default_factory=list)
    benchmark_curves: dict[str, list[tuple[date, Decimal]]] = field(default_factory=dict)

    @property
    def fees(self) -> Decimal:
        """Total fees paid."""
        return sum((f.fee for f in self.fills), Decimal(0))

    @property
    def round_trips(self) -> list[RoundTrip]:
        """The closed round trips (the trades), in the order they closed."""
        return round_trips(self.fills)


class BacktestRunner:
    """Drives the simulated venue and the cycle through every session between start and end.

    Each session: the venue replays the open, the cycle runs at the open, the venue replays a price update one
    minute later (what the cycle sent fills then: nothing fills inside `submit`, like on Alpaca) and the close
    (stops and limits on the day's range, DAY orders expire), and Quorum reconciles at the close, so stop fills
    and the day's loss reach the breaker the same day. `resume_policy` says what a simulation does when the
    breaker becomes eligible to resume (nobody is there to approve): "approve-when-eligible" approves at that
    session's close, "never" stays in shadow mode. The starting cash is the broker's.

    Honest comparisons: dividends are credited by the venue only when every symbol the run may trade and SPY
    have dividend information (`application.dividends`), and the benchmarks pay the run's slippage and fees
    and receive the same dividends (`application.benchmarks`).
    """

    def __init__(self, *, uow_factory: UnitOfWorkFactory, market: MarketData, calendar: MarketCalendar,
                 venue: SimulatedVenue, broker: Broker, cycle: TradingCycle, conditions: MarketConditionService,
                 discovery: DiscoveryService | None = None,
                 resume_policy: ResumePolicy = "approve-when-eligible") -> None:
        if resume_policy not in RESUME_POLICIES:
            raise ValueError(f"resume policy must be one of {', '.join(RESUME_POLICIES)}, got {resume_policy!r}")
        self._uow_factory, self._market, self._calendar = uow_factory, market, calendar
        self._venue, self._broker, self._cycle, self._conditions = venue, broker, cycle, conditions
        self._discovery = discovery
        self.resume_policy = resume_policy

    async def run(self, *, run_id: str, start: date, end: date, symbols: list[str],
                  progress: Progress | None = None) -> BacktestResult:
        """Run the backtest and return its result (the caller writes the report)."""
        sessions = self._calendar.sessions(start, end)
        if not sessions:
            raise ValueError(f"no NYSE sessions between {start} and {end}")
        scope = self._cycle.scope
        cash = (await self._broker.account()).cash
        policy = await self._dividend_policy(symbols)
        rows: list[EquityRow] = []
        decisions: list[dict[str, Any]] = []
        failed = 0
        for i, day in enumerate(sessions):
            open_at, close_at = self._calendar.session_open(day), self._calendar.session_close(day)
            self._venue.advance_to(open_at)
            await self._discover(open_at)
            result = await self._cycle.run(as_of=open_at)
            failed += result.status == "failed"
            for o in result.outcomes:
                decisions.append({"day": day.isoformat(), "cycle_id": result.cycle_id, **o.to_json()})
            self._venue.advance_to(open_at + FILL_DELAY)
            self._venue.advance_to(close_at)
            await self._cycle.reconcile(as_of=close_at)
            await self._apply_resume_policy(close_at)
            account = await self._broker.account()
            positions = await self._broker.positions()
            bars = await self._market.daily_bars([p.symbol for p in positions], as_of=close_at, lookback=1)
            exposure = sum((abs(money(p.qty * price(bars[p.symbol].close[-1]))) for p in positions
                            if p.symbol in bars and bars[p.symbol].days[-1] == day), Decimal(0))
            rows.append(EquityRow(day, account.equity, account.cash, exposure))
            async with self._uow_factory() as uow:
                await self._conditions.record(uow, as_of=close_at)
                await uow.equity.add(scope, EquityPoint(close_at, account.equity, account.cash, exposure))
                await uow.commit()
            if self._discovery is not None:
                await self._discovery.update_forward_returns(close_at)
            if progress:
                progress(i + 1, len(sessions), day, account.equity)
        fills = await self._broker.fills_since(self._calendar.session_open(sessions[0]) - timedelta(days=1))
        async with self._uow_factory() as uow:
            calls = await uow.llm_calls.list(scope, limit=1_000_000)
        llm_cost = sum(c.cost_usd for c in calls)
        prev = self._calendar.previous_session(self._calendar.session_open(sessions[0]))
        bench = await benchmarks(self._market, self._calendar, symbols, [prev, *sessions], cash,
                                 fees=self._cycle.risk.fees, dividends=self._dividends_of(policy, symbols))
        spy, curves = bench.pop("_spy_returns"), bench.pop("_curves", {})
        curve = [(prev, cash)] + [(r.day, r.equity) for r in rows]
        perf = performance(curve, trade_returns=round_trip_returns(fills),
                           benchmark_returns=spy if spy else None,
                           exposure=[float(r.exposure / r.equity) if r.equity else 0.0 for r in rows])
        payments = self._venue.dividend_payments() if isinstance(self._venue, DividendVenue) else []
        backtest = BacktestResult(run_id, scope, sessions[0], sessions[-1], cash, symbols, rows, fills, decisions,
                                  perf, bench, llm_cost, failed,
                                  dividends=DividendPolicy(policy.counted, policy.reason, dividends_in(payments)),
                                  dividend_payments=payments, benchmark_curves=curves)
        async with self._uow_factory() as uow:
            backtest.extra["breaker"] = await breaker_history(uow, scope, sessions, policy=self.resume_policy)
            backtest.extra["llm_decisions"] = await llm_decision_totals(uow, scope)
        backtest.extra.update(llm_cost_summary(calls, backtest.extra["llm_decisions"], len(fills)))
        if self._discovery is not None:
            report = await self._discovery.performance(self._calendar.session_close(sessions[-1]))
            backtest.extra["picker_performance"] = report.pickers
            backtest.extra["discovery_paper_trades"] = report.paper_trades
        return backtest

    async def _dividend_policy(self, symbols: list[str]) -> DividendPolicy:
        """Decide whether dividends count (see `application.dividends`) and tell the venue. With discovery on,
        the run may trade any tradable symbol, so all of them must have dividend information."""
        venue = self._venue
        if not isinstance(venue, DividendVenue):
            return NO_DIVIDEND_VENUE
        candidates = set(symbols) | {BENCHMARK}
        if self._discovery is not None:
            candidates |= {a.symbol for a in await self._market.assets() if a.tradable}
        policy = dividend_policy(venue.dividend_symbols(), candidates)
        venue.credit_dividends(policy.counted)
        log.debug("backtest_dividends", counted=policy.counted, reason=policy.reason)
        return policy

    def _dividends_of(self, policy: DividendPolicy, symbols: list[str]) -> dict[str, Mapping[date, Decimal]] | None:
        if not policy.counted or not isinstance(self._venue, DividendVenue):
            return None
        return {s: self._venue.dividends_of(s) for s in {*symbols, BENCHMARK}}

    async def _apply_resume_policy(self, at: datetime) -> None:
        if self.resume_policy != "approve-when-eligible":
            return
        state = await breaker_state(self._uow_factory, self._cycle.scope)
        if state is not None and state.status is BreakerStatus.ELIGIBLE:
            await approve_breaker_resume(self._uow_factory, self._cycle.scope, by=f"simulation ({self.resume_policy})",
                                         as_of=at, settings=self._cycle.risk.breaker,
                                         note="resume policy of the simulation: approve when eligible")

    async def _discover(self, open_at: datetime) -> None:
        """Discovery at the session open: in a daily simulation the open is the only instant of the session,
        and it is the first slot of the live schedule (every `interval_hours` from the open)."""
        if self._discovery is None:
            return
        try:
            await self._discovery.discover(open_at)
        except Exception as exc:  # a failed run leaves the last watchlist in place; the backtest goes on
            log.exception("backtest_discovery_failed", at=open_at.isoformat(), error=str(exc))
