"""Market data: assets, quotes and bar series.

Prices in bar series are floats for analysis; anything that reaches an order
goes through `domain.money.price()` first.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Asset:
    """A tradable instrument as the broker describes it."""

    symbol: str
    exchange: str = "NASDAQ"
    tradable: bool = True
    shortable: bool = False
    fractionable: bool = True
    status: str = "active"
    asset_class: str = "us_equity"
    name: str = ""


@dataclass(frozen=True, slots=True)
class Quote:
    """Best bid and ask (and last trade) at a moment."""

    symbol: str
    bid: float
    ask: float
    last: float
    at: datetime

    @property
    def mid(self) -> float:
        """Mid price, or the last trade when the book is empty."""
        if self.bid > 0 and self.ask > 0:
            return (self.bid + self.ask) / 2
        return self.last

    @property
    def spread_pct(self) -> float:
        """Bid-ask spread as a fraction of the mid price (inf if unknown)."""
        mid = self.mid
        if self.bid <= 0 or self.ask <= 0 or mid <= 0:
            return float("inf")
        return (self.ask - self.bid) / mid


@dataclass(frozen=True, slots=True)
class BarSeries:
    """Daily (or intraday) OHLCV bars of one symbol, oldest first.

    `days` holds the session date of each bar; all arrays have the same length.
    """

    symbol: str
    days: tuple[date, ...]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __post_init__(self) -> None:
        n = len(self.days)
        for name in ("open", "high", "low", "close", "volume"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{self.symbol}: {name} has {len(getattr(self, name))} values, days has {n}")

    def __len__(self) -> int:
        return len(self.days)

    @property
    def last_close(self) -> float:
        """Close of the newest bar."""
        if not self.days:
            raise ValueError(f"{self.symbol}: no bars")
        return float(self.close[-1])

    def upto(self, day: date) -> BarSeries:
        """Bars on or before `day`."""
        i = bisect.bisect_right(self.days, day)
        return self.slice(0, i)

    def between(self, start: date, end: date) -> BarSeries:
        """Bars with `start <= day <= end`."""
        return self.slice(bisect.bisect_left(self.days, start), bisect.bisect_right(self.days, end))

    def slice(self, i: int, j: int) -> BarSeries:
        """Bars i..j-1."""
        return BarSeries(
            self.symbol,
            self.days[i:j],
            self.open[i:j],
            self.high[i:j],
            self.low[i:j],
            self.close[i:j],
            self.volume[i:j],
        )

    def index_of(self, day: date) -> int | None:
        """Position of the bar of `day`, or None."""
        i = bisect.bisect_left(self.days, day)
        if i < len(self.days) and self.days[i] == day:
            return i
        return None

    def returns(self) -> FloatArray:
        """Simple daily close-to-close returns (length n-1)."""
        c = self.close
        if len(c) < 2:
            return np.zeros(0)
        out: FloatArray = c[1:] / c[:-1] - 1.0
        return out

    @staticmethod
    def from_rows(symbol: str, rows: list[tuple[date, float, float, float, float, float]]) -> BarSeries:
        """Build from (day, open, high, low, close, volume) rows, sorting by day."""
        rows = sorted(rows, key=lambda r: r[0])
        arr = np.array([r[1:] for r in rows], dtype=np.float64).reshape(len(rows), 5)
        return BarSeries(
            symbol,
            tuple(r[0] for r in rows),
            arr[:, 0].copy(),
            arr[:, 1].copy(),
            arr[:, 2].copy(),
            arr[:, 3].copy(),
            arr[:, 4].copy(),
        )
