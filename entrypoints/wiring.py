"""Builds the trading cycle and the backtest from settings (part of the composition root)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.broker import InMemoryBroker
from adapters.inmemory.clock import SimClock
from adapters.inmemory.fundamentals import InMemoryFundamentals
from adapters.inmemory.market_data import ReplayMarketData, SyntheticMarket
from adapters.inmemory.symbols import ETF_SYMBOLS, INDEX_SYMBOLS
from adapters.llm.offline_policy import OfflinePolicyLLM
from application.agents import Agents
from application.backtest import BacktestRunner
from application.breaker_history import ResumePolicy
from application.cycle.trading_cycle import CycleSettings, TradingCycle, Universe
from application.discovery.service import DiscoveryService
from application.llm_gateway import LLMGateway
from application.market_conditions import CONTEXT_SYMBOLS, MarketConditionService
from domain.ports.embedder import Embedder
from domain.ports.llm import LLM
from domain.ports.market_data import Fundamentals, MarketData
from domain.ports.uow import UnitOfWork, UnitOfWorkFactory
from entrypoints.settings import Settings

NY = ZoneInfo("America/New_York")
NOT_STOCKS = frozenset(CONTEXT_SYMBOLS) | ETF_SYMBOLS | INDEX_SYMBOLS
WARMUP_DAYS = 400


def build_llms(settings: Settings) -> dict[str, LLM]:
    """agent -> LLM from settings: the offline policy unless a model string is configured."""
    offline = OfflinePolicyLLM()
    llms: dict[str, LLM] = {"default": offline}
    s = settings.llm
    configured = {"signal": s.signal_model, "risk": s.risk_model, "validator": s.validator_model,
                  "picker": s.picker_model}
    real = {agent: model for agent, model in configured.items() if model != "offline"}
    if real:
        from adapters.llm.litellm_adapter import LiteLLM

        keys = {name: k.get_secret_value() for name, k in (("anthropic", s.anthropic_api_key),
                                                           ("openai", s.openai_api_key),
                                                           ("gemini", s.gemini_api_key)) if k is not None}
        lite = LiteLLM(models=real, api_keys=keys, api_base=s.api_base, timeout_s=s.timeout_seconds,
                       max_retries=s.max_retries)
        llm: LLM = lite
        if s.replay_dir is not None:
            from adapters.llm.replay import ReplayLLM

            llm = ReplayLLM(s.replay_dir, real, mode="record" if s.record else "replay",
                            inner=lite if s.record else None)
        for agent in real:
            llms[agent] = llm
    return llms


def static_universe(symbols: Sequence[str]) -> Universe:
    """A fixed watchlist."""
    fixed = sorted(set(symbols))

    async def universe(_uow: UnitOfWork, _as_of: datetime) -> list[str]:
        return list(fixed)

    return universe


@dataclass
class BacktestApp:
    """Everything a backtest run needs, wired."""

    runner: BacktestRunner
    cycle: TradingCycle
    market: MarketData
    broker: InMemoryBroker
    symbols: list[str]
    data_description: str
    clock: SimClock
    discovery: DiscoveryService | None = None


async def pick_symbols(market: MarketData, calendar: NyseCalendar, start: date, n: int) -> list[str]:
    """The `n` most liquid stocks as of the session before `start` (no look-ahead), benchmarks excluded."""
    as_of = calendar.session_close(calendar.previous_session(calendar.session_open(calendar.sessions(
        start, start + timedelta(days=10))[0])))
    assets = [a.symbol for a in await market.assets() if a.tradable and a.symbol not in NOT_STOCKS]
    bars = await market.daily_bars(assets, as_of=as_of, lookback=60)
    ranked = sorted(((float((b.close[-20:] * b.volume[-20:]).mean()), s) for s, b in bars.items() if len(b) >= 60),
                    key=lambda t: (-t[0], t[1]))
    return [s for _, s in ranked[:n]]


async def build_backtest(
    settings: Settings, *, uow_factory: UnitOfWorkFactory, embedder: Embedder, scope: str, start: date, end: date,
    cash: Decimal, n_symbols: int, seed: int, data_dirs: Sequence[Path] = (), symbols: Sequence[str] = (),
    progress: Callable[[int, int, date, Decimal], None] | None = None, market: Any = None,
    calendar: NyseCalendar | None = None, llms: dict[str, LLM] | None = None, discovery: bool = False,
    fundamentals: Fundamentals | None = None, resume_policy: ResumePolicy = "approve-when-eligible",
) -> BacktestApp:
    """Wire market, broker, clock, agents and cycle for one backtest run (`market` overrides the data source).

    With `discovery`, discovery runs inside the simulation and the cycle trades the discovered watchlist
    (see `backtest_discovery`). `resume_policy`: what the simulation does when the breaker may resume.
    """
    calendar = calendar or NyseCalendar()
    if market is not None:
        description = "given market data"
    elif data_dirs:
        market = ReplayMarketData(list(data_dirs), calendar)
        description = "replay of " + ", ".join(str(d) for d in data_dirs)
    else:
        market = SyntheticMarket(seed=seed, n_symbols=n_symbols, start=start - timedelta(days=WARMUP_DAYS), end=end,
                                 calendar=calendar)
        description = f"synthetic market (seed {seed}, {n_symbols} symbols)"
    chosen = list(symbols) or await pick_symbols(market, calendar, start, n_symbols)
    if not chosen:
        raise ValueError("no symbols with at least 60 days of history before the start date")
    clock = SimClock(calendar.session_open(calendar.sessions(start, end)[0]))
    fractionable = {a.symbol: a.fractionable for a in await market.assets()}
    broker = InMemoryBroker(cash, settings.risk.fees, clock, calendar, fractionable)
    gateway = LLMGateway(llms or build_llms(settings), settings.llm.daily_cap_usd, scope, NY)
    agents = Agents(gateway, concurrency=settings.llm.concurrency, exit_rules=OfflinePolicyLLM())
    conditions = MarketConditionService(market, scope=scope)
    universe, found = static_universe(chosen), None
    if discovery:
        found = backtest_discovery(settings, uow_factory=uow_factory, market=market, fundamentals=fundamentals,
                                   embedder=embedder, calendar=calendar, conditions=conditions, scope=scope,
                                   llms=llms)
        universe = found.universe(fallback=universe)
    cycle = TradingCycle(uow_factory=uow_factory, broker=broker, market=market, calendar=calendar,
                         embedder=embedder, agents=agents, gateway=gateway, conditions=conditions,
                         risk=settings.risk, universe=universe, settings=CycleSettings(
                             scope=scope, large_position_change_pct=settings.alerts.large_position_change_pct))
    runner = BacktestRunner(uow_factory=uow_factory, market=market, calendar=calendar, clock=clock, broker=broker,
                            cycle=cycle, conditions=conditions, progress=progress, discovery=found,
                            resume_policy=resume_policy)
    return BacktestApp(runner, cycle, market, broker, chosen, description, clock, found)


def backtest_discovery(settings: Settings, *, uow_factory: UnitOfWorkFactory, market: MarketData,
                       fundamentals: Fundamentals | None, embedder: Embedder, calendar: NyseCalendar,
                       conditions: MarketConditionService, scope: str,
                       llms: dict[str, LLM] | None = None) -> DiscoveryService:
    """Discovery inside a backtest: run at each session's open, the first slot of the live 4-hourly schedule (a
    daily simulation has no other instant in the session); the cycle's universe becomes the watchlist (the
    backtest's symbols while it is empty). Fundamentals: `fundamentals`, else the synthetic market's, else none
    (then the metric picker skips its market-cap filter and says why; the shipped sector map is dated 2026 and
    would be look-ahead here). It has its own LLM gateway."""
    if fundamentals is None:
        fundamentals = market.fundamentals() if isinstance(market, SyntheticMarket) else InMemoryFundamentals()
    gateway = LLMGateway(llms or build_llms(settings), settings.llm.daily_cap_usd, scope, NY)
    return DiscoveryService(uow_factory, market, fundamentals, embedder, gateway, conditions, calendar,
                            settings.discovery.model_copy(update={"enabled": True}), scope, record_assets=False,
                            exclude=NOT_STOCKS)
