"""Live composition: the trading cycle on Alpaca (paper or live) or on the simulated paper broker.

Without Alpaca keys (`QUORUM_BROKER__PROVIDER=sim`, the default) the market is
a seeded synthetic market (or CSV replay with QUORUM_SIM_DATA_DIR) and the
broker is the in-memory paper account, fed the current session's opening
prices before each cycle. Its account lives in the process: use Alpaca paper
for an account that survives restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from adapters.calendar.nyse import NyseCalendar, SystemClock
from adapters.inmemory.broker import InMemoryBroker
from adapters.inmemory.fundamentals import discovery_fundamentals
from adapters.inmemory.market_data import DailyBarMarketData, SyntheticMarket
from adapters.llm.offline_policy import OfflinePolicyLLM
from application.agents import Agents
from application.cycle.trading_cycle import CycleResult, CycleSettings, TradingCycle, Universe
from application.discovery.service import DiscoveryService
from application.discovery.watchlist import watchlist_universe
from application.llm_gateway import LLMGateway
from application.market_conditions import MarketConditionService
from application.schedule import ScheduleConfig
from domain.errors import ConfigurationError, DataError
from domain.memory import DEFAULT_SCOPE
from domain.ports.broker import Broker
from domain.ports.clock import Clock
from domain.ports.market_data import Fundamentals, MarketData
from domain.ports.uow import UnitOfWork
from entrypoints.container import Container
from entrypoints.logging_setup import register_secret
from entrypoints.settings import Settings
from entrypoints.wiring import NOT_STOCKS, NY, WARMUP_DAYS, build_llms

log = structlog.get_logger(__name__)
SIM_SYMBOLS = 40


def build_alpaca(settings: Settings, calendar: NyseCalendar) -> tuple[Broker, MarketData]:
    """AlpacaBroker and AlpacaMarketData from settings (paper unless live is acknowledged)."""
    from adapters.alpaca import AlpacaBroker, AlpacaConfig, AlpacaMarketData

    b = settings.broker
    if b.alpaca_api_key is None or b.alpaca_secret_key is None:
        raise ConfigurationError("QUORUM_BROKER__PROVIDER=alpaca needs QUORUM_BROKER__ALPACA_API_KEY and "
                                 "QUORUM_BROKER__ALPACA_SECRET_KEY")
    key, secret = b.alpaca_api_key.get_secret_value(), b.alpaca_secret_key.get_secret_value()
    register_secret(key)
    register_secret(secret)
    config = AlpacaConfig.from_values(key, secret, paper=b.paper, live_trading_ack=settings.live_trading,
                                      trading_url=b.trading_url, data_url=b.data_url, feed=b.data_feed,
                                      bars_feed=b.bars_feed, timeout=b.timeout_seconds)
    return AlpacaBroker(config), AlpacaMarketData(config, calendar=calendar)


@dataclass
class LiveApp:
    """The running system: one cycle, its adapters and the clock."""

    settings: Settings
    container: Container
    calendar: NyseCalendar
    clock: Clock
    broker: Broker
    market: MarketData
    cycle: TradingCycle
    conditions: MarketConditionService
    gateway: LLMGateway
    scope: str = DEFAULT_SCOPE
    _opened: set[date] = field(default_factory=set)
    _closed: set[date] = field(default_factory=set)

    async def feed_sim_broker(self, at: datetime) -> None:
        """In sim mode, replay sessions to the paper broker: each closed session's range (stops, expiries)
        and, once today's session is open, today's opening prices."""
        if not isinstance(self.broker, InMemoryBroker) or not isinstance(self.market, DailyBarMarketData):
            return
        for day in sorted(self._opened - self._closed):
            if self.calendar.session_close(day) <= at:
                self.broker.on_session_close(day, self.market.ohlc_on(day))
                self._closed.add(day)
        if self.calendar.is_open(at):
            day = at.astimezone(NY).date()
            if day not in self._opened:
                self.broker.on_session_open(day, self.market.opens_on(day))
                self._opened.add(day)
            else:
                self.broker.on_prices(at, self.market.opens_on(day))  # what earlier cycles sent fills now

    async def run_cycle(self, *, kind: str = "scheduled", symbol: str | None = None,
                        as_of: datetime | None = None, cycle_id: str | None = None) -> CycleResult:
        """Run one trading cycle now (or at `as_of`), under `cycle_id` when given."""
        at = as_of or self.clock.now()
        await self.feed_sim_broker(at)
        return await self.cycle.run(as_of=at, kind=kind, symbol=symbol, cycle_id=cycle_id)

    async def reconcile_now(self) -> int:
        """Start-up reconciliation with the broker in its own transaction; returns the number of differences."""
        at = self.clock.now()
        await self.feed_sim_broker(at)
        return await self.cycle.reconcile(as_of=at)

    async def close(self) -> None:
        """Release network clients."""
        for thing in (self.broker, self.market):
            aclose = getattr(thing, "aclose", None)
            if aclose is not None:
                await aclose()


def market_universe(market: MarketData, n: int) -> Universe:
    """Until discovery fills the watchlist: the `n` most liquid tradable symbols of the market."""
    cache: dict[str, list[str]] = {}

    async def universe(_uow: UnitOfWork, as_of: datetime) -> list[str]:
        day = as_of.date().isoformat()
        if day not in cache:
            assets = [a.symbol for a in await market.assets() if a.tradable and a.symbol not in NOT_STOCKS]
            bars = await market.daily_bars(assets, as_of=as_of, lookback=20)
            ranked = sorted(((float((b.close * b.volume).mean()), s) for s, b in bars.items() if len(b)),
                            key=lambda t: (-t[0], t[1]))
            cache.clear()
            cache[day] = [s for _, s in ranked[:n]]
        return cache[day]

    return universe


async def build_live_app(settings: Settings, container: Container, *, clock: Clock | None = None,
                         universe: Universe | None = None, market: MarketData | None = None,
                         scope: str = DEFAULT_SCOPE) -> LiveApp:
    """Wire the live system from settings (`scope`: where it records; a rehearsal uses its own)."""
    calendar = NyseCalendar()
    clk = clock or SystemClock()
    broker: Any
    if settings.broker.provider == "alpaca":
        broker, mkt = build_alpaca(settings, calendar)
        market = market or mkt
    else:
        now = clk.now()
        market = market or SyntheticMarket(seed=7, n_symbols=SIM_SYMBOLS,
                                           start=now.date() - timedelta(days=WARMUP_DAYS), end=now.date(),
                                           calendar=calendar)
        fractionable = {a.symbol: a.fractionable for a in await market.assets()}
        broker = InMemoryBroker(Decimal(settings.risk.starting_capital), settings.risk.fees, clk, calendar,
                                fractionable)
    gateway = LLMGateway(build_llms(settings), settings.llm.daily_cap_usd, scope, NY)
    agents = Agents(gateway, concurrency=settings.llm.concurrency, exit_rules=OfflinePolicyLLM())
    conditions = MarketConditionService(market, scope=scope)
    cycle = TradingCycle(uow_factory=container.uow_factory(), broker=broker, market=market, calendar=calendar,
                         embedder=container.embedder(), agents=agents, gateway=gateway, conditions=conditions,
                         risk=settings.risk,
                         universe=universe or watchlist_universe(scope, market_universe(market, 20)),
                         settings=CycleSettings(
                             scope=scope, large_position_change_pct=settings.alerts.large_position_change_pct))
    return LiveApp(settings, container, calendar, clk, broker, market, cycle, conditions, gateway, scope)


def build_discovery(settings: Settings, container: Container, market: MarketData, calendar: NyseCalendar,
                    gateway: LLMGateway | None = None, *, clock: Clock | None = None,
                    fundamentals: Fundamentals | None = None, scope: str = DEFAULT_SCOPE) -> DiscoveryService:
    """The discovery service on the live composition (used by `quorum discover`, the API and the jobs).

    Args:
        settings: discovery, LLM and schedule settings.
        container: unit-of-work factory and embedder.
        market: the live market data.
        calendar: the exchange calendar.
        gateway: discovery's own LLM gateway (a new one on the configured models when None; do not share the
            trading cycle's, whose buffered records it would flush or discard).
        clock: "now" of the API methods (the system clock when None).
        fundamentals: sector and market cap; when None, the synthetic market's own on the synthetic market, and
            on any other market (Alpaca, CSV replay) the shipped S&P 500 sector map with
            QUORUM_DISCOVERY__FUNDAMENTALS_FILE (market caps) merged over it. Without market caps for any symbol
            the metric picker skips its market-cap filter and says so in the run.
        scope: the watchlist's scope.

    Raises:
        ConfigurationError: QUORUM_DISCOVERY__FUNDAMENTALS_FILE is not a readable fundamentals file.
    """
    if fundamentals is None:
        if isinstance(market, SyntheticMarket):
            fundamentals = market.fundamentals()
        else:
            path = settings.discovery.fundamentals_file
            try:
                fundamentals = discovery_fundamentals(path)
            except DataError as exc:
                if path is None:
                    raise
                raise ConfigurationError(f"QUORUM_DISCOVERY__FUNDAMENTALS_FILE: {exc}") from exc
            log.info("discovery_fundamentals", sectors="shipped S&P 500 sector map",
                     market_caps=str(path) if path else "none (QUORUM_DISCOVERY__FUNDAMENTALS_FILE is not set)")
    return DiscoveryService(
        container.uow_factory(), market, fundamentals, container.embedder(),
        gateway or LLMGateway(build_llms(settings), settings.llm.daily_cap_usd, scope, NY),
        MarketConditionService(market, scope=scope), calendar, settings.discovery, scope, clock=clock or SystemClock(),
        schedule=ScheduleConfig(cycle_minutes=settings.schedule.cycle_minutes,
                                discovery_hours=settings.schedule.discovery_hours), exclude=NOT_STOCKS)
