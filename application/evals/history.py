"""The bars a dataset build may use: every stock's history up to the build's last session, read once.

The full history decides which (symbol, session) pairs can be scenarios (enough bars before, the whole time
limit after) and labels them; what an agent sees is read again through the port at the snapshot time
(`application.evals.snapshot`), never from here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from domain.errors import DataError
from domain.evals.rows import ForwardBars
from domain.features import MIN_BARS
from domain.models.market import BarSeries
from domain.ports.clock import MarketCalendar
from domain.ports.market_data import MarketData

ALL_BARS = 1_000_000
FORWARD_DECIMALS = 2


@dataclass(frozen=True)
class History:
    """Every stock's bars up to `end`, and the exchange sessions they span.

    Attributes:
        bars: full daily bars per stock symbol (future of any snapshot included: for sampling and labels only).
        sessions: the exchange sessions from the first bar to `end`.
        end: the last session whose bars were read.
    """

    bars: dict[str, BarSeries]
    sessions: tuple[date, ...]
    end: date
    _index: dict[date, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {d: i for i, d in enumerate(self.sessions)})

    @property
    def symbols(self) -> list[str]:
        """The stock symbols, sorted."""
        return sorted(self.bars)

    def session_number(self, day: date) -> int:
        """Position of `day` among the sessions."""
        return self._index[day]

    def scenario_index(self, symbol: str, day: date, horizon: int) -> int | None:
        """The bar index of `day` for `symbol` when it can be a scenario: at least `MIN_BARS` bars up to it and
        the `horizon` sessions after it all present (no missing session); else None."""
        series = self.bars.get(symbol)
        if series is None:
            return None
        i = series.index_of(day)
        if i is None or i + 1 < MIN_BARS or i + horizon >= len(series):
            return None
        if self.session_number(series.days[i + horizon]) - self.session_number(day) != horizon:
            return None
        return i

    def forward(self, symbol: str, i: int, horizon: int) -> ForwardBars:
        """The `horizon` bars after bar `i`, scaled so the close of bar `i` is 100."""
        s = self.bars[symbol]
        scale = 100.0 / float(s.close[i])

        def part(a: np.ndarray) -> tuple[float, ...]:
            return tuple(round(float(x) * scale, FORWARD_DECIMALS) for x in a[i + 1: i + 1 + horizon])

        return ForwardBars(open=part(s.open), high=part(s.high), low=part(s.low), close=part(s.close))

    def fingerprint(self) -> str:
        """SHA-256 of every bar (symbol, days and OHLCV), so a manifest names the exact data it was built from."""
        h = hashlib.sha256()
        for symbol in self.symbols:
            s = self.bars[symbol]
            h.update(symbol.encode())
            h.update(",".join(d.isoformat() for d in s.days).encode())
            for a in (s.open, s.high, s.low, s.close, s.volume):
                h.update(np.ascontiguousarray(a, dtype="<f8").tobytes())
        return h.hexdigest()


async def load_history(market: MarketData, calendar: MarketCalendar, *, end: date,
                       exclude: Collection[str]) -> History:
    """Read every tradable stock's bars whose session closed by `end` (symbols in `exclude` left out).

    Raises:
        DataError: no stock has any bar.
    """
    last = calendar.sessions(end - timedelta(days=10), end)
    if not last:
        raise DataError(f"no session on or before {end}")
    skip = set(exclude)
    symbols = sorted(a.symbol for a in await market.assets()
                     if a.tradable and a.asset_class == "us_equity" and a.symbol not in skip)
    bars = await market.daily_bars(symbols, as_of=calendar.session_close(last[-1]), lookback=ALL_BARS)
    bars = {s: b for s, b in bars.items() if len(b)}
    if not bars:
        raise DataError("the market data has no stock bars")
    first = min(b.days[0] for b in bars.values())
    return History(bars, tuple(calendar.sessions(first, last[-1])), last[-1])
