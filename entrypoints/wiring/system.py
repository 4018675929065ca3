"""The system around the trading cycle: LLMs, universe, discovery, alerts and the jobs' dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from adapters.alerts import JsonlAlertChannel
from adapters.http import HttpCycleTrigger
from adapters.inmemory.fundamentals import CsvFundamentals, InMemoryFundamentals, discovery_fundamentals
from adapters.inmemory.market_data import SyntheticMarket
from adapters.llm.offline_policy import OfflinePolicyLLM
from adapters.postgres.backup import backup_database
from adapters.queue import ArqCycleQueue
from adapters.tracing import TracedLLM
from application.alerts import AlertService
from application.discovery.service import DiscoveryService
from application.discovery.watchlist import watchlist_universe
from application.event_monitor import EventMonitor
from application.liquidity import Universe, fixed_universe, liquid_universe
from application.llm_gateway import LLMGateway
from application.llm_spend import SpendLedger
from application.market_conditions import MarketConditionService
from application.monitor_symbols import watchlist_and_positions
from application.prompts import PromptStyle
from application.schedule import ScheduleConfig
from application.tracing import NULL_TRACER
from domain.errors import ConfigurationError, DataError
from domain.events import Event
from domain.evidence import EvidencePolicy
from domain.ports.broker import Broker
from domain.ports.clock import Clock, MarketCalendar
from domain.ports.embedder import Embedder
from domain.ports.llm import LLM
from domain.ports.market_data import Fundamentals, MarketData
from domain.ports.tracer import Tracer
from domain.ports.trigger import CycleTrigger
from domain.ports.uow import UnitOfWorkFactory
from entrypoints.logging_setup import redact, register_secret
from entrypoints.settings import Settings
from entrypoints.wiring.alerts import build_alert_service, build_routes
from entrypoints.wiring.closing import Closing
from entrypoints.wiring.venue import NOT_STOCKS

log = structlog.get_logger(__name__)
LIVE_FALLBACK_SYMBOLS = 20
EVALS_SCOPE = "evals"
"""The scope eval runs record their LLM calls under (counted in the daily cap too)."""
"""The live universe while discovery has not filled the watchlist: the most liquid stocks."""


def model_prices(settings: Settings) -> dict[str, tuple[float, float]]:
    """QUORUM_LLM__PRICES as model -> (USD per million input tokens, per million output tokens)."""
    return {m: (p.input_per_million, p.output_per_million) for m, p in settings.llm.prices.items()}


def model_cache_prices(settings: Settings) -> dict[str, tuple[float | None, float | None]]:
    """QUORUM_LLM__PRICES as model -> (USD per million cached prompt tokens read, written), None for the default."""
    return {m: (p.cached_input_per_million, p.cache_write_per_million) for m, p in settings.llm.prices.items()}


def prompt_style(settings: Settings) -> PromptStyle:
    """How the agents and the discovery picker write their prompts (QUORUM_LLM__COMPACT_PROMPTS, ...)."""
    s = settings.llm
    distance = settings.risk.validator.max_distance if s.evidence_max_distance is None else s.evidence_max_distance
    return PromptStyle(compact=s.compact_prompts, compact_evidence=s.compact_evidence,
                       reasoning_chars=s.evidence_reasoning_chars, evidence_max_distance=distance)


def evidence_policy(settings: Settings) -> EvidencePolicy:
    """Which recalled memories the cycle's agents see (QUORUM_LLM__COMPACT_EVIDENCE, ...)."""
    s = settings.llm
    distance = settings.risk.validator.max_distance if s.evidence_max_distance is None else s.evidence_max_distance
    return EvidencePolicy(compact=s.compact_evidence, max_distance=distance, reasoning_chars=s.evidence_reasoning_chars,
                          fetch_factor=s.evidence_fetch_factor)


