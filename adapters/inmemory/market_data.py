"""Market data for backtests and tests: daily bars replayed without look-ahead.

- `DailyBarMarketData`: the `MarketData` port over in-memory daily `BarSeries` (and optional intraday bars).
- `ReplayMarketData`: the same over every CSV in some directories (see `csv_bars`).
- `SyntheticMarket`: the same over a seeded synthetic market (see `synthetic_bars`).

Time rules (nothing from the future): a daily bar becomes visible when its session closes
(`calendar.session_close(day) <= as_of`, early closes included). While a session is open, the only price
of that day known from daily data is its open, so a quote's `last` is the day's open; once the session has
closed it is the close. Intraday bars are returned once complete (`bar.at + bar length <= end`).

Cash dividends (`dividends`, from an `Adj Close` column) are not on the `MarketData` port: the venue replaying
this history credits them (see `adapters.inmemory.replay`).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from adapters.inmemory.csv_bars import LoadReport, load_bars
from adapters.inmemory.dividends import DividendSchedule
from adapters.inmemory.fundamentals import InMemoryFundamentals
from adapters.inmemory.symbols import (
    BENCHMARK_SYMBOL,
    BENCHMARK_SYMBOLS,
    CONTEXT_SYMBOLS,
    ETF_SYMBOLS,
    INDEX_SYMBOLS,
    SECTOR_ETFS,
    VOLATILITY_SYMBOL,
)
from adapters.inmemory.synthetic_bars import SyntheticData, generate_market
from domain.models.bar import Bar
from domain.models.market import Asset, BarSeries, Quote
from domain.money import price
from domain.ports.clock import MarketCalendar
from domain.ports.market_data import MarketData

__all__ = [
    "BENCHMARK_SYMBOL",
    "BENCHMARK_SYMBOLS",
    "CONTEXT_SYMBOLS",
    "ETF_SYMBOLS",
    "INDEX_SYMBOLS",
    "SECTOR_ETFS",
    "VOLATILITY_SYMBOL",
    "DailyBarMarketData",
    "ReplayMarketData",
    "SyntheticMarket",
]

_BPS = 1e-4
_DEFAULT_EXCHANGE = Asset("_").exchange
OHLC = tuple[Decimal, Decimal, Decimal, Decimal]


def _aware(at: datetime, name: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {at!r}")
    return at


class DailyBarMarketData(MarketData):
    """`MarketData` over daily bar series, replayed without look-ahead.

    Args:
        daily: daily bars per symbol (session dates).
        calendar: the exchange calendar that says when each session opens and closes.
        intraday: optional intraday bars per symbol (timezone-aware `at`).
        intraday_intervals: bar length per intraday symbol; inferred from the bars when absent.
        spread_bps: full quoted bid-ask spread in basis points (bid/ask = last -/+ half of it).
        fractionable: per-symbol override of `default_fractionable`.
        shortable: per-symbol override of `default_shortable`.
        default_fractionable: whether symbols trade in fractional shares unless overridden.
        default_shortable: whether symbols may be sold short unless overridden.
        dividends: cash dividends of the history (none known when absent), for the venue replaying it.
    """

    def __init__(
        self,
        daily: Mapping[str, BarSeries],
        calendar: MarketCalendar,
        *,
        intraday: Mapping[str, Sequence[Bar]] | None = None,
        intraday_intervals: Mapping[str, timedelta] | None = None,
        spread_bps: float = 5.0,
        fractionable: Mapping[str, bool] | None = None,
        shortable: Mapping[str, bool] | None = None,
        default_fractionable: bool = True,
        default_shortable: bool = False,
        dividends: DividendSchedule | None = None,
    ) -> None:
        if spread_bps < 0:
            raise ValueError(f"spread_bps must be >= 0, got {spread_bps}")
        self.calendar = calendar
        self._daily = dict(daily)
        self._intraday: dict[str, list[Bar]] = {}
        self._ats: dict[str, list[datetime]] = {}
        self._intervals: dict[str, timedelta] = {}
        for symbol, bars in (intraday or {}).items():
            ordered = sorted(bars, key=lambda b: _aware(b.at, f"{symbol} bar time"))
            self._intraday[symbol] = ordered
            self._ats[symbol] = [b.at for b in ordered]
            given = (intraday_intervals or {}).get(symbol)
            self._intervals[symbol] = given or self._infer_interval(self._ats[symbol])
        self._half_spread = spread_bps * _BPS / 2
        self._fractionable = dict(fractionable or {})
        self._shortable = dict(shortable or {})
        self._default_fractionable = default_fractionable
        self._default_shortable = default_shortable
        self.dividends = dividends or DividendSchedule()

    @staticmethod
    def _infer_interval(ats: list[datetime]) -> timedelta:
        gaps = np.diff(np.array([a.timestamp() for a in ats]))
        gaps = gaps[gaps > 0]
        if len(gaps) == 0:
            return timedelta(minutes=1)
        values, counts = np.unique(gaps, return_counts=True)
        return timedelta(seconds=float(values[np.argmax(counts)]))

    @property
    def symbols(self) -> list[str]:
        """Every symbol with daily or intraday data, sorted."""
        return sorted(set(self._daily) | set(self._intraday))

    def series(self, symbol: str) -> BarSeries | None:
        """All daily bars of `symbol`, future included: for drivers and tests, never for decisions."""
        return self._daily.get(symbol)

    def intraday(self, symbol: str) -> list[Bar]:
        """All intraday bars of `symbol`, future included: for drivers and tests, never for decisions."""
        return list(self._intraday.get(symbol, ()))

    async def assets(self) -> list[Asset]:
        """One asset per symbol; indexes such as VIX are listed but not tradable."""
        out = []
        for s in self.symbols:
            if s in INDEX_SYMBOLS:
                out.append(Asset(s, exchange="INDEX", tradable=False, fractionable=False, asset_class="index"))
                continue
            out.append(
                Asset(
                    s,
                    exchange="ARCA" if s in ETF_SYMBOLS else _DEFAULT_EXCHANGE,
                    shortable=self._shortable.get(s, self._default_shortable),
                    fractionable=self._fractionable.get(s, self._default_fractionable),
                )
            )
        return out

    async def daily_bars(self, symbols: Sequence[str], *, as_of: datetime, lookback: int) -> dict[str, BarSeries]:
        """Up to `lookback` bars per symbol whose session closed at or before `as_of`; symbols without any left out."""
        if lookback < 1:
            raise ValueError(f"lookback must be >= 1, got {lookback}")
        last_day = self.calendar.previous_session(_aware(as_of, "as_of"))
        out: dict[str, BarSeries] = {}
        for symbol in symbols:
            full = self._daily.get(symbol)
            if full is None:
                continue
            j = bisect.bisect_right(full.days, last_day)
            if j > 0:
                out[symbol] = full.slice(max(0, j - lookback), j)
        return out

    async def minute_bars(self, symbols: Sequence[str], *, start: datetime, end: datetime) -> dict[str, list[Bar]]:
        """Intraday bars with `start <= at` that are complete by `end` (`at + bar length <= end`).

        The bars have the length of the loaded data (1 or 5 minutes for the shared data sets).
        """
        _aware(start, "start")
        _aware(end, "end")
        out: dict[str, list[Bar]] = {}
        for symbol in symbols:
            ats = self._ats.get(symbol)
            if not ats:
                continue
            i = bisect.bisect_left(ats, start)
            j = bisect.bisect_right(ats, end - self._intervals[symbol])
            if j > i:
                out[symbol] = self._intraday[symbol][i:j]
        return out

    async def latest_quotes(self, symbols: Sequence[str], *, as_of: datetime) -> dict[str, Quote]:
        """The price known at `as_of`: the day's open while its session is open, else the last close.

        During a session the quote is stamped `as_of` (the open stands for the current price all day);
        otherwise it is stamped with the close it comes from.
        """
        as_of = _aware(as_of, "as_of")
        closed = self.calendar.previous_session(as_of)
        today = self.calendar.next_session(closed) if self.calendar.is_open(as_of) else None
        out: dict[str, Quote] = {}
        for symbol in symbols:
            full = self._daily.get(symbol)
            if full is None:
                continue
            i = full.index_of(today) if today is not None else None
            if i is not None:
                out[symbol] = self._quote(symbol, float(full.open[i]), as_of.astimezone(UTC))
                continue
            j = bisect.bisect_right(full.days, closed) - 1
            if j >= 0:
                out[symbol] = self._quote(symbol, float(full.close[j]), self._close_time(full.days[j], closed))
        return out

    def _close_time(self, day: date, fallback: date) -> datetime:
        try:
            return self.calendar.session_close(day)
        except ValueError:
            return self.calendar.session_close(fallback)

    def _quote(self, symbol: str, last: float, at: datetime) -> Quote:
        half = 0.0 if symbol in INDEX_SYMBOLS else last * self._half_spread
        return Quote(symbol, bid=last - half, ask=last + half, last=last, at=at)

    def opens_on(self, day: date, symbols: Sequence[str] | None = None) -> dict[str, Decimal]:
        """Opening prices of `day` as Decimals (for `InMemoryBroker.on_session_open`); symbols without a bar omitted."""
        return {s: v[0] for s, v in self.ohlc_on(day, symbols).items()}

    def ohlc_on(self, day: date, symbols: Sequence[str] | None = None) -> dict[str, OHLC]:
        """(open, high, low, close) of `day` as Decimals (for `InMemoryBroker.on_session_close`)."""
        out: dict[str, OHLC] = {}
        for s in self._daily if symbols is None else symbols:
            full = self._daily.get(s)
            i = full.index_of(day) if full is not None else None
            if full is not None and i is not None:
                out[s] = (price(full.open[i]), price(full.high[i]), price(full.low[i]), price(full.close[i]))
        return out


class ReplayMarketData(DailyBarMarketData):
    """Market data replayed from every CSV in some directories.

    Daily rows dated on days the calendar says were not sessions are skipped and reported. Files with an
    `Adj Close` column give their symbols' cash dividends (`dividends`).

    Args:
        dirs: directories (or single files) of CSV bars, in priority order.
        calendar: the exchange calendar.
        strict: raise on a CSV that is not bar data (else list it in `load_report.rejected`).
        **options: any keyword option of `DailyBarMarketData`.
    """

    def __init__(
        self,
        dirs: Sequence[Path],
        calendar: MarketCalendar,
        *,
        strict: bool = True,
        **options: Any,
    ) -> None:
        loaded = load_bars(dirs, trading_days=calendar.sessions, strict=strict)
        self.load_report: LoadReport = loaded.report
        super().__init__(
            loaded.daily,
            calendar,
            intraday=loaded.intraday,
            intraday_intervals=loaded.intervals,
            dividends=loaded.dividends,
            **options,
        )


class SyntheticMarket(DailyBarMarketData):
    """A seeded synthetic market: N stocks plus SPY, VIX and the 11 sector SPDRs (see `synthetic_bars`).

    Same seed, size and dates give identical data.

    Args:
        seed: seed of the numpy Generator.
        n_symbols: number of stocks (symbols S0000, S0001, ...).
        start: first day (sessions from the calendar).
        end: last day.
        calendar: the exchange calendar.
        **options: any keyword option of `DailyBarMarketData`.
    """

    def __init__(
        self, seed: int, n_symbols: int, start: date, end: date, calendar: MarketCalendar, **options: Any
    ) -> None:
        days = calendar.sessions(start, end)
        self.data: SyntheticData = generate_market(seed, n_symbols, days)
        self.seed = seed
        super().__init__(self.data.series, calendar, **options)

    @property
    def stock_symbols(self) -> list[str]:
        """The synthetic stocks (benchmarks and sector ETFs excluded)."""
        return list(self.data.stocks)

    @property
    def sectors(self) -> dict[str, str]:
        """GICS-style sector of every stock and sector ETF."""
        return dict(self.data.sectors)

    @property
    def market_caps(self) -> dict[str, float]:
        """Market capitalisation of every stock at the first session's close (USD)."""
        return dict(self.data.market_caps)

    def regime(self, day: date) -> str:
        """The volatility regime of session `day`: "calm" or "stressed"."""
        i = self.data.series[BENCHMARK_SYMBOL].index_of(day)
        if i is None:
            raise ValueError(f"{day} is not a session of this synthetic market")
        return "stressed" if self.data.stressed[i] else "calm"

    def fundamentals(self, every: int = 21) -> InMemoryFundamentals:
        """Sector and market cap of every stock, one record every `every` sessions (cap = shares x close)."""
        return InMemoryFundamentals(self.data.fundamentals_records(every))


def daily_from_intraday(symbol: str, bars: Sequence[Bar], calendar: MarketCalendar) -> BarSeries | None:
    """Daily bars of `symbol` aggregated from its intraday bars inside regular sessions (pre- and after-market
    bars are left out): open of the first bar, high and low of the session, close of the last, summed volume.
    None when no bar falls inside a session."""
    days: dict[date, list[Bar]] = {}
    for b in sorted(bars, key=lambda b: b.at):
        day = calendar.next_session(calendar.previous_session(b.at))
        if calendar.session_open(day) <= b.at < calendar.session_close(day):
            days.setdefault(day, []).append(b)
    rows = [(d, bs[0].open, max(b.high for b in bs), min(b.low for b in bs), bs[-1].close, sum(b.volume for b in bs))
            for d, bs in sorted(days.items())]
    return BarSeries.from_rows(symbol, rows) if rows else None
