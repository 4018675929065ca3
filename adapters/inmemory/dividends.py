"""Cash dividends of replayed history: read from a dividends column, or derived from an adjusted close.

A `Dividends` column (yfinance's) gives the cash dividend per share on each ex-date and 0 on the other days.

Yahoo's `Adj Close` is the close adjusted for splits and dividends; its `Close` only for splits. Their ratio
r = adj / close steps up on every ex-date t (older closes are multiplied by 1 - D / close[t-1]), so the cash
dividend per share is

    D = close[t-1] * (1 - r[t-1] / r[t]).

`Adj Close` is rounded to 6 decimals, so r moves a little between dividends: a step smaller than
`DIVIDEND_NOISE` (relative) is that rounding, not a dividend. In the shipped market context
(data/daily/context, 2012-2018) the largest such step is 1.1e-6 and the smallest dividend 2.3e-3. A step down
(r falling) is not a dividend either and is ignored.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date
from decimal import Decimal

import numpy as np
import numpy.typing as npt

DIVIDEND_NOISE = 1e-5
"""Relative step of adj/close below which it is rounding noise (0.1 basis point of the price)."""
PER_SHARE_PLACES = Decimal("0.0001")
"""Dividends per share are kept to a hundredth of a cent."""


def dividends_from_adjusted(days: Sequence[date], close: npt.NDArray[np.float64],
                            adjusted: npt.NDArray[np.float64]) -> dict[date, Decimal]:
    """Cash dividend per share by ex-date, from split-adjusted closes and their dividend-adjusted counterpart.

    Args:
        days: session of each bar, oldest first.
        close: the closes (split-adjusted).
        adjusted: the adjusted closes of the same bars (no NaN).
    """
    ratio = adjusted / close
    step = 1.0 - ratio[:-1] / ratio[1:]
    out: dict[date, Decimal] = {}
    for i in np.flatnonzero(step > DIVIDEND_NOISE):
        per_share = Decimal(f"{float(close[i] * step[i]):.6f}").quantize(PER_SHARE_PLACES)
        if per_share > 0:
            out[days[int(i) + 1]] = per_share
    return out


def dividends_from_column(days: Sequence[date], amounts: npt.NDArray[np.float64]) -> dict[date, Decimal]:
    """Cash dividend per share by ex-date, from a dividends column (0 on days without one; no NaN)."""
    out: dict[date, Decimal] = {}
    for i in np.flatnonzero(amounts > 0):
        per_share = Decimal(f"{float(amounts[i]):.6f}").quantize(PER_SHARE_PLACES)
        if per_share > 0:
            out[days[int(i)]] = per_share
    return out


class DividendSchedule:
    """Cash dividends per share by ex-date of the symbols whose data says what they paid.

    Args:
        per_share: symbol -> ex-date -> cash dividend per share (symbols that paid nothing may be left out).
        known: symbols with dividend information (every symbol of `per_share`, and those known to pay nothing).
    """

    def __init__(self, per_share: Mapping[str, Mapping[date, Decimal]] | None = None,
                 known: Collection[str] = ()) -> None:
        self._per_share = {s: dict(sorted(d.items())) for s, d in (per_share or {}).items() if d}
        self.known = frozenset(known) | frozenset(self._per_share)
        self._by_day: dict[date, dict[str, Decimal]] = {}
        for symbol in sorted(self._per_share):
            for day, amount in self._per_share[symbol].items():
                self._by_day.setdefault(day, {})[symbol] = amount

    def of(self, symbol: str) -> dict[date, Decimal]:
        """Dividends of `symbol` by ex-date (empty when it paid none or is unknown)."""
        return dict(self._per_share.get(symbol, {}))

    def on(self, day: date) -> dict[str, Decimal]:
        """Dividend per share of every symbol going ex on `day`, by symbol."""
        return dict(self._by_day.get(day, {}))

    def only(self, symbols: Collection[str]) -> DividendSchedule:
        """The schedule of `symbols` alone."""
        keep = set(symbols)
        return DividendSchedule({s: d for s, d in self._per_share.items() if s in keep}, self.known & keep)

    def __len__(self) -> int:
        return sum(len(d) for d in self._per_share.values())
