"""`quorum rehearse`: the real live stack against the Alpaca-wire emulator, session after session.

The same wiring as `quorum serve` with the Alpaca adapters: start-up reconciliation, the schedule (cycles
through the session, discovery, the after-close jobs, alerts every minute), in-process jobs with retries,
the event monitor, and alerts to a local sink (`alerts.jsonl` in the report). The emulator replays history on
its own clock; the rehearsal moves that clock tick by tick, lets the scheduler dispatch what is due and waits
for the jobs. After every cycle the invariants are checked (`application.invariants`). The report is the
backtest's, plus `invariants` and the breaker's history in summary.json.
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
from pydantic import SecretStr

from adapters.alerts import JsonlAlertChannel
from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.alpaca_emulator import AlpacaEmulator
from adapters.inmemory.market_data import (
    DailyBarMarketData,
    ReplayMarketData,
    SyntheticMarket,
    daily_from_intraday,
)
from adapters.reports.backtest_report import write_report
from application.alerts import AlertService
from application.backtest import BacktestResult, EquityRow, benchmarks, round_trip_returns
from application.breaker_history import ResumePolicy, breaker_history
from application.control import approve_breaker_resume, breaker_state
from application.cycle.trading_cycle import CycleResult
from application.cycle_requests import CycleRequestService, RequestingTrigger
from application.event_monitor import EventMonitor
from application.invariants import InvariantChecker
from application.market_conditions import CONTEXT_SYMBOLS
from application.monitor_symbols import watchlist_and_positions
from domain.analytics import performance
from domain.breaker import BreakerStatus
from entrypoints.alerts_wiring import build_routes
from entrypoints.commands.serve import InProcessJobs
from entrypoints.commands.worker import build_worker_deps, discovery_service, startup_reconcile
from entrypoints.container import Container
from entrypoints.live import LiveApp, build_live_app
from entrypoints.logging_setup import redact
from entrypoints.settings import Settings
from entrypoints.wiring import WARMUP_DAYS, pick_symbols

log = structlog.get_logger(__name__)
KEY, SECRET = "rehearsal-key", "rehearsal-secret"
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


@dataclass
class _Recorder:
    """Wraps the live app's cycle runner: every cycle's result is kept and the invariants checked after it."""

    live: LiveApp
    checker: InvariantChecker
    results: list[CycleResult] = field(default_factory=list)

    async def run_cycle(self, *, kind: str = "scheduled", symbol: str | None = None, as_of: datetime | None = None,
                        cycle_id: str | None = None) -> CycleResult:
        result = await self.live.run_cycle(kind=kind, symbol=symbol, as_of=as_of, cycle_id=cycle_id)
        self.results.append(result)
        violations = await self.checker.check(self.live.clock.now(), result.outcomes)
        for v in violations:
            log.error("invariant_violated", rule=v.rule, evidence=v.evidence, cycle_id=result.cycle_id)
        return result


def rehearsal_market(opts: RehearsalOptions, calendar: NyseCalendar) -> DailyBarMarketData:
    """The history the emulator replays: the CSV directories or the synthetic market."""
    if opts.data_dirs:
        return ReplayMarketData(list(opts.data_dirs), calendar)
    return SyntheticMarket(seed=opts.seed, n_symbols=max(opts.symbols, 12),
                           start=opts.start - timedelta(days=WARMUP_DAYS), end=opts.end, calendar=calendar)


async def listed_market(market: DailyBarMarketData, calendar: NyseCalendar, opts: RehearsalOptions) -> tuple[
        DailyBarMarketData, list[str]]:
    """Only the `opts.symbols` most liquid stocks before the start (no look-ahead) and the market's context. A
    symbol with intraday bars and no daily ones gets daily bars aggregated from its regular-session bars."""
    intraday = {s: bars for s in market.symbols if (bars := market.intraday(s))}
    daily = {s: series for s in market.symbols if (series := market.series(s)) is not None}
    for s, bars in intraday.items():
        if s not in daily and (series := daily_from_intraday(s, bars, calendar)) is not None:
            daily[s] = series
    full = DailyBarMarketData(daily, calendar, intraday=intraday)
    chosen = await pick_symbols(full, calendar, opts.start, opts.symbols)
    if not chosen:
        raise ValueError(f"no stock has 60 days of history before {opts.start}")
    keep = set(chosen) | set(CONTEXT_SYMBOLS)
    return DailyBarMarketData({s: d for s, d in daily.items() if s in keep}, calendar,
                              intraday={s: b for s, b in intraday.items() if s in keep}), chosen


def rehearsal_settings(settings: Settings, url: str) -> Settings:
    """The live settings pointed at the emulator (paper Alpaca, the emulator's keys and URL)."""
    broker = settings.broker.model_copy(update={
        "provider": "alpaca", "paper": True, "alpaca_api_key": SecretStr(KEY), "alpaca_secret_key": SecretStr(SECRET),
        "trading_url": url, "data_url": url})
    return settings.model_copy(update={"broker": broker})


class Rehearsal:
    """One rehearsal run (see the module docstring)."""

    def __init__(self, settings: Settings, container: Container, opts: RehearsalOptions, *, run_id: str,
                 progress: Progress | None = None) -> None:
        self.settings, self.container, self.opts = settings, container, opts
        self.run_id, self.scope = run_id, f"rehearsal:{run_id}"
        self.calendar = NyseCalendar()
        self.progress = progress

    async def run(self, emulator_hook: Callable[[AlpacaEmulator], None] | None = None) -> dict[str, Any]:
        """Rehearse every session and write the report; the summary (with `invariants`) is returned."""
        opts, calendar = self.opts, self.calendar
        sessions = calendar.sessions(opts.start, opts.end)
        if not sessions:
            raise ValueError(f"no NYSE sessions between {opts.start} and {opts.end}")
        market, symbols = await listed_market(rehearsal_market(opts, calendar), calendar, opts)
        first_open = calendar.session_open(sessions[0])
        emu = AlpacaEmulator(market, calendar, start=first_open - timedelta(hours=1), starting_cash=opts.cash,
                             fees=self.settings.risk.fees, api_key=KEY, secret_key=SECRET, id_seed=opts.seed)
        if emulator_hook is not None:
            emulator_hook(emu)
        with emu:
            live = await build_live_app(rehearsal_settings(self.settings, emu.url), self.container, clock=emu.clock,
                                        scope=self.scope)
            try:
                return await self._rehearse(emu, live, market, symbols, sessions)
            finally:
                await live.close()

    async def _rehearse(self, emu: AlpacaEmulator, live: LiveApp, market: DailyBarMarketData, symbols: list[str],
                        sessions: list[date]) -> dict[str, Any]:
        opts, uow_factory = self.opts, self.container.uow_factory()
        checker = InvariantChecker(live.broker, uow_factory, self.scope, emu.clock.now())
        recorder = _Recorder(live, checker)
        discovery = discovery_service(self.settings, self.container, live)
        deps = build_worker_deps(self.settings, self.container, live, discovery)
        sink = JsonlAlertChannel(opts.report / "alerts.jsonl")
        alerts = AlertService(uow_factory, {sink.name: sink}, build_routes(self.settings.alerts, {sink.name: sink}),
                              scope=self.scope, clock=emu.clock, sleep=_no_wait, redact=redact)
        deps.runner, deps.alerts, deps.backup, deps.on_failure = recorder, alerts, None, None
        jobs = InProcessJobs(deps, sleep=_no_wait)
        requests = CycleRequestService(uow_factory, jobs.queue, scope=self.scope)
        monitor = EventMonitor(live.market, watchlist_and_positions(uow_factory, live.broker, self.scope),
                               RequestingTrigger(requests), emu.clock, self.calendar, sleep=_no_wait)
        await startup_reconcile(self.container, live)
        jobs.start()
        rows: list[EquityRow] = []
        try:
            for i, day in enumerate(sessions):
                await self._session(emu, jobs, monitor, day)
                account = await live.broker.account()
                rows.append(EquityRow(day, account.equity, account.cash, account.equity - account.cash))
                await self._apply_resume_policy(uow_factory, live, emu.clock.now())
                if self.progress:
                    self.progress(i + 1, len(sessions), day, account.equity)
        finally:
            await jobs.stop()
        return await self._report(live, market, symbols, sessions, rows, recorder, sink)

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

    async def _apply_resume_policy(self, uow_factory: Any, live: LiveApp, at: datetime) -> None:
        if self.opts.resume_policy != "approve-when-eligible":
            return
        state = await breaker_state(uow_factory, self.scope)
        if state is not None and state.status is BreakerStatus.ELIGIBLE:
            await approve_breaker_resume(uow_factory, self.scope, by="rehearsal (approve-when-eligible)", as_of=at,
                                         settings=live.settings.risk.breaker,
                                         note="resume policy of the simulation: approve when eligible")

    async def _report(self, live: LiveApp, market: DailyBarMarketData, symbols: list[str], sessions: list[date],
                      rows: list[EquityRow], recorder: _Recorder, sink: JsonlAlertChannel) -> dict[str, Any]:
        opts, calendar = self.opts, self.calendar
        fills = await live.broker.fills_since(calendar.session_open(sessions[0]) - timedelta(days=1))
        prev = calendar.previous_session(calendar.session_open(sessions[0]))
        bench = await benchmarks(market, calendar, symbols, [prev, *sessions], opts.cash)
        spy = bench.pop("_spy_returns")
        perf = performance([(prev, opts.cash)] + [(r.day, r.equity) for r in rows],
                           trade_returns=round_trip_returns(fills), benchmark_returns=spy or None,
                           exposure=[float(r.exposure / r.equity) if r.equity else 0.0 for r in rows])
        uow_factory = self.container.uow_factory()
        async with uow_factory() as uow:
            calls = await uow.llm_calls.list(self.scope, limit=1_000_000)
            history = await breaker_history(uow, self.scope, sessions, policy=opts.resume_policy)
        decisions = [{"day": r.as_of.date().isoformat(), "cycle_id": r.cycle_id, **o.to_json()}
                     for r in recorder.results for o in r.outcomes]
        result = BacktestResult(self.run_id, self.scope, sessions[0], sessions[-1], opts.cash, symbols, rows,
                                fills, decisions, perf, bench, sum(c.cost_usd for c in calls),
                                sum(r.status == "failed" for r in recorder.results))
        result.extra.update({
            "kind": "rehearsal", "breaker": history, "invariants": recorder.checker.summary(),
            "cycles": len(recorder.results), "alerts": len(sink.read()),
            "data": ", ".join(str(d) for d in opts.data_dirs) or f"synthetic market (seed {opts.seed})"})
        return write_report(result, opts.report, self.settings.model_dump(mode="json"))


def deps_after_close(jobs: InProcessJobs) -> timedelta:
    """How long after the close the after-close jobs are due."""
    return jobs.deps.schedule.after_close_delay


async def _no_wait(_seconds: float) -> None:
    """Retries and back-offs inside a rehearsal do not wait on the wall clock."""
    return None