def llms(settings: Settings) -> dict[str, LLM]:
    """agent -> LLM from settings: the offline policy unless a model string is configured.

    Raises:
        ConfigurationError: a paid model that neither litellm's cost map nor QUORUM_LLM__PRICES prices.
    """
    offline = OfflinePolicyLLM()
    out: dict[str, LLM] = {"default": offline}
    s = settings.llm
    configured = {"signal": s.signal_model, "risk": s.risk_model, "validator": s.validator_model,
                  "picker": s.picker_model}
    real = {agent: model for agent, model in configured.items() if model != "offline"}
    if real:
        from adapters.llm.litellm_adapter import LiteLLM
        from adapters.llm.price_table import require_prices

        for agent, model in real.items():
            require_prices([model], model_prices(settings), setting=f"QUORUM_LLM__{agent.upper()}_MODEL")
        keys = {name: k.get_secret_value() for name, k in (("anthropic", s.anthropic_api_key),
                                                           ("openai", s.openai_api_key),
                                                           ("gemini", s.gemini_api_key)) if k is not None}
        lite = LiteLLM(models=real, api_keys=keys, api_base=s.api_base, timeout_s=s.timeout_seconds,
                       max_retries=s.max_retries, max_tokens=s.max_output_tokens, prices=model_prices(settings),
                       cache_prices=model_cache_prices(settings), schema_once=s.compact_prompts,
                       prompt_caching=s.prompt_caching)
        llm: LLM = lite
        if s.replay_dir is not None:
            from adapters.llm.failure_cassette import FailureCassette
            from adapters.llm.replay import ReplayLLM

            llm = FailureCassette(ReplayLLM(s.replay_dir, real, mode="record" if s.record else "replay",
                                            inner=lite if s.record else None,
                                            report_original_cost=s.replay_reports_cost))
        for agent in real:
            out[agent] = llm
    return out


def llm_probe(settings: Settings, agent: str, model: str, timeout_s: float) -> LLM:
    """A one-off LiteLLM for `quorum preflight`: `agent` on `model`, no retries."""
    from adapters.llm.litellm_adapter import LiteLLM

    s = settings.llm
    keys = {p: k.get_secret_value() for p, k in (("openai", s.openai_api_key), ("anthropic", s.anthropic_api_key),
                                                 ("gemini", s.gemini_api_key)) if k is not None}
    return LiteLLM(models={agent: model}, api_keys=keys, api_base=s.api_base,
                   timeout_s=min(s.timeout_seconds, timeout_s), max_retries=0)


def daily_cap_usd(settings: Settings, equity: Decimal | None = None) -> float:
    """QUORUM_LLM__DAILY_CAP_USD, else the cap derived from `equity` (default: risk.starting_capital):
    QUORUM_LLM__DAILY_CAP_SHARE_OF_EQUITY times it (0.05 USD a day for 650 USD)."""
    s = settings.llm
    if s.daily_cap_usd is not None:
        return s.daily_cap_usd
    return s.daily_cap_share_of_equity * float(equity if equity is not None else settings.risk.starting_capital)


def spend_ledger(settings: Settings, scope: str, calendar: MarketCalendar) -> SpendLedger:
    """The process's one spend ledger: the agents, the discovery picker, the chat and the nightly evals reserve
    against it; the calls recorded under the scope and the evals' count. Its cap is QUORUM_LLM__DAILY_CAP_USD, or
    unset, derived from the account's equity at the day's start (the starting capital until one is known)."""
    share = settings.llm.daily_cap_share_of_equity if settings.llm.daily_cap_usd is None else None
    return SpendLedger(daily_cap_usd(settings), tuple(dict.fromkeys((scope, EVALS_SCOPE))), calendar.tz,
                       share_of_equity=share)


def gateway(settings: Settings, models: dict[str, LLM], scope: str, calendar: MarketCalendar,
            tracer: Tracer = NULL_TRACER, ledger: SpendLedger | None = None) -> LLMGateway:
    """The process's one LLM gateway (every agent and the discovery picker) on the process's spend ledger."""
    return LLMGateway(models, daily_cap_usd(settings), scope, calendar.tz, tracer=tracer, ledger=ledger,
                      call_estimate_usd=settings.llm.call_estimate_usd)


