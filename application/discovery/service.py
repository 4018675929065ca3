"""DiscoveryService: runs the enabled pickers over the asset universe, stores suggestions, updates the
watchlist and feeds it to trading cycles; measures how the suggestions did.

It is what the scheduler (`run(as_of)`, `update_forward_returns(as_of)`), the HTTP API (`status`, `run`,
`suggestions`, `performance`, `watchlist_add`, `watchlist_remove`: the `DiscoveryApi` port, typed results the
callers shape) and the CLI use.
Runs are due every `interval_hours` from the open during NYSE sessions (`application.schedule`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from application.cycle.trading_cycle import Universe
from application.discovery.ab_tracker import ABTracker
from application.discovery.forward_returns import ForwardReturnReport, ForwardReturnUpdater
from application.discovery.performance import load_performance
from application.discovery.runner import DiscoveryRunner
from application.discovery.watchlist import WatchlistManager, watchlist_universe
from application.llm_gateway import LLMGateway
from application.market_conditions import MarketConditionService
from application.prompts import COMPACT_STYLE, PromptStyle
from application.schedule import ScheduleConfig, next_slot
from domain.discovery.config import DiscoverySettings
from domain.ports.clock import Clock, MarketCalendar
from domain.ports.discovery import ENSEMBLE, Suggestion, WatchlistChange, WatchlistEntry
from domain.ports.discovery_api import (
    DiscoveryApi,
    DiscoveryDisabled,
    DiscoveryOutcome,
    DiscoveryPerformance,
    DiscoveryRunResult,
    DiscoveryStatus,
    WatchlistEdit,
)
from domain.ports.embedder import Embedder
from domain.ports.market_data import Fundamentals, MarketData
from domain.ports.uow import UnitOfWorkFactory


class DiscoveryService(DiscoveryApi):
    """The discovery use case of one scope (implements `DiscoveryApi`; satisfies the jobs' `Discovery`)."""

    def __init__(self, uow_factory: UnitOfWorkFactory, market: MarketData, fundamentals: Fundamentals,
                 embedder: Embedder, gateway: LLMGateway, conditions: MarketConditionService,
                 calendar: MarketCalendar, settings: DiscoverySettings, scope: str, *, clock: Clock | None = None,
                 schedule: ScheduleConfig | None = None, record_assets: bool = True, recall_k: int = 5,
                 recall_limit: int = 100, per_picker: int | None = None, exclude: Collection[str] = (),
                 prompt_style: PromptStyle = COMPACT_STYLE) -> None:
        """Create the service.

        Args:
            uow_factory: units of work.
            market: assets, bars and quotes.
            fundamentals: sector and market cap.
            embedder: embeds setup texts for trade recall.
            gateway: the LLM gateway of discovery (give it its own: buffered records are flushed per gateway).
            conditions: current and similar past market conditions.
            calendar: the exchange calendar.
            settings: pickers, thresholds and sizes.
            scope: "live" or "backtest:<run id>".
            clock: "now" for the methods called without a time (None: they need `as_of`).
            schedule: when runs are due (for `status`); every `settings.interval_hours` from the open by default.
            record_assets: store the assets seen in `discovered_symbols` (off in backtests: that table is shared).
            recall_k: similar past trades recalled per symbol.
            recall_limit: the most symbols trades are recalled for per run.
            per_picker: suggestions stored per picker and for the ensemble (default `settings.top_n`).
            exclude: symbols never discovered (e.g. ETFs); the benchmark, VIX and sector ETFs never are.
            prompt_style: how the LLM picker writes its prompt (`application.prompts`).
        """
        self.settings, self.scope, self._clock, self._uow_factory = settings, scope, clock, uow_factory
        self._calendar = calendar
        self._schedule = schedule or ScheduleConfig(discovery_hours=max(1, round(settings.interval_hours)))
        self.watchlist = WatchlistManager(settings, scope=scope)
        self.runner = DiscoveryRunner(uow_factory, market, fundamentals, embedder, gateway, conditions, calendar,
                                      settings, scope, watchlist=self.watchlist, record_assets=record_assets,
                                      recall_k=recall_k, recall_limit=recall_limit, per_picker=per_picker,
                                      exclude=exclude, prompt_style=prompt_style)
        self.forward_returns = ForwardReturnUpdater(uow_factory, market, calendar, scope=scope)
        self.ab = ABTracker(uow_factory, market, calendar, scope=scope)

    def now(self, as_of: datetime | None = None) -> datetime:
        """`as_of`, or the clock's time.

        Raises:
            ValueError: no `as_of` and no clock.
        """
        if as_of is not None:
            return as_of
        if self._clock is None:
            raise ValueError("this discovery service has no clock: pass as_of")
        return self._clock.now()

    def universe(self, fallback: Universe | None = None) -> Universe:
        """The trading cycle's universe: the watchlist (or `fallback` while the watchlist is empty)."""
        return watchlist_universe(self.scope, fallback)

    async def discover(self, as_of: datetime) -> DiscoveryOutcome:
        """One discovery run as of `as_of` (see `DiscoveryRunner.discover`)."""
        return await self.runner.discover(as_of)

    async def run(self, as_of: datetime | None = None) -> DiscoveryRunResult:
        """Run discovery as of `as_of` (default now); `DiscoveryDisabled` when discovery is switched off."""
        if not self.settings.enabled:
            return DiscoveryDisabled("discovery is disabled (QUORUM_DISCOVERY__ENABLED=false)")
        return await self.discover(self.now(as_of))

    async def update_forward_returns(self, as_of: datetime | None = None) -> ForwardReturnReport:
        """Fill the forward returns that became known by `as_of` (default now)."""
        return await self.forward_returns.update(self.now(as_of))

    async def status(self) -> DiscoveryStatus:
        """Last run, next scheduled run, watchlist size and whether a run is in progress."""
        now = self.now()
        async with self._uow_factory() as uow:
            runs = await uow.suggestions.runs(self.scope, limit=1)
            entries = await uow.watchlist.list(self.scope)
        return DiscoveryStatus(self.settings.enabled, tuple(self.settings.pickers), self.runner.lock.locked(),
                               runs[0] if runs else None, next_slot("discovery", now, self._calendar, self._schedule),
                               len(entries), self.settings.max_watchlist_size,
                               sum(e.source == "manual" for e in entries))

    async def suggestions(self, picker: str = ENSEMBLE, run_id: str | None = None) -> list[Suggestion]:
        """Suggestions of the latest run (or of `run_id`), best first, for `picker` ("ensemble" by default)."""
        async with self._uow_factory() as uow:
            if run_id is None:
                runs = await uow.suggestions.runs(self.scope, limit=1)
                if not runs:
                    return []
                run_id = runs[0].id
            rows = await uow.suggestions.list(self.scope, run_id=run_id, picker=picker, limit=10_000)
        return sorted(rows, key=lambda s: s.rank)

    async def performance(self, as_of: datetime | None = None, *, horizon: int = 5) -> DiscoveryPerformance:
        """Picker performance per horizon and the paper-trade A/B report, as of `as_of` (default now)."""
        at = self.now(as_of)
        async with self._uow_factory() as uow:
            perf = await load_performance(uow, self.scope, until=at)
        return DiscoveryPerformance(at, perf, await self.ab.report(at, horizon=horizon))

    async def watchlist_entries(self) -> list[WatchlistEntry]:
        """The watchlist, by symbol."""
        async with self._uow_factory() as uow:
            return await uow.watchlist.list(self.scope)

    async def watchlist_changes(self, limit: int = 50) -> list[WatchlistChange]:
        """The latest watchlist changes, newest first."""
        async with self._uow_factory() as uow:
            return await uow.watchlist.changes(self.scope, limit=limit)

    async def watchlist_add(self, symbol: str, reason: str = "added by hand", *,
                            as_of: datetime | None = None) -> WatchlistEdit:
        """Add `symbol` by hand; the changes and the new watchlist.

        Raises:
            ValueError: not a ticker, no reason, or the list is full of manual symbols.
        """
        at = self.now(as_of)
        async with self._uow_factory() as uow:
            changes = await self.watchlist.add_manual(uow, symbol, reason=reason, as_of=at)
            entries = await uow.watchlist.list(self.scope)
            await uow.commit()
        return WatchlistEdit(tuple(changes), tuple(entries))

    async def watchlist_remove(self, symbol: str, reason: str = "removed by hand", *,
                               as_of: datetime | None = None) -> WatchlistEdit:
        """Remove `symbol` by hand; the change and the new watchlist.

        Raises:
            ValueError: not a ticker, no reason, or not on the watchlist.
        """
        at = self.now(as_of)
        async with self._uow_factory() as uow:
            change = await self.watchlist.remove_manual(uow, symbol, reason=reason, as_of=at)
            entries = await uow.watchlist.list(self.scope)
            await uow.commit()
        return WatchlistEdit((change,), tuple(entries))
