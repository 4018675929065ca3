"""The snapshot step: account, positions, bars, quotes, features and market conditions at as_of."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from application.market_conditions import CONTEXT_SYMBOLS, MarketConditionService
from domain.agents.schemas import MarketConditions, SymbolFeatures
from domain.features import compute_features
from domain.models.account import Account
from domain.models.market import Asset, BarSeries, Quote
from domain.models.trading import Order, Position
from domain.money import money, price
from domain.ports.broker import Broker
from domain.ports.market_data import MarketData


@dataclass
class Snapshot:
    """Everything the cycle knows at `as_of`."""

    as_of: datetime
    account: Account
    positions: dict[str, Position]
    open_orders: list[Order]
    bars: dict[str, BarSeries]
    quotes: dict[str, Quote]
    features: dict[str, SymbolFeatures]
    market: MarketConditions | None
    assets: dict[str, Asset]
    prices: dict[str, Decimal] = field(default_factory=dict)
    adv: dict[str, Decimal] = field(default_factory=dict)

    @property
    def gross_exposure(self) -> Decimal:
        """Gross value of open positions at current prices."""
        total = Decimal(0)
        for s, p in self.positions.items():
            px = self.prices.get(s, p.avg_entry_price)
            total += abs(money(p.qty * px))
        return total


class AssetCache:
    """Assets change rarely: read them once per exchange day."""

    def __init__(self, market: MarketData) -> None:
        self._market = market
        self._day: str | None = None
        self._assets: dict[str, Asset] = {}

    async def get(self, as_of: datetime) -> dict[str, Asset]:
        """Assets by symbol, refreshed when the date changes."""
        day = as_of.date().isoformat()
        if day != self._day:
            self._assets = {a.symbol: a for a in await self._market.assets()}
            self._day = day
        return self._assets


async def take_snapshot(
    *, as_of: datetime, universe: Sequence[str], broker: Broker, market: MarketData, assets: AssetCache,
    conditions: MarketConditionService, lookback: int, stops: dict[str, Decimal], held_extra: dict[str, Position],
) -> Snapshot:
    """Read the broker and the market once for the whole cycle.

    Args:
        universe: watchlist symbols.
        stops: stop prices Quorum keeps for positions (merged into broker positions).
        held_extra: positions of the shadow book, shown to the agents as held.
    """
    account = await broker.account()
    positions = {p.symbol: p for p in await broker.positions()}
    for sym, pos in positions.items():
        if pos.stop_price is None and sym in stops:
            positions[sym] = Position(pos.symbol, pos.qty, pos.avg_entry_price, stops[sym], pos.opened_at,
                                      pos.fractional)
    open_orders = await broker.open_orders()
    symbols = sorted(set(universe) | set(positions) | set(held_extra))
    bars = await market.daily_bars(sorted(set(symbols) | set(CONTEXT_SYMBOLS)), as_of=as_of, lookback=lookback)
    quotes = await market.latest_quotes(symbols, as_of=as_of)
    asset_map = await assets.get(as_of)
    features: dict[str, SymbolFeatures] = {}
    prices: dict[str, Decimal] = {}
    adv: dict[str, Decimal] = {}
    for sym in symbols:
        q = quotes.get(sym)
        if q is not None and q.last > 0:
            prices[sym] = price(q.last)
        series = bars.get(sym)
        if series is None:
            continue
        held = positions.get(sym) or held_extra.get(sym)
        f = compute_features(series, held_qty=float(held.qty) if held else 0.0,
                             avg_entry=float(held.avg_entry_price) if held else None)
        if f is not None:
            features[sym] = f
            adv[sym] = money(f.avg_dollar_volume_20d)
            if sym not in prices:
                prices[sym] = price(f.price)
    market_conditions = await conditions.current(as_of, bars)
    return Snapshot(as_of, account, positions, open_orders, bars, quotes, features, market_conditions, asset_map,
                    prices, adv)
