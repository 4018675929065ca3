"""`quorum rehearse`: the real live stack against the Alpaca-wire emulator, session after session.

The same wiring as `quorum serve` with the Alpaca adapters: start-up reconciliation, the schedule (cycles
through the session, discovery, the after-close jobs, alerts every minute), in-process jobs with retries,
the event monitor, and alerts to a local sink (`alerts.jsonl` in the report). The emulator replays history on
its own clock; the rehearsal moves that clock tick by tick, lets the scheduler dispatch what is due and waits
for the jobs. After every cycle the invariants are checked (`application.invariants`). The report is the
backtest's, plus `invariants` and the breaker's history in summary.json; dividends are counted for Quorum and
the benchmarks alike or for nobody (`application.dividends`), the benchmarks pay the same costs and the
survivorship of the data is stated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from dependency_injector import providers

from adapters.inmemory.alpaca_emulator import AlpacaEmulator
from adapters.inmemory.market_data import (
    DailyBarMarketData,
)
from adapters.inmemory.universe_file import read_universes
from adapters.queue import InProcessJobs
from adapters.reports.backtest_report import write_report
from application.backtest import BacktestResult, EquityRow
from application.benchmarks import benchmarks
from application.breaker_history import ResumePolicy, breaker_history
from application.control import approve_breaker_resume, breaker_state
from application.cycle.reuse import llm_decision_totals
from application.cycle.trading_cycle import CycleResult
from application.cycle_requests import CycleRequestService, RequestingTrigger
from application.dividends import DividendPolicy, dividend_policy, dividends_in
from application.event_monitor import EventMonitor
from application.invariants import InvariantChecker
from application.jobs import begin_schedule
from application.llm_cost_report import llm_cost_summary
from application.membership import SYNTHETIC, survivorship
from application.monitor_symbols import watchlist_and_positions
from application.paper.campaign import campaign_status, find_campaign, start_campaign, status_to_json
from application.paper.drill import breaker_drill, untripped_rules
from application.round_trips import round_trip_returns
from application.trading_service import TradingService
from domain.analytics import performance
from domain.breaker import BreakerStatus
from domain.market_conditions import BENCHMARK
from domain.ports.clock import Clock
from entrypoints.commands.worker import startup_reconcile
from entrypoints.container import Storage, build_container, close_container
from entrypoints.settings import Settings
from entrypoints.wiring.paper import settings_snapshot
from entrypoints.wiring.system import no_wait

log = structlog.get_logger(__name__)
Progress = Callable[[int, int, date, Decimal], None]


@dataclass(frozen=True)
class RehearsalOptions:
    """What to rehearse.

    Attributes:
        start, end: the sessions to replay.
        data_dirs: CSV bars (daily, and 1-minute or 5-minute bars where they exist); none: the synthetic market.
        symbols: how many of the most liquid stocks the emulator lists (besides SPY, VIX and the sector SPDRs).
        cash: the account's starting cash.
        speed: simulated seconds per wall second (0: as fast as possible).
        tick: how far the clock moves between two scheduler ticks.
        monitor_every: how often the event monitor polls in market hours.
        resume_policy: what the rehearsal does when the breaker may resume (nobody is there to approve).
        seed: seed of the synthetic market and of the emulator's ids.
        campaign: record the run as a paper campaign of this name (started before the first session, measured
            after the last; the breaker rules the market did not trip are drilled first).
    """

    start: date
    end: date
    report: Path
    data_dirs: tuple[Path, ...] = ()
    symbols: int = 20
    cash: Decimal = Decimal(650)
    speed: float = 0.0
    tick: timedelta = timedelta(minutes=5)
    monitor_every: timedelta = timedelta(minutes=5)
    resume_policy: ResumePolicy = "approve-when-eligible"
    seed: int = 7
    campaign: str | None = None


@dataclass
class _Recorder:
    """Wraps the cycle runner: every cycle's result is kept and the invariants checked after it."""

    runner: TradingService
    checker: InvariantChecker
    clock: Clock
    results: list[CycleResult] = field(default_factory=list)

    async def run_cycle(self, *, kind: str = "scheduled", symbol: str | None = None, as_of: datetime | None = None,
                        cycle_id: str | None = None) -> CycleResult:
        result = await self.runner.run_cycle(kind=kind, symbol=symbol, as_of=as_of, cycle_id=cycle_id)
        self.results.append(result)
        violations = await self.checker.check(self.clock.now(), result.outcomes)
        for v in violations:
            log.error("invariant_violated", rule=v.rule, evidence=v.evidence, cycle_id=result.cycle_id)
        return result


