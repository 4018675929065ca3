"""Orders, fills, positions and the portfolio. All money is Decimal."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from domain.money import ZERO, money


class Side(StrEnum):
    """Order side."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """Order types Quorum sends."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class TimeInForce(StrEnum):
    """How long an order lives."""

    DAY = "day"
    GTC = "gtc"


class OrderStatus(StrEnum):
    """Lifecycle of an order at the broker."""

    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        """Whether the order may still fill."""
        return self in (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order Quorum wants the broker to execute.

    `client_order_id` is deterministic (cycle and symbol), so resubmitting a
    retried cycle's order is recognised by the broker as a duplicate.
    `stop_price` on a buy is the protective stop of the entry: sent as a
    bracket leg when the broker allows it, otherwise enforced by Quorum.
    """

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    fractional: bool = False
    reason: str = ""

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise ValueError(f"order qty must be positive, got {self.qty}")
        if not self.symbol or not self.symbol.strip():
            raise ValueError("order symbol must not be empty")
        for name in ("limit_price", "stop_price", "take_profit_price"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"{name} must be positive, got {v}")


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the broker knows it.

    `parent_id` is the broker order id of the bracket/OTO parent when this order is one of its legs; a
    leg has its own broker order id and its own client order id (chosen by the broker, not by Quorum).
    """

    request: OrderRequest
    broker_order_id: str
    status: OrderStatus
    submitted_at: datetime
    filled_qty: Decimal = ZERO
    filled_avg_price: Decimal | None = None
    parent_id: str | None = None

    @property
    def is_leg(self) -> bool:
        """Whether this order is a protective leg (stop loss or take profit) of a bracket or OTO parent."""
        return self.parent_id is not None

    @property
    def client_order_id(self) -> str:
        """The deterministic id Quorum gave the order."""
        return self.request.client_order_id

    @property
    def symbol(self) -> str:
        """Symbol of the order."""
        return self.request.symbol


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution. `fee` is everything paid on top of qty * price."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    at: datetime
    reason: str = ""

    @property
    def notional(self) -> Decimal:
        """qty * price rounded to the cent."""
        return money(self.qty * self.price)

    @property
    def cash_delta(self) -> Decimal:
        """Change in cash caused by this fill."""
        if self.side is Side.BUY:
            return -(self.notional + self.fee)
        return self.notional - self.fee


@dataclass(frozen=True, slots=True)
class Position:
    """A holding. `qty` is negative for a short.

    Brokers report `qty`, `avg_entry_price` and `qty_available` (shares not held by open sell orders,
    None when unknown) but not when the position was opened: `opened_at` and `stop_price` are
    Quorum's own knowledge, merged in from its trade records. `take_profit_price` is kept on the
    shadow book's positions only.
    """

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    stop_price: Decimal | None = None
    opened_at: datetime | None = None
    fractional: bool = False
    qty_available: Decimal | None = None
    take_profit_price: Decimal | None = None

    def market_value(self, last_price: Decimal) -> Decimal:
        """qty * last price rounded to the cent."""
        return money(self.qty * last_price)


@dataclass(frozen=True, slots=True)
class Portfolio:
    """Cash and positions. Immutable: applying a fill returns a new portfolio."""

    cash: Decimal
    positions: dict[str, Position] = field(default_factory=dict)
    net_deposits: Decimal = ZERO

    def equity(self, prices: dict[str, Decimal]) -> Decimal:
        """Cash plus the market value of every position at `prices`.

        Raises:
            KeyError: a held symbol has no price.
        """
        return self.cash + sum((p.market_value(prices[s]) for s, p in self.positions.items()), ZERO)

    def gross_exposure(self, prices: dict[str, Decimal]) -> Decimal:
        """Sum of absolute position values."""
        return sum((abs(p.market_value(prices[s])) for s, p in self.positions.items()), ZERO)

    def qty(self, symbol: str) -> Decimal:
        """Quantity held of `symbol` (0 when flat)."""
        pos = self.positions.get(symbol)
        return pos.qty if pos else ZERO

    def deposit(self, amount: Decimal) -> Portfolio:
        """Add (or, negative, withdraw) cash that is not profit."""
        return replace(self, cash=self.cash + amount, net_deposits=self.net_deposits + amount)

    def apply(self, fill: Fill, *, stop_price: Decimal | None = None, fractional: bool = False,
              take_profit_price: Decimal | None = None) -> Portfolio:
        """Return the portfolio after `fill`.

        Args:
            fill: the execution.
            stop_price: protective stop to keep on the position (entries).
            fractional: whether the position is held in fractional shares.
            take_profit_price: take-profit to keep on the position (entries).
        """
        signed = fill.qty if fill.side is Side.BUY else -fill.qty
        positions = dict(self.positions)
        old = positions.get(fill.symbol)
        new_qty = (old.qty if old else ZERO) + signed
        if new_qty == 0:
            positions.pop(fill.symbol, None)
        elif old is None or (old.qty > 0) != (new_qty > 0):
            positions[fill.symbol] = Position(
                fill.symbol, new_qty, fill.price, stop_price, fill.at, fractional, take_profit_price=take_profit_price
            )
        elif abs(new_qty) > abs(old.qty):
            avg = (old.avg_entry_price * abs(old.qty) + fill.price * fill.qty) / abs(new_qty)
            positions[fill.symbol] = replace(
                old,
                qty=new_qty,
                avg_entry_price=avg,
                stop_price=stop_price if stop_price is not None else old.stop_price,
                fractional=old.fractional or fractional,
                take_profit_price=take_profit_price if take_profit_price is not None else old.take_profit_price,
            )
        else:
            positions[fill.symbol] = replace(old, qty=new_qty)
        return replace(self, cash=self.cash + fill.cash_delta, positions=positions)
