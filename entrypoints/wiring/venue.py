"""The trading venue of each mode: clock, market data and broker.

- live: Alpaca (paper unless acknowledged) on the system clock;
- sim: the in-memory venue on a synthetic market around today, brought up to the time of each cycle;
- backtest: the in-memory venue on the backtest's history (CSV directories or a seeded synthetic market);
- rehearsal: the Alpaca adapters against the Alpaca-wire emulator replaying history on its own clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.alpaca import AlpacaBroker, AlpacaConfig, AlpacaMarketData
from adapters.calendar.nyse import NyseCalendar, SystemClock
from adapters.inmemory.alpaca_emulator import AlpacaEmulator
from adapters.inmemory.broker import InMemoryBroker
from adapters.inmemory.clock import SimClock
from adapters.inmemory.market_data import (
    DailyBarMarketData,
    ReplayMarketData,
    SyntheticMarket,
    daily_from_intraday,
)
from adapters.inmemory.replay import run_sync
from adapters.inmemory.symbols import ETF_SYMBOLS, INDEX_SYMBOLS
from adapters.inmemory.venue import WARM_UP, InMemoryVenue
from application.liquidity import MIN_HISTORY_SESSIONS, most_liquid_before
from application.market_conditions import CONTEXT_SYMBOLS
from domain.errors import ConfigurationError
from entrypoints.logging_setup import register_secret
from entrypoints.settings import Settings
from entrypoints.wiring.closing import Closing

WARMUP_DAYS = 400
"""Calendar days of history a synthetic market has before the first session traded."""
SIM_SYMBOLS = 40
"""Stocks of the `sim` provider's synthetic market."""
NOT_STOCKS = frozenset(CONTEXT_SYMBOLS) | ETF_SYMBOLS | INDEX_SYMBOLS
"""Never traded, never ranked: the market context, ETFs and indices."""
EMULATOR_KEYS = ("rehearsal-key", "rehearsal-secret")


def history(run: dict[str, Any], calendar: NyseCalendar, clock: SystemClock) -> DailyBarMarketData:
    """The replayed history of the sim, backtest and rehearsal modes: `run["data_dirs"]` as CSV, else a seeded
    synthetic market covering `run["start"]..run["end"]` (today for the sim provider) plus its warm-up."""
    dirs = [Path(d) for d in run.get("data_dirs") or ()]
    if dirs:
        return ReplayMarketData(dirs, calendar)
    today = clock.now().date()
    start: date = run.get("start") or today
    end: date = run.get("end") or today
    return SyntheticMarket(seed=int(run.get("seed") or 7), n_symbols=int(run.get("n_symbols") or SIM_SYMBOLS),
                           start=start - timedelta(days=WARMUP_DAYS), end=end, calendar=calendar)


REHEARSAL_MIN_SYNTHETIC = 12
"""A rehearsal's synthetic market has at least this many stocks to choose from."""


@dataclass(frozen=True)
class ListedHistory:
    """What the emulator of a rehearsal lists: the most liquid stocks before the start and the market context."""

    market: DailyBarMarketData
    symbols: list[str]


def listed_history(run: dict[str, Any], calendar: NyseCalendar, clock: SystemClock) -> ListedHistory:
    """The rehearsal's history: `run["n_symbols"]` most liquid stocks before `run["start"]` (no look-ahead) and the
    context. A symbol with intraday bars and no daily ones gets daily bars aggregated from its regular session.

    Raises:
        ValueError: no stock has enough history before the start.
    """
    n = int(run.get("n_symbols") or 20)
    market = history({**run, "n_symbols": max(n, REHEARSAL_MIN_SYNTHETIC)}, calendar, clock)
    intraday = {s: bars for s in market.symbols if (bars := market.intraday(s))}
    daily = {s: series for s in market.symbols if (series := market.series(s)) is not None}
    for s, bars in intraday.items():
        if s not in daily and (series := daily_from_intraday(s, bars, calendar)) is not None:
            daily[s] = series
    full = DailyBarMarketData(daily, calendar, intraday=intraday)
    start: date = run["start"]
    chosen = run_sync(most_liquid_before(full, calendar, start, n, exclude=NOT_STOCKS))
    if not chosen:
        raise ValueError(f"no stock has {MIN_HISTORY_SESSIONS} days of history before {start}")
    keep = set(chosen) | set(CONTEXT_SYMBOLS)
    return ListedHistory(DailyBarMarketData({s: d for s, d in daily.items() if s in keep}, calendar,
                                            intraday={s: b for s, b in intraday.items() if s in keep},
                                            dividends=market.dividends.only(keep)), chosen)


def venue_clock(run: dict[str, Any], calendar: NyseCalendar, clock: SystemClock) -> SimClock:
    """The in-memory venue's clock: before the first session of a backtest, before the last session for sim."""
    start: date | None = run.get("start")
    if start is not None:
        first = calendar.sessions(start, start + timedelta(days=10))[0]
        return SimClock(calendar.session_open(first) - WARM_UP)
    return SimClock(calendar.session_open(calendar.previous_session(clock.now())) - WARM_UP)


