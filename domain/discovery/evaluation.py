"""How discovery's suggestions did: per-horizon picker performance, trade returns and the paper-trade A/B
report (actual trades against hypothetical trades from the suggestions, with Welch's t-test).

These are the values the discovery use case reports; `application.discovery.performance` and
`application.discovery.ab_tracker` compute them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class HorizonPerformance:
    """One picker at one horizon.

    Attributes:
        horizon: trading days.
        n: suggestions with both returns known.
        hit_rate: share with a positive excess return (None when n is 0).
        avg_return: mean forward return.
        avg_universe_return: mean equal-weighted universe return over the same windows.
        avg_excess: mean of forward minus universe return.
    """

    horizon: int
    n: int
    hit_rate: float | None
    avg_return: float | None
    avg_universe_return: float | None
    avg_excess: float | None


@dataclass(frozen=True)
class TradeReturn:
    """One trade, real or hypothetical, as a price return."""

    symbol: str
    entry_at: datetime
    exit_at: datetime
    entry_price: float
    exit_price: float

    @property
    def ret(self) -> float:
        """exit / entry - 1."""
        return self.exit_price / self.entry_price - 1.0


@dataclass(frozen=True)
class WelchTest:
    """Welch's two-sample t-test: statistic, Welch-Satterthwaite degrees of freedom, two-sided p-value."""

    t: float
    df: float
    p_value: float


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    m = math.fsum(values) / len(values)
    return m, math.fsum((v - m) ** 2 for v in values) / (len(values) - 1)


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> WelchTest | None:
    """Welch's t-test of mean(a) - mean(b); None with fewer than two values in a group or zero variance in both."""
    if len(a) < 2 or len(b) < 2:
        return None
    (ma, va), (mb, vb) = _mean_var(a), _mean_var(b)
    qa, qb = va / len(a), vb / len(b)
    if qa + qb <= 0:
        return None
    from scipy.special import stdtr  # Student's t CDF; imported here, where it is needed (scipy is slow to load)

    t = (ma - mb) / math.sqrt(qa + qb)
    df = (qa + qb) ** 2 / (qa**2 / (len(a) - 1) + qb**2 / (len(b) - 1))
    return WelchTest(t, df, float(2.0 * stdtr(df, -abs(t))))


@dataclass(frozen=True)
class ABReport:
    """Actual trades (A) against hypothetical trades from suggestions (B).

    Attributes:
        picker: whose suggestions the hypothetical trades follow.
        horizon: trading days a hypothetical trade is held.
        actual: trades taken on suggested symbols.
        hypothetical: one trade per suggestion whose exit has closed.
    """

    picker: str
    horizon: int
    actual: list[TradeReturn]
    hypothetical: list[TradeReturn]

    @property
    def mean_actual(self) -> float | None:
        """Mean return of the trades taken."""
        return math.fsum(t.ret for t in self.actual) / len(self.actual) if self.actual else None

    @property
    def mean_hypothetical(self) -> float | None:
        """Mean return of the hypothetical trades."""
        return math.fsum(t.ret for t in self.hypothetical) / len(self.hypothetical) if self.hypothetical else None

    @property
    def difference(self) -> float | None:
        """mean_actual - mean_hypothetical."""
        a, b = self.mean_actual, self.mean_hypothetical
        return None if a is None or b is None else a - b

    @property
    def test(self) -> WelchTest | None:
        """Welch's t-test of the difference."""
        return welch_t_test([t.ret for t in self.actual], [t.ret for t in self.hypothetical])
