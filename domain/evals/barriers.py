"""Triple-barrier labels (López de Prado, *Advances in Financial Machine Learning*, 2018, ch. 3).

A long trade is entered at the open of the session after the snapshot. Three barriers close it: the stop below
the entry, the take-profit above it, and a time limit in sessions. The label says which barrier was touched
first: +1 take-profit, -1 stop, 0 time limit (the realised return is kept in every case).

Daily bars cannot say which of the stop and the take-profit a session touched first; when one session touches
both, the stop is taken (the conservative reading). A session that opens beyond a barrier fills at its open
(a gap through the stop loses more than the stop distance; a gap over the take-profit gains more).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from domain.models.market import FloatArray

Barrier = Literal["take_profit", "stop", "time"]
LABELS: dict[Barrier, int] = {"take_profit": 1, "stop": -1, "time": 0}


@dataclass(frozen=True, slots=True)
class Barriers:
    """The three barriers of a long trade.

    Attributes:
        stop_pct: stop distance below the entry price, as a fraction (0.05 = 5%).
        take_profit_pct: take-profit distance above the entry price, or None for no take-profit.
        max_sessions: time limit: the trade is closed at the close of this session after the entry (1 = the
            entry session itself).
    """

    stop_pct: float
    take_profit_pct: float | None
    max_sessions: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.stop_pct) and 0 < self.stop_pct < 1):
            raise ValueError(f"stop_pct must be in (0, 1), got {self.stop_pct!r}")
        tp = self.take_profit_pct
        if tp is not None and not (math.isfinite(tp) and tp > 0):
            raise ValueError(f"take_profit_pct must be positive or None, got {tp!r}")
        if self.max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {self.max_sessions}")


@dataclass(frozen=True, slots=True)
class ForwardPath:
    """Daily bars from the entry session on (index 0 = the session after the snapshot), oldest first."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray

    def __post_init__(self) -> None:
        n = len(self.open)
        if not (len(self.high) == len(self.low) == len(self.close) == n):
            raise ValueError("open, high, low and close must have the same length")

    def __len__(self) -> int:
        return len(self.open)

    @classmethod
    def of(cls, open_: Sequence[float], high: Sequence[float], low: Sequence[float],
           close: Sequence[float]) -> ForwardPath:
        """A path from plain sequences."""
        return cls(*(np.asarray(v, dtype=np.float64) for v in (open_, high, low, close)))


@dataclass(frozen=True, slots=True)
class BarrierLabel:
    """How a triple-barrier trade ended.

    Attributes:
        label: +1 take-profit, -1 stop, 0 time limit.
        barrier: the barrier that closed the trade.
        entry_price: the open of the entry session.
        exit_price: the stop or take-profit level, the open when a session gapped through it, or the close at
            the time limit.
        realised_return: exit_price / entry_price - 1 (before costs).
        exit_session: the session that closed the trade, counted from 1 = the entry session.
    """

    label: int
    barrier: Barrier
    entry_price: float
    exit_price: float
    realised_return: float
    exit_session: int

    @property
    def win(self) -> bool:
        """The trade made money (before costs)."""
        return self.realised_return > 0


def _exit(barrier: Barrier, entry: float, price: float, session: int) -> BarrierLabel:
    return BarrierLabel(LABELS[barrier], barrier, entry, price, price / entry - 1.0, session)


def triple_barrier(path: ForwardPath, barriers: Barriers) -> BarrierLabel:
    """Label a long trade entered at `path.open[0]`.

    Args:
        path: at least `barriers.max_sessions` sessions from the entry session on.
        barriers: the stop, take-profit and time limit.

    Raises:
        ValueError: the path is shorter than the time limit or the entry price is not positive.
    """
    if len(path) < barriers.max_sessions:
        raise ValueError(f"need {barriers.max_sessions} sessions after the snapshot, got {len(path)}")
    entry = float(path.open[0])
    if not (math.isfinite(entry) and entry > 0):
        raise ValueError(f"entry price must be positive, got {entry!r}")
    stop = entry * (1.0 - barriers.stop_pct)
    tp = None if barriers.take_profit_pct is None else entry * (1.0 + barriers.take_profit_pct)
    for t in range(barriers.max_sessions):
        o, h, lo = float(path.open[t]), float(path.high[t]), float(path.low[t])
        if o <= stop:
            return _exit("stop", entry, o, t + 1)
        if tp is not None and o >= tp:
            return _exit("take_profit", entry, o, t + 1)
        if lo <= stop:
            return _exit("stop", entry, stop, t + 1)
        if tp is not None and h >= tp:
            return _exit("take_profit", entry, tp, t + 1)
    last = barriers.max_sessions - 1
    return _exit("time", entry, float(path.close[last]), barriers.max_sessions)


def excursions(path: ForwardPath, sessions: int) -> tuple[float, float]:
    """Maximum adverse and favourable excursions over the first `sessions` sessions, relative to the entry open:
    (min low / entry - 1, max high / entry - 1)."""
    n = min(sessions, len(path))
    if n < 1:
        raise ValueError("need at least one session")
    entry = float(path.open[0])
    return float(np.min(path.low[:n]) / entry - 1.0), float(np.max(path.high[:n]) / entry - 1.0)
