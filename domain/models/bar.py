"""A single (intraday) bar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar starting at `at` (timezone-aware)."""

    symbol: str
    at: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
