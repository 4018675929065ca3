"""What every symbol picker consumes and returns.

A picker scores the whole universe at once: `UniverseSnapshot` holds the bars of every
candidate as aligned NumPy matrices (one row per symbol, one column per trading day of the
benchmark), so filters and scores are vectorised over symbols, and `evaluate` returns them as arrays
(`domain.discovery.picker_scores.PickerScores`); `PickerResult`s with their reasons are built only for
the symbols that are reported. `PickerContext` carries what
the application knows besides market data: the portfolio's and watchlist's sector mix and the
similar past trades recalled from vector memory as of the run.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from domain.agents.schemas import MemoryEvidence
from domain.discovery.beta import daily_returns
from domain.discovery.config import DiscoverySettings
from domain.models.market import BarSeries, FloatArray, Quote
from domain.ports.market_data import FundamentalsRecord

if TYPE_CHECKING:
    from domain.discovery.picker_scores import PickerScores


@dataclass(frozen=True)
class PickerResult:
    """One picker's verdict on one symbol.

    Attributes:
        picker: name of the picker ("metric", "fuzzy", "llm").
        symbol: ticker.
        score: 0..1, higher is a better candidate; 0 for a symbol rejected by a hard filter.
        passed: False when a hard filter rejected the symbol.
        reasons: human-readable explanation, each rejection stating the number and the threshold.
        details: the raw measures behind the score (NaN where unknown).
    """

    picker: str
    symbol: str
    score: float
    passed: bool
    reasons: tuple[str, ...]
    details: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"{self.picker}/{self.symbol}: score must be within 0..1, got {self.score}")


@dataclass(frozen=True, eq=False)
class UniverseSnapshot:
    """The candidate universe as aligned matrices, shared by all pickers.

    Arrays are not copied; treat them as read-only.

    Attributes:
        as_of: the session date of the newest column; no data after it is included.
        symbols: one per row, unique.
        close: (n_symbols, n_days) closes, oldest first, NaN where a symbol has no bar that day.
        volume: (n_symbols, n_days) share volumes, NaN where missing.
        spread_pct: (n_symbols,) bid-ask spread as a fraction of mid, NaN when unknown.
        sectors: (n_symbols,) sector names, None when unknown.
        market_caps: (n_symbols,) market capitalisation in USD, NaN when unknown.
        benchmark_close: (n_days,) benchmark (SPY) closes on the same days.
    """

    as_of: date
    symbols: tuple[str, ...]
    close: FloatArray
    volume: FloatArray
    spread_pct: FloatArray
    sectors: tuple[str | None, ...]
    market_caps: FloatArray
    benchmark_close: FloatArray

    def __post_init__(self) -> None:
        for name in ("close", "volume", "spread_pct", "market_caps", "benchmark_close"):
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.dtype != np.float64:
                object.__setattr__(self, name, np.asarray(value, dtype=np.float64))
        n = len(self.symbols)
        if self.close.ndim != 2 or self.close.shape[0] != n:
            raise ValueError(f"close must have shape ({n}, n_days), got {self.close.shape}")
        if self.volume.shape != self.close.shape:
            raise ValueError(f"volume shape {self.volume.shape} differs from close shape {self.close.shape}")
        for name in ("spread_pct", "market_caps"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {getattr(self, name).shape}")
        if len(self.sectors) != n:
            raise ValueError(f"sectors has {len(self.sectors)} entries for {n} symbols")
        if self.benchmark_close.shape != (self.close.shape[1],):
            raise ValueError(f"benchmark_close must have shape ({self.close.shape[1]},)")
        if len(set(self.symbols)) != n:
            raise ValueError("symbols must be unique")

    @property
    def n_symbols(self) -> int:
        """Number of rows."""
        return len(self.symbols)

    @property
    def n_days(self) -> int:
        """Number of trading days (columns)."""
        return int(self.close.shape[1])

    @cached_property
    def returns(self) -> FloatArray:
        """(n_symbols, n_days - 1) simple daily returns, computed once and shared by the pickers."""
        return daily_returns(self.close)

    @cached_property
    def benchmark_returns(self) -> FloatArray:
        """(n_days - 1,) simple daily returns of the benchmark."""
        return daily_returns(self.benchmark_close)

    @classmethod
    def from_series(
        cls,
        as_of: date,
        bars: Mapping[str, BarSeries],
        benchmark: BarSeries,
        quotes: Mapping[str, Quote],
        fundamentals: Mapping[str, FundamentalsRecord],
    ) -> UniverseSnapshot:
        """Align per-symbol bars on the benchmark's trading days up to `as_of`.

        Bars on days the benchmark did not trade are dropped; days a symbol did not trade are
        NaN. Symbols are sorted. A quote with an empty book gives an unknown (NaN) spread, and
        a fundamentals record dated after `as_of` is ignored (no look-ahead).

        Args:
            as_of: newest session date to include.
            bars: daily bars per candidate symbol.
            benchmark: daily bars of the benchmark (SPY); its days define the columns.
            quotes: latest quote per symbol (missing: unknown spread).
            fundamentals: sector and market cap per symbol (missing: unknown).

        Returns:
            The snapshot.
        """
        bench = benchmark.upto(as_of)
        days = bench.days
        n_days = len(days)
        symbols = tuple(sorted(bars))
        close = np.full((len(symbols), n_days), np.nan)
        volume = np.full((len(symbols), n_days), np.nan)
        ordinals = np.fromiter((d.toordinal() for d in days), dtype=np.int64, count=n_days)
        for row, symbol in enumerate(symbols):
            series = bars[symbol]
            k = bisect.bisect_right(series.days, as_of)
            if k == 0 or n_days == 0:
                continue
            if k <= n_days and series.days[:k] == days[n_days - k :]:
                close[row, n_days - k :] = series.close[:k]
                volume[row, n_days - k :] = series.volume[:k]
                continue
            own = np.fromiter((d.toordinal() for d in series.days[:k]), dtype=np.int64, count=k)
            pos = np.minimum(np.searchsorted(ordinals, own), n_days - 1)
            hit = ordinals[pos] == own
            close[row, pos[hit]] = series.close[:k][hit]
            volume[row, pos[hit]] = series.volume[:k][hit]
        spread = np.array([_spread(quotes.get(s)) for s in symbols], dtype=np.float64)
        records = [_record_as_of(fundamentals.get(s), as_of) for s in symbols]
        caps = np.array(
            [math.nan if r is None or r.market_cap is None else float(r.market_cap) for r in records],
            dtype=np.float64,
        )
        sectors = tuple(None if r is None else r.sector for r in records)
        return cls(as_of, symbols, close, volume, spread, sectors, caps, np.asarray(bench.close, dtype=np.float64))


def _spread(quote: Quote | None) -> float:
    if quote is None:
        return math.nan
    spread = quote.spread_pct
    return spread if math.isfinite(spread) and spread >= 0 else math.nan


def _record_as_of(record: FundamentalsRecord | None, as_of: date) -> FundamentalsRecord | None:
    return None if record is None or record.as_of > as_of else record


@dataclass(frozen=True)
class PickerContext:
    """What the application knows besides market data, as of the discovery run.

    Attributes:
        held_sectors: sector -> share of portfolio value (0..1).
        watchlist_sectors: sector -> number of watchlist symbols in it.
        similar_trades: symbol -> similar past trades recalled from vector memory as of the run
            (outcomes not yet known at that time must already be hidden).
        settings: discovery settings.
    """

    held_sectors: Mapping[str, float] = field(default_factory=dict)
    watchlist_sectors: Mapping[str, int] = field(default_factory=dict)
    similar_trades: Mapping[str, Sequence[MemoryEvidence]] = field(default_factory=dict)
    settings: DiscoverySettings = field(default_factory=DiscoverySettings)


@runtime_checkable
class SymbolPicker(Protocol):
    """Scores every symbol of a universe; pure and synchronous."""

    name: str

    def evaluate(self, universe: UniverseSnapshot, context: PickerContext) -> PickerScores:
        """Scores and pass flags of every symbol as arrays; results with reasons are built on demand from them."""
        ...

    def pick(self, universe: UniverseSnapshot, context: PickerContext) -> list[PickerResult]:
        """One result per symbol of `universe`, in its order, rejected ones included with `passed=False`."""
        ...
