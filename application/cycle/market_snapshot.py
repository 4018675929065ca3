"""What the cycle reads once from the broker and the market: account, positions, open orders, bars, quotes,
features and market conditions at as_of."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from application.cycle.reconcile import merged_positions
from application.market_conditions import CONTEXT_SYMBOLS, MarketConditionService
from domain.agents.schemas import MarketConditions, SymbolFeatures
from domain.features import compute_features
from domain.models.account import Account
from domain.models.market import Asset, BarSeries, Quote
from domain.models.trading import Order, Position, Side
from domain.money import money, price
from domain.ports.broker import Broker
from domain.ports.market_data import MarketData
from domain.trading_state import TradingState


@dataclass(frozen=True)
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
    def open_entries(self) -> dict[str, Decimal]:
        """symbol -> value (at the current price) of the entry orders still open at the broker (legs excluded)."""
        out: dict[str, Decimal] = {}
        for o in self.open_orders:
            if o.is_leg or o.request.side is not Side.BUY or not o.status.is_open:
                continue
            px = o.request.limit_price or self.prices.get(o.symbol) or Decimal(0)
            out[o.symbol] = out.get(o.symbol, Decimal(0)) + money((o.request.qty - o.filled_qty) * px)
        return out

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
    conditions: MarketConditionService, lookback: int, state: TradingState, held_extra: dict[str, Position],
) -> Snapshot:
    """Read the broker and the market once for the whole cycle.

    Args:
        universe: watchlist symbols.
        state: Quorum's trading state: the stops it keeps and when each position was opened are merged into
            the broker's positions (brokers report neither).
        held_extra: positions of the shadow book, shown to the agents as held.
    """
    account = await broker.account()
    positions = {p.symbol: p for p in merged_positions(await broker.positions(), state)}
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
