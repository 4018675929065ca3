"""A rolling window of prices and the largest move inside it (the event monitor's detector).

The move is measured from the window's extreme to its latest price: up moves from the lowest price,
down moves from the highest, `(last - extreme) / extreme`, and the larger of the two in size wins.
A window of length L holds the points with `last.at - L <= at <= last.at` (both ends included).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

# Moves are compared to the threshold with this tolerance so that exactly 5% (in float) counts as 5%.
_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class PricePoint:
    """A price known at a moment."""

    at: datetime
    price: float


@dataclass(frozen=True, slots=True)
class Move:
    """The largest move in a window.

    Attributes:
        move: signed fraction, (last - extreme) / extreme (0.05 is +5%, -0.05 is -5%).
        last: the latest point (the end of the window).
        extreme: the lowest point (up move) or highest point (down move) it is measured from.
        start: the oldest point of the window.
    """

    move: float
    last: PricePoint
    extreme: PricePoint
    start: PricePoint


class PriceWindow:
    """Prices of one symbol over the last `length` of time.

    Args:
        length: how far back the window reaches from its newest point.
    """

    def __init__(self, length: timedelta = timedelta(minutes=15)) -> None:
        if length <= timedelta(0):
            raise ValueError(f"window length must be positive, got {length}")
        self.length = length
        self._points: deque[PricePoint] = deque()

    def __len__(self) -> int:
        return len(self._points)

    @property
    def points(self) -> list[PricePoint]:
        """The points, oldest first."""
        return list(self._points)

    @property
    def last(self) -> PricePoint | None:
        """The newest point."""
        return self._points[-1] if self._points else None

    def add(self, at: datetime, price: float) -> bool:
        """Add a price; points older than the window are dropped.

        Returns:
            False (and nothing changes) when `price` is not a positive finite number or `at` is not later
            than the newest point.
        """
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"price time must be timezone-aware, got naive {at!r}")
        if not (math.isfinite(price) and price > 0):
            return False
        if self._points and at <= self._points[-1].at:
            return False
        self._points.append(PricePoint(at, float(price)))
        self.prune(at)
        return True

    def prune(self, now: datetime) -> None:
        """Drop the points older than `now - length`."""
        cutoff = now - self.length
        while self._points and self._points[0].at < cutoff:
            self._points.popleft()

    def clear(self) -> None:
        """Forget every point."""
        self._points.clear()

    def move(self) -> Move | None:
        """The largest move from an extreme of the window to its latest price (None with fewer than 2 points)."""
        if len(self._points) < 2:
            return None
        last = self._points[-1]
        low = min(self._points, key=lambda p: p.price)
        high = max(self._points, key=lambda p: p.price)
        up = (last.price - low.price) / low.price
        down = (last.price - high.price) / high.price
        if up >= -down:
            return Move(up, last, low, self._points[0])
        return Move(down, last, high, self._points[0])

    def detect(self, threshold: float) -> Move | None:
        """The window's move when it is at least `threshold` in size (up or down), else None."""
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        m = self.move()
        return m if m is not None and abs(m.move) >= threshold - _EPS else None
