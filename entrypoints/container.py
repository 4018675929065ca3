"""Composition root: the one place where ports are wired to adapters.

One container builds the whole system. Each way Quorum runs is a named configuration (`build_container`):

| mode | venue (clock, market data, broker) | storage, embedder |
|---|---|---|
| live | Alpaca (paper unless acknowledged), system clock | Postgres, sentence-transformers |
| sim | the in-memory venue on a synthetic market around today, system clock | Postgres, sentence-transformers |
| backtest | the in-memory venue on the run's history, its simulated clock | Postgres, sentence-transformers |
| rehearsal | Alpaca adapters against the Alpaca-wire emulator, the emulator's clock | Postgres, sentence-transformers |
| test | the in-memory venue (sim) | in memory, hashing embedder |

`storage=` overrides the storage of any mode (tests run backtests and rehearsals in memory). Run parameters
(scope, period, cash, data, symbols, report...) go in `container.run`. Tests override providers
(`container.market.override(providers.Object(m))`) instead of rebuilding graphs. There is exactly one LLM
gateway per container, so one spend ledger. `await close_container(c)` closes what the container opened.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, Literal

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.calendar.nyse import NyseCalendar, SystemClock
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from adapters.postgres.engine import make_engine, make_sessionmaker, resolve_database_url
from adapters.postgres.uow import PgUnitOfWork
from adapters.queue import InProcessJobs, WorkerDeps
from application.agents import Agents
from application.backtest import BacktestRunner
from application.chat.event_index import EventSearch
from application.cycle.trading_cycle import CycleSettings, TradingCycle
from application.jobs import JobPolicy
from application.market_conditions import MarketConditionService
from application.trading_service import TradingService
from domain.memory import DEFAULT_SCOPE
from domain.ports.embedder import Embedder
from entrypoints.database_schema import ensure_schema_on_connect
from entrypoints.settings import Settings
from entrypoints.wiring import currency as currency_wiring
from entrypoints.wiring import embeddings as embedding_wiring
from entrypoints.wiring import evals as eval_wiring
from entrypoints.wiring import event_search as event_search_wiring
from entrypoints.wiring import paper as paper_wiring
from entrypoints.wiring import system, venue
from entrypoints.wiring.closing import Closing

Mode = Literal["live", "sim", "backtest", "rehearsal", "test"]
Storage = Literal["postgres", "memory"]
MODES: dict[str, tuple[str, str]] = {
    "live": ("alpaca", "postgres"), "sim": ("sim", "postgres"), "backtest": ("backtest", "postgres"),
    "rehearsal": ("rehearsal", "postgres"), "test": ("sim", "memory")}


def _database_url(settings: Settings) -> tuple[str, str]:
    return resolve_database_url(settings.effective_database_url, settings.database.embedded_dir)


def _engine(settings: Settings, database: tuple[str, str], echo: bool, closing: Closing) -> AsyncEngine:
    engine = make_engine(database[0], echo=echo)
    ensure_schema_on_connect(engine, *database, embedded=not settings.effective_database_url)
    closing.add(engine.dispose)
    return engine


def _scope(run: dict[str, Any]) -> str:
    return str(run.get("scope") or DEFAULT_SCOPE)


def _cycle_settings(settings: Settings, scope: str, run: dict[str, Any]) -> CycleSettings:
    return CycleSettings(scope=scope, large_position_change_pct=settings.alerts.large_position_change_pct,
                         memory_recall=bool(run.get("memory_recall", True)),
                         reuse_decisions=settings.llm.reuse_decisions,
                         reuse_price_move_pct=settings.llm.reuse_price_move_pct,
                         recall_k=settings.llm.evidence_trades, conditions_k=settings.llm.evidence_conditions,
                         evidence=system.evidence_policy(settings))


class Container(containers.DeclarativeContainer):
    """Providers for every port and use case; `venue` and `storage` pick the configuration."""

    settings = providers.Dependency(instance_of=Settings)
    venue_kind = providers.Object("alpaca")
    storage = providers.Object("postgres")
    run = providers.Configuration(default={})
    closing = providers.Singleton(Closing)

    # ---------------------------------------------------------------- storage
    calendar = providers.Singleton(NyseCalendar)
    system_clock = providers.Singleton(SystemClock)
    embedder: providers.Provider[Embedder] = providers.Selector(
        storage, postgres=providers.Singleton(embedding_wiring.sentence_transformer, settings),
        memory=providers.Singleton(HashingEmbedder, 384))
    database = providers.Singleton(_database_url, settings)
    engine = providers.Singleton(_engine, settings, database, settings.provided.database.echo, closing)
    sessionmaker = providers.Singleton(make_sessionmaker, engine)
    memory_db = providers.Singleton(InMemoryDatabase, embedder)
    uow_factory = providers.Selector(
        storage, postgres=providers.Factory(partial, PgUnitOfWork, sessionmaker, embedder),
        memory=providers.Factory(partial, InMemoryUnitOfWork, memory_db))
    scope = providers.Callable(_scope, run)
    event_memory = providers.Selector(
        storage, postgres=providers.Singleton(event_search_wiring.pg_event_memory, sessionmaker, embedder),
        memory=providers.Singleton(event_search_wiring.in_memory_event_memory, embedder, memory_db))
    event_search = providers.Singleton(EventSearch, event_memory, uow_factory, scope)
    embedding_store = providers.Selector(
        storage, postgres=providers.Singleton(embedding_wiring.pg_embedding_store, sessionmaker),
        memory=providers.Singleton(embedding_wiring.in_memory_embedding_store, memory_db, event_memory))
    currency_display = providers.Singleton(currency_wiring.currency_display, settings)

    # ---------------------------------------------------------------- venue
    listed_history = providers.Singleton(venue.listed_history, run, calendar, system_clock)
    replayed_history = providers.Singleton(venue.history, run, calendar, system_clock)
    history = providers.Selector(venue_kind, alpaca=replayed_history, sim=replayed_history,
                                 backtest=replayed_history,
                                 rehearsal=providers.Callable(lambda listed: listed.market, listed_history))
    venue_clock = providers.Singleton(venue.venue_clock, run, calendar, system_clock)
    sim_broker = providers.Singleton(venue.sim_broker, settings, run, history, calendar, venue_clock)
    in_memory_venue = providers.Singleton(venue.in_memory_venue, sim_broker, history, calendar, venue_clock)
    emulator = providers.Singleton(venue.emulator, settings, run, history, calendar, closing)
    alpaca_config = providers.Selector(
        venue_kind, alpaca=providers.Singleton(venue.alpaca_config, settings),
        rehearsal=providers.Singleton(venue.emulator_config, settings, emulator))
    alpaca_broker = providers.Singleton(venue.alpaca_broker, alpaca_config, closing)
    alpaca_probe = providers.Factory(venue.alpaca_probe, settings)
    alpaca_market = providers.Singleton(venue.alpaca_market, alpaca_config, calendar, closing)
    clock = providers.Selector(
        venue_kind, alpaca=system_clock, sim=system_clock, backtest=venue_clock,
        rehearsal=providers.Callable(lambda emu: emu.clock, emulator))
    market = providers.Selector(venue_kind, alpaca=alpaca_market, rehearsal=alpaca_market, sim=history,
                                backtest=history)
    broker = providers.Selector(venue_kind, alpaca=alpaca_broker, rehearsal=alpaca_broker, sim=sim_broker,
                                backtest=sim_broker)
    simulated_venue = providers.Selector(venue_kind, sim=in_memory_venue, backtest=in_memory_venue,
                                         rehearsal=emulator, alpaca=providers.Object(None))

    # ---------------------------------------------------------------- the system
    tracer = providers.Singleton(system.tracer, settings, closing)
    llms = providers.Singleton(system.llms, settings)
    llm_probe = providers.Factory(system.llm_probe, settings)
    spend_ledger = providers.Singleton(system.spend_ledger, settings, scope, calendar)
    gateway = providers.Singleton(system.gateway, settings, providers.Singleton(system.traced_llms, llms, tracer),
                                  scope, calendar, tracer, spend_ledger)
    agents = providers.Singleton(Agents, gateway, concurrency=settings.provided.llm.concurrency,
                                 exit_rules=providers.Singleton(system.exit_rules, tracer),
                                 style=providers.Callable(system.prompt_style, settings),
                                 output_tokens_per_item=settings.provided.llm.output_tokens_per_symbol)
    conditions = providers.Singleton(MarketConditionService, market, scope=scope)
    is_backtest = providers.Callable(lambda kind: kind == "backtest", venue_kind)
    fundamentals = providers.Singleton(system.fundamentals, settings, market, run, is_backtest)
    discovery = providers.Singleton(system.discovery, settings, uow_factory, market, fundamentals, embedder,
                                    gateway, conditions, calendar, scope, clock, is_backtest)
    backtest_discovery = providers.Callable(lambda on, found: found() if on else None, run.discovery,
                                            discovery.provider)
    live_universe = providers.Singleton(system.live_universe, scope, market)
    universe = providers.Selector(
        venue_kind, alpaca=live_universe, sim=live_universe, rehearsal=live_universe,
        backtest=providers.Singleton(system.backtest_universe, run, backtest_discovery))
    cycle = providers.Singleton(
        TradingCycle, uow_factory=uow_factory, broker=broker, market=market, calendar=calendar,
        embedder=embedder, agents=agents, gateway=gateway, conditions=conditions, risk=settings.provided.risk,
        universe=universe, settings=providers.Callable(_cycle_settings, settings, scope, run), tracer=tracer)
    running_event_indexer = providers.Singleton(event_search_wiring.event_indexer, settings, event_memory,
                                                uow_factory, scope)
    event_indexer = providers.Selector(venue_kind, alpaca=running_event_indexer, sim=running_event_indexer,
                                       rehearsal=running_event_indexer, backtest=providers.Object(None))
    runner = providers.Singleton(TradingService, cycle, clock,
                                 providers.Selector(venue_kind, sim=in_memory_venue, alpaca=providers.Object(None),
                                                    backtest=providers.Object(None),
                                                    rehearsal=providers.Object(None)),
                                 event_index=event_indexer)
    backtest_runner = providers.Singleton(
        BacktestRunner, uow_factory=uow_factory, market=market, calendar=calendar, venue=simulated_venue,
        broker=broker, cycle=cycle, conditions=conditions, discovery=backtest_discovery,
        resume_policy=providers.Callable(lambda p: p or "approve-when-eligible", run.resume_policy))
    alert_log = providers.Singleton(system.alert_log, run)
    alerts = providers.Singleton(system.alerts, settings, uow_factory, scope, clock, alert_log)
    schedule = providers.Singleton(system.schedule, settings)
    backup = providers.Singleton(system.backup, settings, database)
    cycle_trigger = providers.Singleton(system.cycle_trigger, settings, run, closing)
    event_monitor = providers.Singleton(system.event_monitor, market, uow_factory, broker, scope, cycle_trigger, clock,
                                        calendar, run)
    eval_job = providers.Singleton(eval_wiring.eval_job, settings, uow_factory, clock, scope,
                                   providers.Singleton(system.alert_notifier, alerts), spend_ledger)
    evals_runner = providers.Singleton(eval_wiring.evals_runner, settings, eval_job)
    nightly_evals = providers.Selector(venue_kind, alpaca=evals_runner, sim=evals_runner,
                                       backtest=providers.Object(None), rehearsal=providers.Object(None))
    running_paper_report = providers.Singleton(paper_wiring.paper_report, settings, uow_factory, calendar, scope,
                                               market, broker, event_search, spend_ledger, storage,
                                               currency_display)
    paper_report = providers.Selector(venue_kind, alpaca=running_paper_report, sim=running_paper_report,
                                      rehearsal=running_paper_report, backtest=providers.Object(None))
    job_deps = providers.Singleton(
        WorkerDeps, runner=runner, uow_factory=uow_factory, calendar=calendar, clock=clock, scope=scope,
        conditions=conditions, discovery=discovery, backup=backup, schedule=schedule,
        policy=providers.Singleton(JobPolicy), alerts=alerts, evals=nightly_evals, paper_report=paper_report,
        currency=currency_display,
        on_failure=providers.Singleton(system.alert_notifier, alerts))
    job_sleep = providers.Selector(venue_kind, alpaca=providers.Object(asyncio.sleep),
                                   sim=providers.Object(asyncio.sleep), backtest=providers.Object(system.no_wait),
                                   rehearsal=providers.Object(system.no_wait))
    in_process_jobs = providers.Singleton(InProcessJobs, job_deps, sleep=job_sleep)
    redis_queue = providers.Factory(system.redis_queue, settings, closing)


def build_container(settings: Settings, mode: Mode = "live", *, storage: Storage | None = None,
                    **run: Any) -> Container:
    """A container for `mode` with `settings` and the run parameters `run` (scope, start, end, cash, seed,
    n_symbols, symbols, data_dirs, discovery, resume_policy, fundamentals, report, memory_recall).

    Raises:
        ValueError: an unknown mode or storage.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    kind, default_storage = MODES[mode]
    chosen = storage or default_storage
    if chosen not in ("postgres", "memory"):
        raise ValueError(f"unknown storage {chosen!r}; use postgres or memory")
    container = Container(settings=settings)
    container.venue_kind.override(providers.Object(kind))
    container.storage.override(providers.Object(chosen))
    container.run.from_dict({k: v for k, v in run.items() if v is not None})
    return container


async def close_container(container: Container) -> None:
    """Close what the container opened: network clients, the emulator, the database engine."""
    await container.closing().aclose()
