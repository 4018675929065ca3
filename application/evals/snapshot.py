"""Point-in-time snapshots: what an agent would have known at the close of a session, read through the port.

Every read passes `as_of` = the close of the snapshot session, so the `MarketData` port returns no later bar
(the port's contract); the features and market conditions are then computed exactly as the trading cycle
computes them (`domain.features.compute_features`, `MarketConditionService.current`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from application.market_conditions import MarketConditionService
from domain.agents.schemas import MarketConditions, SymbolFeatures
from domain.features import compute_features
from domain.ports.clock import MarketCalendar
from domain.ports.market_data import MarketData

FEATURE_LOOKBACK = 120
"""Sessions of history read per symbol (the features use the last 61)."""


@dataclass(frozen=True)
class Snapshot:
    """One symbol at the close of one session.

    Attributes:
        symbol: the real ticker.
        day: the snapshot session.
        as_of: the close of that session (every read was made as of it).
        features: the symbol's features from bars up to `day`.
        conditions: the market conditions from bars up to `day`.
    """

    symbol: str
    day: date
    as_of: datetime
    features: SymbolFeatures
    conditions: MarketConditions


class Snapshots:
    """Takes point-in-time snapshots; market conditions are computed once per session.

    Args:
        market: the market data port.
        calendar: the exchange calendar (session closes).
        lookback: sessions of history read per symbol.
    """

    def __init__(self, market: MarketData, calendar: MarketCalendar, *, lookback: int = FEATURE_LOOKBACK) -> None:
        self._market = market
        self._calendar = calendar
        self._conditions = MarketConditionService(market, scope="evals")
        self._lookback = lookback
        self._by_day: dict[date, MarketConditions | None] = {}

    async def conditions(self, day: date) -> MarketConditions | None:
        """Market conditions at the close of `day` (None without enough SPY history)."""
        if day not in self._by_day:
            self._by_day[day] = await self._conditions.current(self._calendar.session_close(day))
        return self._by_day[day]

    async def take(self, symbol: str, day: date) -> Snapshot | None:
        """`symbol` at the close of `day`, or None when it has no bar that day, too little history, or the market
        conditions are unknown.

        Raises:
            ValueError: `day` is not a session.
        """
        as_of = self._calendar.session_close(day)
        bars = (await self._market.daily_bars([symbol], as_of=as_of, lookback=self._lookback)).get(symbol)
        if bars is None or not len(bars) or bars.days[-1] != day:
            return None
        features = compute_features(bars)
        conditions = await self.conditions(day)
        if features is None or conditions is None:
            return None
        return Snapshot(symbol, day, as_of, features, conditions)
