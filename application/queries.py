"""Read models of the API: portfolio, trades, events, cycles, the breaker and system status, as typed values
(money in Decimal, times as datetimes; the API shapes the JSON). Lists are pages of at most `MAX_PAGE` items.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Generic, Literal, TypeVar

import structlog

from application.control import breaker_state
from application.cycle.reconcile import merged_positions
from domain import breaker as brk
from domain.errors import QuorumError
from domain.events import Event
from domain.models.account import Account
from domain.models.trading import Position
from domain.money import ZERO, money
from domain.money import price as to_price
from domain.ports.broker import Broker
from domain.ports.clock import MarketCalendar
from domain.ports.market_data import MarketData
from domain.ports.repositories import CycleRecord, EventQuery, FillRecord
from domain.ports.uow import UnitOfWorkFactory
from domain.trading_state import ControlState, OpenTrade, StopKeeper

log = structlog.get_logger(__name__)
MAX_PAGE = 500


def check_page(limit: int, offset: int) -> None:
    """Refuse a page outside 1 <= limit <= MAX_PAGE, offset >= 0.

    Raises:
        ValueError: naming the bad value.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must not be negative, got {offset}")


T = TypeVar("T")
TradingMode = Literal["active", "paused", "exits_only"]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: at most `limit` items from `offset`, out of `total`."""

    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class PositionView:
    """A position as the portfolio shows it: valued at the latest quote (None without one), with its stop.

    Attributes:
        position: the broker's position, with Quorum's opening time and stop merged in.
        last_price: the latest mid quote, if known.
        market_value: qty x last price.
        unrealized_pl: (last price - average entry) x qty, in cents.
        stop_kept_by: who enforces the stop (None when Quorum has no trade record).
        take_profit_price: the take-profit level Quorum keeps, if any.
    """

    position: Position
    last_price: Decimal | None
    market_value: Decimal | None
    unrealized_pl: Decimal | None
    stop_kept_by: StopKeeper | None
    take_profit_price: Decimal | None


@dataclass(frozen=True)
class Portfolio:
    """Cash, equity and positions from the broker at `as_of`.

    Attributes:
        as_of: when it was read.
        paper: whether the broker account is a paper account.
        account: the broker's account summary.
        gross_exposure: the sum of the absolute market values of the valued positions.
        positions: by symbol.
    """

    as_of: datetime
    paper: bool
    account: Account
    gross_exposure: Decimal
    positions: list[PositionView]


@dataclass(frozen=True)
class MarketClock:
    """Whether the regular session is open, and when it closes (open) or next opens (closed)."""

    is_open: bool
    closes_at: datetime | None = None
    next_open: datetime | None = None


@dataclass(frozen=True)
class SystemStatus:
    """The trading switch, the breaker, the last cycle and the market clock.

    Attributes:
        as_of: when it was read.
        scope: the scope reported on.
        paper: whether the broker account is a paper account.
        control: the operator's pause switch.
        breaker: the stored breaker state (None before the first cycle).
        last_cycle: the latest cycle, if any.
        market: the market clock at `as_of`.
    """

    as_of: datetime
    scope: str
    paper: bool
    control: ControlState
    breaker: brk.BreakerState | None
    last_cycle: CycleRecord | None
    market: MarketClock

    @property
    def trading(self) -> TradingMode:
        """"paused" by an operator, "exits_only" while the breaker blocks entries, else "active"."""
        if self.control.paused:
            return "paused"
        return "active" if self.breaker is None or brk.allows_entries(self.breaker) else "exits_only"


@dataclass(frozen=True)
class ReadModels:
    """Queries behind the read endpoints.

    Attributes:
        uow_factory: opens units of work.
        scope: the scope to report on.
        broker: the source of truth for cash, equity and positions.
        calendar: trading sessions.
        market: quotes to value positions with (optional).
    """

    uow_factory: UnitOfWorkFactory
    scope: str
    broker: Broker
    calendar: MarketCalendar
    market: MarketData | None = None

    async def portfolio(self, as_of: datetime) -> Portfolio:
        """Cash, equity and positions from the broker, valued at the latest quotes, with their stops."""
        account = await self.broker.account()
        async with self.uow_factory() as uow:
            state = await uow.trading.load(self.scope)
        positions = sorted(merged_positions(await self.broker.positions(), state), key=lambda p: p.symbol)
        prices = await self._prices([p.symbol for p in positions], as_of)
        rows = [self._position(p, prices.get(p.symbol), state.open_trades.get(p.symbol)) for p in positions]
        exposure = sum((abs(r.market_value) for r in rows if r.market_value is not None), ZERO)
        return Portfolio(as_of, self.broker.is_paper, account, exposure, rows)

    async def _prices(self, symbols: list[str], as_of: datetime) -> dict[str, Decimal]:
        if not symbols or self.market is None:
            return {}
        try:
            quotes = await self.market.latest_quotes(symbols, as_of=as_of)
        except QuorumError as exc:
            log.warning("portfolio_quotes_unavailable", error=str(exc))
            return {}
        return {s: to_price(q.mid) for s, q in quotes.items() if q.mid > 0}

    @staticmethod
    def _position(p: Position, price: Decimal | None, trade: OpenTrade | None) -> PositionView:
        value = None if price is None else p.market_value(price)
        pnl = None if price is None else money((price - p.avg_entry_price) * p.qty)
        return PositionView(p, price, value, pnl, trade.stop_keeper if trade else None,
                            trade.take_profit_price if trade else None)

    async def trades(self, *, limit: int, offset: int, since: datetime | None = None, until: datetime | None = None,
                     symbol: str | None = None, include_shadow: bool = False) -> Page[FillRecord]:
        """Fills, newest first, one page."""
        check_page(limit, offset)
        async with self.uow_factory() as uow:
            records = await uow.fills.list(self.scope, since=since, until=until,
                                           shadow=None if include_shadow else False)
        if symbol is not None:
            records = [r for r in records if r.fill.symbol == symbol]
        records.reverse()
        return Page(records[offset:offset + limit], len(records), limit, offset)

    async def events(self, q: EventQuery) -> Page[Event]:
        """Events matching `q`, newest first, one page."""
        check_page(q.limit, q.offset)
        if q.scope != self.scope:
            raise ValueError(f"events are reported for scope {self.scope!r} only")
        async with self.uow_factory() as uow:
            found = await uow.events.query(q)
            total = await uow.events.count(q)
        return Page(found, total, q.limit, q.offset)

    async def cycle(self, cycle_id: str) -> CycleRecord | None:
        """The cycle with this id, or None (also when it belongs to another scope)."""
        async with self.uow_factory() as uow:
            record = await uow.cycles.get(cycle_id)
        return None if record is None or record.scope != self.scope else record

    async def breaker(self) -> brk.BreakerState | None:
        """The circuit breaker's stored state (None before the first cycle)."""
        return await breaker_state(self.uow_factory, self.scope)

    async def system_status(self, as_of: datetime) -> SystemStatus:
        """Trading state (paused, breaker), the last cycle and whether the market is open."""
        state = await breaker_state(self.uow_factory, self.scope)
        async with self.uow_factory() as uow:
            control = (await uow.trading.load(self.scope)).control
            last = await uow.cycles.last(self.scope)
        return SystemStatus(as_of, self.scope, self.broker.is_paper, control, state, last, self.market_clock(as_of))

    def market_clock(self, as_of: datetime) -> MarketClock:
        """Whether the regular session is open at `as_of`, and when it next opens or closes."""
        is_open = self.calendar.is_open(as_of)
        upcoming = self.calendar.next_session(self.calendar.previous_session(as_of))
        if is_open:
            return MarketClock(True, closes_at=self.calendar.session_close(upcoming))
        return MarketClock(False, next_open=self.calendar.session_open(upcoming))
