"""What a discovery run reads: the universe's market data as of the run, and the book (positions,
equity, watchlist) with its sector mix. Nothing dated after `as_of` is read."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from application.market_conditions import CONTEXT_SYMBOLS
from domain.discovery.llm_schema import HeldPosition, PortfolioSummary
from domain.discovery.picker import UniverseSnapshot
from domain.market_conditions import BENCHMARK
from domain.models.market import Asset, BarSeries
from domain.models.trading import Position
from domain.ports.clock import MarketCalendar
from domain.ports.discovery import WatchlistEntry
from domain.ports.market_data import Fundamentals, FundamentalsRecord, MarketData
from domain.ports.repositories import EquityPoint
from domain.ports.uow import UnitOfWork


@dataclass(frozen=True, eq=False)
class MarketInputs:
    """The universe as of a run.

    Attributes:
        day: the last session closed at or before the run (the snapshot's newest column).
        assets: tradable US equities by symbol (benchmark, VIX and sector ETFs excluded).
        bars: daily bars per universe symbol up to `day`.
        snapshot: the aligned matrices the pickers score.
        fundamentals: sector and market cap known on `day`, for the universe and the given extra symbols.
    """

    day: date
    assets: dict[str, Asset]
    bars: dict[str, BarSeries]
    snapshot: UniverseSnapshot
    fundamentals: dict[str, FundamentalsRecord]

    @property
    def priced(self) -> list[str]:
        """Universe symbols with a close on `day` (the equal-weighted benchmark universe)."""
        return [s for s, b in self.bars.items() if b.days and b.days[-1] == self.day and b.close[-1] > 0]

    def last_close(self, symbol: str) -> float | None:
        """Close of `symbol` on `day`, or None."""
        b = self.bars.get(symbol)
        if b is None or not b.days or b.days[-1] != self.day:
            return None
        value = float(b.close[-1])
        return value if math.isfinite(value) and value > 0 else None


def universe_assets(assets: Sequence[Asset], exclude: Collection[str] = ()) -> dict[str, Asset]:
    """Tradable, active US equities, without the benchmark, VIX, sector ETFs and `exclude`."""
    return {a.symbol: a for a in assets if a.tradable and a.asset_class == "us_equity" and a.status == "active"
            and a.symbol not in CONTEXT_SYMBOLS and a.symbol not in exclude}


async def load_market_inputs(market: MarketData, fundamentals: Fundamentals, calendar: MarketCalendar,
                             as_of: datetime, *, lookback: int, extra: Sequence[str] = (),
                             exclude: Collection[str] = ()) -> MarketInputs | str:
    """Assets, bars, quotes and fundamentals as of `as_of`, aligned into a snapshot.

    Args:
        market: assets, bars, quotes.
        fundamentals: sector and market cap.
        calendar: the exchange calendar.
        as_of: time of the run.
        lookback: daily bars per symbol.
        extra: symbols whose fundamentals are wanted too (held and watched ones).
        exclude: symbols never in the universe (e.g. ETFs).

    Returns:
        The inputs, or the reason the run cannot score anything.
    """
    assets = universe_assets(await market.assets(), exclude)
    if not assets:
        return "no tradable US equities in the asset list"
    symbols = sorted(assets)
    bars = await market.daily_bars([*symbols, BENCHMARK], as_of=as_of, lookback=lookback)
    benchmark = bars.pop(BENCHMARK, None)
    if benchmark is None or not benchmark.days:
        return f"no {BENCHMARK} bars known at {as_of.isoformat()} (the pickers measure beta and days against it)"
    day = calendar.previous_session(as_of)
    bars = {s: b for s, b in bars.items() if s in assets and b.days}
    if not bars:
        return "no bars known for any symbol of the universe"
    quotes = await market.latest_quotes(sorted(bars), as_of=as_of)
    funds = await fundamentals.get(sorted(set(bars) | set(extra)), as_of=day)
    snapshot = UniverseSnapshot.from_series(day, bars, benchmark, quotes, funds)
    return MarketInputs(day, assets, bars, snapshot, funds)


@dataclass(frozen=True)
class Book:
    """The account as Quorum last recorded it: positions, latest equity point and the watchlist."""

    positions: list[Position]
    equity: EquityPoint | None
    watchlist: list[WatchlistEntry]


async def read_book(uow: UnitOfWork, scope: str, as_of: datetime) -> Book:
    """Positions, the latest equity point of the last week before `as_of`, and the watchlist."""
    points = await uow.equity.list(scope, since=as_of - timedelta(days=7), until=as_of)
    return Book(await uow.positions.list(scope), points[-1] if points else None, await uow.watchlist.list(scope))


@dataclass(frozen=True)
class PortfolioView:
    """The book as the pickers see it."""

    summary: PortfolioSummary
    held_sectors: dict[str, float]
    watchlist_sectors: dict[str, int]


def portfolio_view(book: Book, prices: Mapping[str, float | None],
                   fundamentals: Mapping[str, FundamentalsRecord]) -> PortfolioView:
    """Position weights and sector shares of equity (of the positions' value when no equity is recorded).

    Args:
        book: positions, equity, watchlist.
        prices: latest close per symbol (a missing price values a position at its entry price).
        fundamentals: sector per symbol.
    """
    values: dict[str, float] = {}
    unrealized: dict[str, float | None] = {}
    for p in book.positions:
        px = prices.get(p.symbol) or float(p.avg_entry_price)
        values[p.symbol] = abs(float(p.qty) * px)
        entry = float(p.avg_entry_price)
        unrealized[p.symbol] = px / entry - 1.0 if entry > 0 else None
    equity = float(book.equity.equity) if book.equity is not None else sum(values.values())

    def sector(symbol: str) -> str | None:
        record = fundamentals.get(symbol)
        return None if record is None else record.sector

    held: dict[str, float] = {}
    positions = []
    for symbol, value in sorted(values.items()):
        weight = value / equity if equity > 0 else 0.0
        positions.append(HeldPosition(symbol=symbol, weight=round(weight, 6), sector=sector(symbol),
                                      unrealized_return=unrealized[symbol]))
        if (s := sector(symbol)) is not None:
            held[s] = min(1.0, held.get(s, 0.0) + weight)
    watched: dict[str, int] = {}
    for e in book.watchlist:
        if (s := sector(e.symbol)) is not None:
            watched[s] = watched.get(s, 0) + 1
    summary = PortfolioSummary(
        equity=None if book.equity is None else float(book.equity.equity),
        cash=None if book.equity is None else float(book.equity.cash),
        positions=tuple(positions), sector_weights={k: round(v, 6) for k, v in sorted(held.items())},
        watchlist=tuple(e.symbol for e in book.watchlist))
    return PortfolioView(summary, held, watched)