def sim_broker(settings: Settings, run: dict[str, Any], market: DailyBarMarketData, calendar: NyseCalendar,
               clock: SimClock) -> InMemoryBroker:
    """The in-memory broker with the run's cash (the starting capital by default)."""
    cash = Decimal(run.get("cash") or settings.risk.starting_capital)
    fractionable = {a.symbol: a.fractionable for a in run_sync(market.assets())}
    return InMemoryBroker(cash, settings.risk.fees, clock, calendar, fractionable)


def in_memory_venue(broker: InMemoryBroker, market: DailyBarMarketData, calendar: NyseCalendar,
                    clock: SimClock) -> InMemoryVenue:
    """The in-memory venue."""
    return InMemoryVenue(broker, market, calendar, clock)


def alpaca_config(settings: Settings) -> AlpacaConfig:
    """Alpaca's connection from settings; the keys are registered for redaction.

    Raises:
        ConfigurationError: a key is missing (or live trading is not acknowledged).
    """
    b = settings.broker
    if b.alpaca_api_key is None or b.alpaca_secret_key is None:
        raise ConfigurationError("QUORUM_BROKER__PROVIDER=alpaca needs QUORUM_BROKER__ALPACA_API_KEY and "
                                 "QUORUM_BROKER__ALPACA_SECRET_KEY")
    key, secret = b.alpaca_api_key.get_secret_value(), b.alpaca_secret_key.get_secret_value()
    register_secret(key)
    register_secret(secret)
    return AlpacaConfig.from_values(key, secret, paper=b.paper, live_trading_ack=settings.live_trading,
                                    trading_url=b.trading_url, data_url=b.data_url, feed=b.data_feed,
                                    bars_feed=b.bars_feed, timeout=b.timeout_seconds)


PROBE_TIMEOUT_S = 10.0


def alpaca_probe(settings: Settings) -> AlpacaBroker:
    """A one-off AlpacaBroker for `quorum preflight`: short timeout, no retries; the caller closes it.

    Raises:
        ConfigurationError: the trading URL contradicts the paper setting.
        LiveTradingRefusedError: live trading without the acknowledgement.
    """
    b = settings.broker
    if b.alpaca_api_key is None or b.alpaca_secret_key is None:
        raise ConfigurationError("QUORUM_BROKER__PROVIDER=alpaca but the Alpaca keys are not set")
    config = AlpacaConfig.from_values(b.alpaca_api_key.get_secret_value(), b.alpaca_secret_key.get_secret_value(),
                                      paper=b.paper, live_trading_ack=settings.live_trading,
                                      trading_url=b.trading_url, data_url=b.data_url, feed=b.data_feed,
                                      bars_feed=b.bars_feed, timeout=min(b.timeout_seconds, PROBE_TIMEOUT_S),
                                      max_retries=0)
    return AlpacaBroker(config)


def emulator(settings: Settings, run: dict[str, Any], market: DailyBarMarketData, calendar: NyseCalendar,
             closing: Closing) -> AlpacaEmulator:
    """The Alpaca-wire emulator of a rehearsal, started one hour before the first session's open."""
    start: date = run["start"]
    first = calendar.sessions(start, start + timedelta(days=10))[0]
    emu = AlpacaEmulator(market, calendar, start=calendar.session_open(first) - timedelta(hours=1),
                         starting_cash=Decimal(run.get("cash") or settings.risk.starting_capital),
                         fees=settings.risk.fees, api_key=EMULATOR_KEYS[0], secret_key=EMULATOR_KEYS[1],
                         id_seed=int(run.get("seed") or 7)).start()
    closing.add(emu.stop)
    return emu


def emulator_config(settings: Settings, emu: AlpacaEmulator) -> AlpacaConfig:
    """Paper Alpaca pointed at the emulator."""
    return AlpacaConfig.from_values(*EMULATOR_KEYS, paper=True, trading_url=emu.url, data_url=emu.url,
                                    feed=settings.broker.data_feed, bars_feed=settings.broker.bars_feed,
                                    timeout=settings.broker.timeout_seconds)


def alpaca_broker(config: AlpacaConfig, closing: Closing) -> AlpacaBroker:
    """AlpacaBroker (closed with the container)."""
    broker = AlpacaBroker(config)
    closing.add(broker.aclose)
    return broker


def alpaca_market(config: AlpacaConfig, calendar: NyseCalendar, closing: Closing) -> AlpacaMarketData:
    """AlpacaMarketData (closed with the container)."""
    market = AlpacaMarketData(config, calendar=calendar)
    closing.add(market.aclose)
    return market


def first_open(calendar: NyseCalendar, start: date) -> datetime:
    """The open of the first session on or after `start`."""
    return calendar.session_open(calendar.sessions(start, start + timedelta(days=10))[0])