def tracer(settings: Settings, closing: Closing) -> Tracer:
    """LangSmith when LANGSMITH_TRACING=true (its API key registered for redaction, unsent runs flushed at close);
    else the null tracer, and langsmith is not even imported."""
    t = settings.tracing
    if not t.enabled:
        return NULL_TRACER
    from adapters.tracing.langsmith_tracer import LangSmithTracer

    key = t.api_key.get_secret_value() if t.api_key is not None else None
    register_secret(key)
    traced = LangSmithTracer.connect(endpoint=t.endpoint, api_key=key, project=t.project)
    closing.add(traced.aclose)
    log.info("tracing_on", backend="langsmith", endpoint=t.endpoint or "LangSmith cloud", project=t.project)
    return traced


def traced_llms(models: dict[str, LLM], chosen: Tracer) -> dict[str, LLM]:
    """The agents' LLMs, each call an "llm" span when tracing is on (the same objects when it is off)."""
    if not chosen.enabled:
        return models
    return {agent: TracedLLM(llm, chosen) for agent, llm in models.items()}


def exit_rules(chosen: Tracer) -> LLM:
    """The free policy the agents fall back on for exits (traced like the agents' LLMs)."""
    return traced_llms({"rules": OfflinePolicyLLM()}, chosen)["rules"]


def schedule(settings: Settings) -> ScheduleConfig:
    """The job timing from QUORUM_SCHEDULE__*."""
    s = settings.schedule
    return ScheduleConfig(cycle_minutes=s.cycle_minutes, discovery_hours=s.discovery_hours)


def fundamentals(settings: Settings, market: MarketData, run: dict[str, Any], backtest: bool) -> Fundamentals:
    """Sector and market cap for discovery.

    A `--fundamentals` file (`run["fundamentals"]`) first: alone in a backtest, merged over the shipped S&P 500
    sector map otherwise. Without one, the synthetic market's own on the synthetic market; none in a backtest on
    CSV data (the shipped map is dated 2026: look-ahead), so the metric picker skips its market-cap filter and
    says so; live, the shipped map with QUORUM_DISCOVERY__FUNDAMENTALS_FILE (market caps) merged over it.

    Raises:
        ConfigurationError: the fundamentals file is not a readable fundamentals file.
    """
    given = run.get("fundamentals")
    if backtest and given:
        return CsvFundamentals(Path(given))
    if isinstance(market, SyntheticMarket) and not given:
        return market.fundamentals()
    if backtest:
        return InMemoryFundamentals()
    path = Path(given) if given else settings.discovery.fundamentals_file
    try:
        found = discovery_fundamentals(path)
    except DataError as exc:
        if path is None:
            raise
        raise ConfigurationError(f"{'--fundamentals' if given else 'QUORUM_DISCOVERY__FUNDAMENTALS_FILE'}: {exc}") \
            from exc
    log.info("discovery_fundamentals", sectors="shipped S&P 500 sector map",
             market_caps=str(path) if path else "none (QUORUM_DISCOVERY__FUNDAMENTALS_FILE is not set)")
    return found


def discovery(settings: Settings, uow_factory: UnitOfWorkFactory, market: MarketData, funds: Fundamentals,
              embedder: Embedder, llm_gateway: LLMGateway, conditions: MarketConditionService,
              calendar: MarketCalendar, scope: str, clock: Clock, backtest: bool) -> DiscoveryService:
    """The discovery service. In a backtest it runs inside the simulation (enabled, assets not recorded)."""
    config = settings.discovery.model_copy(update={"enabled": True}) if backtest else settings.discovery
    return DiscoveryService(uow_factory, market, funds, embedder, llm_gateway, conditions, calendar, config, scope,
                            clock=clock, schedule=schedule(settings), record_assets=not backtest,
                            exclude=NOT_STOCKS, prompt_style=prompt_style(settings))