class Rehearsal:
    """One rehearsal run (see the module docstring). It builds the "rehearsal" container: the Alpaca adapters
    against the emulator, on the configured database (`storage="memory"` for tests)."""

    def __init__(self, settings: Settings, opts: RehearsalOptions, *, run_id: str, progress: Progress | None = None,
                 storage: Storage | None = None) -> None:
        self.settings, self.opts = settings, opts
        self.run_id, self.scope = run_id, f"rehearsal:{run_id}"
        self.container = build_container(settings, "rehearsal", storage=storage, scope=self.scope, start=opts.start,
                                         end=opts.end, cash=opts.cash, seed=opts.seed, report=opts.report,
                                         n_symbols=opts.symbols, data_dirs=list(opts.data_dirs))
        self.calendar = self.container.calendar()
        self.progress = progress
        self.dividends = DividendPolicy(False, "not decided yet")

    async def run(self, emulator_hook: Callable[[AlpacaEmulator], None] | None = None) -> dict[str, Any]:
        """Rehearse every session and write the report; the summary (with `invariants`) is returned."""
        opts, calendar, c = self.opts, self.calendar, self.container
        sessions = calendar.sessions(opts.start, opts.end)
        if not sessions:
            raise ValueError(f"no NYSE sessions between {opts.start} and {opts.end}")
        (opts.report / "alerts.jsonl").unlink(missing_ok=True)
        listed = c.listed_history()
        market, symbols = listed.market, listed.symbols
        try:
            emu = c.emulator()
            if emulator_hook is not None:
                emulator_hook(emu)
            await self._decide_dividends(emu, market)
            return await self._rehearse(emu, market, symbols, sessions)
        finally:
            await close_container(c)

    async def _rehearse(self, emu: AlpacaEmulator, market: DailyBarMarketData, symbols: list[str],
                        sessions: list[date]) -> dict[str, Any]:
        c = self.container
        uow_factory, broker = c.uow_factory(), c.broker()
        checker = InvariantChecker(broker, uow_factory, self.scope, emu.clock.now())
        await startup_reconcile(c, process="quorum rehearse")
        recorder = _Recorder(c.runner(), checker, emu.clock)
        c.runner.override(providers.Object(recorder))
        c.backup.override(providers.Object(None))
        deps = c.job_deps()
        deps.on_failure = None
        jobs = c.in_process_jobs()
        requests = CycleRequestService(uow_factory, jobs.queue, scope=self.scope, tz=self.calendar.tz)
        monitor = EventMonitor(c.market(), watchlist_and_positions(uow_factory, broker, self.scope),
                               RequestingTrigger(requests), emu.clock, self.calendar, sleep=no_wait)
        if self.opts.campaign:
            await start_campaign(uow_factory, broker, self.scope, name=self.opts.campaign, days=len(sessions),
                                 settings_snapshot=settings_snapshot(self.settings), as_of=emu.clock.now(),
                                 account_id="alpaca emulator (paper)")
        await begin_schedule(uow_factory, self.scope, at=self.calendar.session_open(sessions[0]) - self.opts.tick)
        jobs.start()
        rows: list[EquityRow] = []
        try:
            for i, day in enumerate(sessions):
                await self._session(emu, jobs, monitor, day)
                account = await broker.account()
                rows.append(EquityRow(day, account.equity, account.cash, account.equity - account.cash))
                await self._apply_resume_policy(uow_factory, emu.clock.now())
                if self.progress:
                    self.progress(i + 1, len(sessions), day, account.equity)
        finally:
            await jobs.stop()
        campaign = await self._measure_campaign(emu) if self.opts.campaign else None
        return await self._report(emu, market, symbols, sessions, rows, recorder, campaign)

    async def _measure_campaign(self, emu: AlpacaEmulator) -> dict[str, Any]:
        """Drill the breaker rules the market did not trip, then measure the campaign at the end of the run."""
        c, at = self.container, emu.clock.now()
        started = (await find_campaign(c.uow_factory(), self.scope, name=self.opts.campaign)).started_at
        untripped = await untripped_rules(c.uow_factory(), self.scope, since=started, until=at)
        if untripped:
            equity = (await c.broker().account()).equity
            await breaker_drill(c.uow_factory(), self.scope, equity=equity, settings=self.settings.risk.breaker,
                                as_of=at, rules=untripped)
        status = await campaign_status(c.uow_factory(), self.calendar, self.scope, as_of=at, name=self.opts.campaign)
        return status_to_json(status)

    async def _decide_dividends(self, emu: AlpacaEmulator, market: DailyBarMarketData) -> None:
        """Dividends count only when every tradable symbol the emulator lists (discovery may pick any) and SPY have
        dividend information; the emulator is told before the first session."""
        tradable = {a.symbol for a in await market.assets() if a.tradable} | {BENCHMARK}
        self.dividends = dividend_policy(emu.dividend_symbols(), tradable)
        emu.credit_dividends(self.dividends.counted)

    async def _session(self, emu: AlpacaEmulator, jobs: InProcessJobs, monitor: EventMonitor, day: date) -> None:
        open_at, close_at = self.calendar.session_open(day), self.calendar.session_close(day)
        t = max(emu.clock.now(), open_at - self.opts.tick)
        end = close_at + deps_after_close(jobs) + self.opts.tick
        while t <= end:
            started = time.monotonic()
            emu.advance_to(t)
            await jobs.tick()
            await jobs.drain()
            if self.calendar.is_open(t) and (t - open_at) % self.opts.monitor_every < self.opts.tick:
                await monitor.poll_once(t)
                await jobs.drain()
            if self.opts.speed > 0:
                await asyncio.sleep(max(0.0, self.opts.tick.total_seconds() / self.opts.speed -
                                        (time.monotonic() - started)))
            t += self.opts.tick

    async def _apply_resume_policy(self, uow_factory: Any, at: datetime) -> None:
        if self.opts.resume_policy != "approve-when-eligible":
            return
        state = await breaker_state(uow_factory, self.scope)
        if state is not None and state.status is BreakerStatus.ELIGIBLE:
            await approve_breaker_resume(uow_factory, self.scope, by="rehearsal (approve-when-eligible)", as_of=at,
                                         settings=self.settings.risk.breaker,
                                         note="resume policy of the simulation: approve when eligible")

    async def _report(self, emu: AlpacaEmulator, market: DailyBarMarketData, symbols: list[str],
                      sessions: list[date], rows: list[EquityRow], recorder: _Recorder,
                      campaign: dict[str, Any] | None = None) -> dict[str, Any]:
        opts, calendar, broker = self.opts, self.calendar, self.container.broker()
        sink = self.container.alert_log()
        fills = await broker.fills_since(calendar.session_open(sessions[0]) - timedelta(days=1))
        prev = calendar.previous_session(calendar.session_open(sessions[0]))
        counted = self.dividends.counted
        bench = await benchmarks(market, calendar, symbols, [prev, *sessions], opts.cash,
                                 fees=self.settings.risk.fees,
                                 dividends={s: emu.dividends_of(s) for s in {*symbols, BENCHMARK}} if counted else None)
        spy, curves = bench.pop("_spy_returns"), bench.pop("_curves", {})
        perf = performance([(prev, opts.cash)] + [(r.day, r.equity) for r in rows],
                           trade_returns=round_trip_returns(fills), benchmark_returns=spy or None,
                           exposure=[float(r.exposure / r.equity) if r.equity else 0.0 for r in rows])
        uow_factory = self.container.uow_factory()
        async with uow_factory() as uow:
            calls = await uow.llm_calls.list(self.scope, limit=1_000_000)
            history = await breaker_history(uow, self.scope, sessions, policy=opts.resume_policy)
            llm_decisions = await llm_decision_totals(uow, self.scope)
        decisions = [{"day": r.as_of.date().isoformat(), "cycle_id": r.cycle_id, **o.to_json()}
                     for r in recorder.results for o in r.outcomes]
        payments = emu.dividend_payments()
        result = BacktestResult(self.run_id, self.scope, sessions[0], sessions[-1], opts.cash, symbols, rows,
                                fills, decisions, perf, bench, sum(c.cost_usd for c in calls),
                                sum(r.status == "failed" for r in recorder.results),
                                dividends=DividendPolicy(counted, self.dividends.reason, dividends_in(payments)),
                                dividend_payments=payments, benchmark_curves=curves)
        result.extra.update({
            "kind": "rehearsal", "breaker": history, "invariants": recorder.checker.summary(),
            "llm_decisions": llm_decisions, **llm_cost_summary(calls, llm_decisions, len(fills)),
            "cycles": len(recorder.results), "alerts": len(sink.read()) if sink is not None else 0,
            "data": ", ".join(str(d) for d in opts.data_dirs) or f"synthetic market (seed {opts.seed})",
            "survivorship": survivorship(read_universes(opts.data_dirs)) if opts.data_dirs else SYNTHETIC})
        if campaign is not None:
            result.extra["campaign"] = campaign
        return write_report(result, opts.report, self.settings.model_dump(mode="json"))


def deps_after_close(jobs: InProcessJobs) -> timedelta:
    """How long after the close the after-close jobs are due."""
    return jobs.deps.schedule.after_close_delay
