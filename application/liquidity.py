"""The one liquidity ranking: the stocks with the largest average dollar volume, as known at a time.

Used for the backtest's and the rehearsal's universe (as of the session before the start) and as the live
universe while discovery has not filled the watchlist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from datetime import date, datetime, timedelta

from domain.ports.clock import MarketCalendar
from domain.ports.market_data import MarketData
from domain.ports.uow import UnitOfWork

DOLLAR_VOLUME_SESSIONS = 20
"""Average dollar volume over this many sessions."""
MIN_HISTORY_SESSIONS = 60
"""A stock needs this many sessions of history to be ranked (recent listings are left out)."""

Universe = Callable[[UnitOfWork, datetime], Awaitable[list[str]]]


async def most_liquid(market: MarketData, *, as_of: datetime, n: int, exclude: Collection[str] = ()) -> list[str]:
    """The `n` tradable stocks with the largest average dollar volume over the last `DOLLAR_VOLUME_SESSIONS`
    sessions closed at `as_of`, among those with `MIN_HISTORY_SESSIONS` of history; ties by symbol.

    Args:
        market: the market data (bars known at `as_of` only).
        as_of: when the ranking is made.
        n: how many symbols.
        exclude: symbols never ranked (indices, ETFs, the market context).
    """
    skip = set(exclude)
    assets = [a.symbol for a in await market.assets() if a.tradable and a.symbol not in skip]
    bars = await market.daily_bars(assets, as_of=as_of, lookback=MIN_HISTORY_SESSIONS)
    ranked = sorted(((float((b.close[-DOLLAR_VOLUME_SESSIONS:] * b.volume[-DOLLAR_VOLUME_SESSIONS:]).mean()), s)
                     for s, b in bars.items() if len(b) >= MIN_HISTORY_SESSIONS), key=lambda t: (-t[0], t[1]))
    return [s for _, s in ranked[:n]]


def liquid_universe(market: MarketData, n: int, *, exclude: Collection[str] = ()) -> Universe:
    """A universe of the `n` most liquid stocks, ranked once per calendar day."""
    cache: dict[str, list[str]] = {}

    async def universe(_uow: UnitOfWork, as_of: datetime) -> list[str]:
        day = as_of.date().isoformat()
        if day not in cache:
            cache.clear()
            cache[day] = await most_liquid(market, as_of=as_of, n=n, exclude=exclude)
        return cache[day]

    return universe


def fixed_universe(symbols: Collection[str]) -> Universe:
    """Always these symbols."""
    fixed = sorted(set(symbols))

    async def universe(_uow: UnitOfWork, _as_of: datetime) -> list[str]:
        return list(fixed)

    return universe


async def most_liquid_before(market: MarketData, calendar: MarketCalendar, start: date, n: int, *,
                             exclude: Collection[str] = ()) -> list[str]:
    """The `n` most liquid stocks as of the close of the session before the first session on or after `start`
    (a simulation's universe, chosen without look-ahead)."""
    first = calendar.sessions(start, start + timedelta(days=10))[0]
    as_of = calendar.session_close(calendar.previous_session(calendar.session_open(first)))
    return await most_liquid(market, as_of=as_of, n=n, exclude=exclude)