def live_universe(scope: str, market: MarketData) -> Universe:
    """The watchlist, or the most liquid stocks while it is empty."""
    return watchlist_universe(scope, liquid_universe(market, LIVE_FALLBACK_SYMBOLS, exclude=NOT_STOCKS))


def backtest_universe(run: dict[str, Any], found: DiscoveryService | None) -> Universe:
    """The backtest's symbols (chosen before the run), or the discovered watchlist when discovery runs."""
    fixed = fixed_universe(run.get("symbols") or ())
    return found.universe(fallback=fixed) if found is not None else fixed


def alert_log(run: dict[str, Any]) -> JsonlAlertChannel | None:
    """A rehearsal's alerts channel: `alerts.jsonl` in its report directory (`run["report"]`); None otherwise."""
    report = run.get("report")
    return None if report is None else JsonlAlertChannel(Path(report) / "alerts.jsonl")


def alerts(settings: Settings, uow_factory: UnitOfWorkFactory, scope: str, clock: Clock,
           sink: JsonlAlertChannel | None) -> AlertService:
    """The alert service of the settings' channels, or only `sink` when given (a rehearsal)."""
    if sink is None:
        return build_alert_service(settings, uow_factory, scope, clock=clock)
    return AlertService(uow_factory, {sink.name: sink}, build_routes(settings.alerts, {sink.name: sink}),
                        scope=scope, clock=clock, sleep=no_wait, redact=redact)


def backup(settings: Settings, database: tuple[str, str]) -> Callable[[datetime], Awaitable[object]]:
    """The nightly backup: pg_dump of the configured (or embedded) database into QUORUM_SCHEDULE__BACKUP_DIR."""

    async def run_backup(at: datetime) -> object:
        url, _ = database
        path = await backup_database(url, settings.schedule.backup_dir,
                                     keep_days=settings.schedule.backup_keep_days, now=at)
        return str(path)

    return run_backup


async def no_wait(_seconds: float) -> None:
    """Retries inside a simulation do not wait on the wall clock."""
    return None


def alert_notifier(service: AlertService) -> Callable[[Event], Awaitable[object]]:
    """Forwards a job's final-failure event to the alert channels at once (the alerts job forwards it too from
    the event log; the alert service never sends one alert twice)."""

    async def notify(event: Event) -> object:
        try:
            return await service.dispatch([event])
        except Exception as exc:  # noqa: BLE001 - the event is in the log; the alerts job forwards it later
            log.error("alert_dispatch_failed", error=f"{type(exc).__name__}: {exc}")
            return None

    return notify


async def redis_queue(settings: Settings, closing: Closing) -> ArqCycleQueue:
    """The cycle queue on the Redis of REDIS_URL (closed with the container).

    Raises:
        ConfigurationError: REDIS_URL is not set.
    """
    if not settings.redis_url:
        raise ConfigurationError("the Redis cycle queue needs REDIS_URL (or QUORUM_REDIS_URL)")
    queue = await ArqCycleQueue.connect(settings.redis_url)
    closing.add(queue.close)
    return queue


def cycle_trigger(settings: Settings, run: dict[str, Any], closing: Closing) -> HttpCycleTrigger:
    """How `quorum monitor` asks the API for an event cycle (`run["api_url"]`, the API key of the settings)."""
    key = settings.api_key.get_secret_value() if settings.api_key else None
    trigger = HttpCycleTrigger(str(run.get("api_url") or "http://127.0.0.1:8000"), key)
    closing.add(trigger.aclose)
    return trigger


def event_monitor(market: MarketData, uow_factory: UnitOfWorkFactory, broker: Broker, scope: str,
                  trigger: CycleTrigger, clock: Clock, calendar: MarketCalendar,
                  run: dict[str, Any]) -> EventMonitor:
    """The event monitor on the watchlist, the open positions and `run["watch"]` extras."""
    return EventMonitor(market, watchlist_and_positions(uow_factory, broker, scope, extra=run.get("watch") or ()),
                        trigger, clock, calendar, threshold=float(run.get("threshold") or 0.05),
                        poll_interval=float(run.get("interval") or 60.0))
