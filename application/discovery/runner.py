"""DiscoveryRunner: one discovery run over the asset universe.

A run (`discover`) reads the book, builds the universe snapshot as of the run, scores it with the metric
and fuzzy pickers (the fuzzy score adjusted by similar past trades recalled as of the run), asks the LLM
picker about a capped shortlist in one prompt, merges everything in the ensemble, and then, in one
transaction, stores the run and its suggestions, updates the watchlist and writes DISCOVERY_RUN,
DISCOVERY_DIVERGENCE and WATCHLIST_CHANGED events. Scoring and ranking are array work over the whole
universe; result objects with reasons are built only for what is stored and reported (the suggestions, see
`records`, and the ranks the watchlist update looks at). Run ids depend only on scope and time, so a retried
run returns the stored outcome instead of running twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime

import structlog

from application.cycle.decide import recall_trades
from application.discovery import records
from application.discovery.inputs import load_market_inputs, portfolio_view, read_book
from application.discovery.llm_picker import LLMPicker, LLMPickerRun
from application.discovery.picking import llm_context, llm_shortlist, recall_candidates, scores_of
from application.discovery.watchlist import WatchlistManager
from application.llm_gateway import LLMGateway
from application.market_conditions import MarketConditionService
from application.prompts import COMPACT_STYLE, PromptStyle
from domain.discovery.config import DiscoverySettings
from domain.discovery.ensemble import EnsembleCombiner, EnsembleScores
from domain.discovery.fuzzy_picker import FuzzyEvaluation, FuzzyPicker
from domain.discovery.metric_picker import MetricEvaluation, MetricPicker
from domain.discovery.picker import PickerContext
from domain.discovery.picker_scores import ListedScores, PickerScores
from domain.features import MIN_BARS, compute_features
from domain.models.market import Asset
from domain.ports.clock import MarketCalendar
from domain.ports.discovery import DiscoveredAsset, DiscoveryRun
from domain.ports.discovery_api import DiscoveryOutcome
from domain.ports.embedder import Embedder
from domain.ports.market_data import Fundamentals, FundamentalsRecord, MarketData
from domain.ports.uow import UnitOfWorkFactory

__all__ = ["DiscoveryOutcome", "DiscoveryRunner", "skipped_filters"]
log = structlog.get_logger(__name__)


def skipped_filters(by_picker: Mapping[str, PickerScores]) -> dict[str, str]:
    """Filters (and score components) the enabled pickers skipped because their data is missing for the whole
    universe (e.g. "market_cap" without any known market cap) -> the stated reason."""
    out: dict[str, str] = {}
    for scores in by_picker.values():
        if isinstance(scores, MetricEvaluation | FuzzyEvaluation):
            out.update(scores.skipped)
    return out


class DiscoveryRunner:
    """Runs discovery for one scope; runs are serialised (one at a time per runner)."""

    def __init__(self, uow_factory: UnitOfWorkFactory, market: MarketData, fundamentals: Fundamentals,
                 embedder: Embedder, gateway: LLMGateway, conditions: MarketConditionService,
                 calendar: MarketCalendar, settings: DiscoverySettings, scope: str, *, watchlist: WatchlistManager,
                 record_assets: bool = True, recall_k: int = 5, recall_limit: int = 100,
                 per_picker: int | None = None, exclude: Collection[str] = (),
                 prompt_style: PromptStyle = COMPACT_STYLE) -> None:
        """Create the runner (see `DiscoveryService` for the arguments)."""
        self._uow_factory, self._market, self._fundamentals = uow_factory, market, fundamentals
        self._embedder, self._gateway, self._conditions = embedder, gateway, conditions
        self._calendar, self.settings, self.scope = calendar, settings, scope
        self._record_assets, self._recall_k, self._recall_limit = record_assets, recall_k, recall_limit
        self._per_picker = per_picker or settings.top_n
        self._exclude = frozenset(exclude)
        self.watchlist = watchlist
        self._llm = LLMPicker(gateway, scope=scope, style=prompt_style)
        self.lock = asyncio.Lock()
        self._lookback = max(settings.filters.beta_window_days + 1, MIN_BARS) + 5

    async def discover(self, as_of: datetime) -> DiscoveryOutcome:
        """Run the pickers as of `as_of`, store the suggestions and update the watchlist (see the module docstring)."""
        run_id = records.run_id_for(self.scope, as_of, tz=self._calendar.tz)
        async with self.lock:
            async with self._uow_factory() as uow:
                existing = await uow.suggestions.get_run(run_id)
                book = await read_book(uow, self.scope, as_of)
            if existing is not None:
                return await self._stored(existing)
            held = [p.symbol for p in book.positions] + [e.symbol for e in book.watchlist]
            market = await load_market_inputs(self._market, self._fundamentals, self._calendar, as_of,
                                              lookback=self._lookback, extra=held, exclude=self._exclude)
            if isinstance(market, str):
                log.warning("discovery_skipped", reason=market, as_of=as_of.isoformat())
                run = DiscoveryRun(run_id, self.scope, as_of, self.settings.pickers, 0, {"skipped": market})
                async with self._uow_factory() as uow:
                    await uow.suggestions.add_run(run)
                    await uow.commit()
                return DiscoveryOutcome(run, [], watchlist=book.watchlist, skipped=market)
            prices = {s: market.last_close(s) for s in set(market.bars) | set(held)}
            view = portfolio_view(book, prices, market.fundamentals)
            context = PickerContext(view.held_sectors, view.watchlist_sectors, {}, self.settings)
            metric = MetricPicker(self.settings.filters).evaluate(market.snapshot, context)
            fuzzy_picker = FuzzyPicker(self.settings.fuzzy)
            prescore = fuzzy_picker.evaluate(market.snapshot, context)
            wanted = recall_candidates(metric, prescore, top=self.settings.llm_candidates, limit=self._recall_limit)
            features = {s: f for s in wanted if (f := compute_features(market.bars[s])) is not None}
            async with self._uow_factory() as uow:
                await self._gateway.load_spend(uow, as_of)
                conditions = await self._conditions.current(as_of)
                if conditions is not None:
                    similar_conditions = await self._conditions.recall(uow, conditions, as_of=as_of, k=3)
                    conditions = conditions.model_copy(update={"similar_conditions": similar_conditions})
                similar = await recall_trades(uow, self._embedder, list(features.values()), scope=self.scope,
                                              as_of=as_of, k=self._recall_k)
            fuzzy = fuzzy_picker.evaluate(market.snapshot, replace(context, similar_trades=similar))
            by_picker: dict[str, PickerScores] = {}
            if "metric" in self.settings.pickers:
                by_picker["metric"] = metric
            if "fuzzy" in self.settings.pickers:
                by_picker["fuzzy"] = fuzzy
            llm = LLMPickerRun([], ())
            if "llm" in self.settings.pickers:
                shortlist = llm_shortlist(metric, fuzzy, features, require_metric="metric" in self.settings.pickers,
                                          n=self.settings.llm_candidates)
                ctx = llm_context(as_of, shortlist, features, similar, scores_of(fuzzy, shortlist), market,
                                  view.summary, conditions)
                llm = await self._llm.pick(ctx, as_of=as_of)
                by_picker["llm"] = ListedScores.from_results("llm", market.snapshot.symbols, llm.results)
            combiner = EnsembleCombiner(self.settings.weights, self.settings.divergence_threshold)
            ensemble = combiner.combine_scores(by_picker)
            skipped = skipped_filters(by_picker)
            for name, reason in skipped.items():
                log.warning("discovery_filter_skipped", filter=name, reason=reason, as_of=as_of.isoformat())
            stats = {"universe": sorted(market.priced), "snapshot_day": market.day.isoformat(),
                     "passed_metric": int(metric.passed.sum()), "recalled": len(similar),
                     "skipped_filters": skipped,
                     "llm": {"asked": len(llm.asked), "answered": len(llm.results), "dropped": list(llm.dropped),
                             "error": llm.error}}
            run = DiscoveryRun(run_id, self.scope, as_of, tuple(by_picker), market.snapshot.n_symbols, stats)
            return await self._store(run, by_picker, ensemble, llm, market.assets if self._record_assets else {},
                                     prices, market.fundamentals)

    async def _store(self, run: DiscoveryRun, by_picker: dict[str, PickerScores], ensemble: EnsembleScores,
                     llm: LLMPickerRun, assets: Mapping[str, Asset], prices: dict[str, float | None],
                     fundamentals: Mapping[str, FundamentalsRecord]) -> DiscoveryOutcome:
        rows = records.suggestions_for(run, by_picker, ensemble, per_picker=self._per_picker,
                                       min_score=self.settings.min_score, prices=prices)
        suggested = list(dict.fromkeys(s.symbol for s in rows))
        divergent = records.strongest_divergences(ensemble.results_for(suggested), set(suggested))
        try:
            async with self._uow_factory() as uow:
                changes = await self.watchlist.apply_discovery(uow, ensemble, as_of=run.as_of)
                run = replace(run, stats={**run.stats, "added": [c.symbol for c in changes if c.change == "add"],
                                          "removed": [c.symbol for c in changes if c.change == "remove"]})
                await uow.suggestions.add_run(run)
                stored = await uow.suggestions.add(rows)
                if assets:
                    await uow.discovered.upsert([self._asset(a, fundamentals.get(s)) for s, a in assets.items()],
                                                at=run.as_of)
                events = [records.run_event(run, ensemble, changes, min_score=self.settings.min_score,
                                            llm_error=llm.error), *records.divergence_events(run, divergent, rows),
                          *llm.events]
                await uow.events.add(events)
                await self._gateway.flush(uow, None)
                watchlist = await uow.watchlist.list(self.scope)
                await uow.commit()
        except BaseException:
            self._gateway.discard(None)
            raise
        log.info("discovery_run", run_id=run.id, universe=run.universe_size, suggestions=len(stored),
                 added=run.stats["added"], removed=run.stats["removed"], llm_error=llm.error)
        return DiscoveryOutcome(run, stored, changes, watchlist, ensemble, divergent, llm.error)

    @staticmethod
    def _asset(a: Asset, record: FundamentalsRecord | None) -> DiscoveredAsset:
        return DiscoveredAsset(a.symbol, a.tradable, a.name, a.exchange, a.asset_class, a.shortable, a.fractionable,
                               a.status, None if record is None else record.sector,
                               None if record is None else record.market_cap)

    async def _stored(self, run: DiscoveryRun) -> DiscoveryOutcome:
        async with self._uow_factory() as uow:
            rows = await uow.suggestions.list(self.scope, run_id=run.id, limit=10_000)
            watchlist = await uow.watchlist.list(self.scope)
        return DiscoveryOutcome(run, rows, watchlist=watchlist, skipped=run.stats.get("skipped"),
                                llm_error=(run.stats.get("llm") or {}).get("error"), existing=True)
