"""Daily time-weighted returns: deposits and withdrawals are not profit.

Convention (used everywhere in Quorum): `equity` holds end-of-day valuations
and a flow dated day t is already in E_t but earned nothing on day t -- money
arrives as cash after that day's market move. So the return of day t is

    r_t = (E_t - F_t) / E_{t-1} - 1

where F_t is the net flow (deposits positive, withdrawals negative) mapped to
day t. A flow dated between two valuation days (a weekend deposit) is mapped
to the next valuation day, the first one that can contain it. Flows dated on
or before the first valuation day are part of the starting equity; flows after
the last valuation day are outside the series. Both are ignored.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import numpy as np

from domain.analytics.ratios import FloatArray
from domain.money import ZERO

EquitySeries = Sequence[tuple[date, Decimal]]
FlowSeries = Sequence[tuple[date, Decimal]]


def check_ascending(equity: EquitySeries) -> None:
    """Raise ValueError unless the valuation days are strictly increasing."""
    for (d0, _), (d1, _) in itertools.pairwise(equity):
        if d1 <= d0:
            raise ValueError(f"equity days must be strictly increasing: {d1.isoformat()} after {d0.isoformat()}")


def daily_flows(equity: EquitySeries, flows: FlowSeries) -> list[Decimal]:
    """Net flow mapped to each valuation day (see the module convention); index 0 is always 0.

    Raises:
        ValueError: the valuation days are not strictly increasing.
    """
    check_ascending(equity)
    days = [d for d, _ in equity]
    mapped = [ZERO] * len(days)
    if not days:
        return mapped
    for day, amount in flows:
        if day <= days[0]:
            continue
        i = bisect.bisect_left(days, day)
        if i < len(days):
            mapped[i] += amount
    return mapped


def time_weighted_returns(equity: EquitySeries, flows: FlowSeries = ()) -> FloatArray:
    """Daily returns of an equity curve net of deposits and withdrawals.

    Args:
        equity: (day, end-of-day equity), days strictly increasing.
        flows: (day, net deposit) pairs; withdrawals negative. See the module docstring for
            the convention: a flow earns nothing on the day it is booked.

    Returns:
        len(equity) - 1 returns, the i-th being the return of day equity[i + 1]. A day whose
        previous equity is not positive (an account not yet funded) has return 0.

    Raises:
        ValueError: the valuation days are not strictly increasing.
    """
    mapped = daily_flows(equity, flows)
    out = np.zeros(max(len(equity) - 1, 0), dtype=np.float64)
    for i in range(1, len(equity)):
        prev = equity[i - 1][1]
        if prev > 0:
            out[i - 1] = float((equity[i][1] - mapped[i]) / prev) - 1.0
    return out
