"""What the exchange model stores and reports: order specifications, orders, account and position views.

Everything is wire-agnostic and in Decimal; `alpaca_emulator.wire` turns these into Alpaca's JSON and
`adapters.inmemory.broker_orders` into domain objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from domain.models.trading import Side
from domain.money import ZERO


class Kind(StrEnum):
    """Order types the model executes (Alpaca's `type`)."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class Tif(StrEnum):
    """Time in force the model executes (`opg`, `cls`, `ioc`, `fok` are refused as not emulated)."""

    DAY = "day"
    GTC = "gtc"


class OrderClass(StrEnum):
    """Alpaca's `order_class`."""

    SIMPLE = "simple"
    BRACKET = "bracket"
    OTO = "oto"
    OCO = "oco"


class Role(StrEnum):
    """What an order is within its group."""

    ENTRY = "entry"
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"


class Status(StrEnum):
    """Alpaca order statuses the model uses (see docs/exchange-model.md, rule "lifecycle")."""

    ACCEPTED = "accepted"
    NEW = "new"
    HELD = "held"
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_open(self) -> bool:
        """Whether an order in this status may still fill or be cancelled."""
        return self in _OPEN


_OPEN = frozenset({Status.ACCEPTED, Status.NEW, Status.HELD, Status.PENDING_CANCEL})


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """An order as submitted (the body of POST /v2/orders, already parsed).

    Exactly one of `qty` and `notional` is set. `reason` is Quorum's note carried to the fill (the
    in-memory broker uses it; it never reaches the wire).
    """

    symbol: str
    side: Side
    qty: Decimal | None = None
    notional: Decimal | None = None
    kind: Kind = Kind.MARKET
    tif: Tif = Tif.DAY
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    client_order_id: str | None = None
    order_class: OrderClass = OrderClass.SIMPLE
    take_profit_limit: Decimal | None = None
    stop_loss_stop: Decimal | None = None
    stop_loss_limit: Decimal | None = None
    reason: str = ""


@dataclass(slots=True, eq=False)
class ExchangeOrder:
    """An order at the exchange, mutated as it lives. Read it; change it only through `Exchange`."""

    id: str
    client_order_id: str
    seq: int
    symbol: str
    side: Side
    kind: Kind
    tif: Tif
    order_class: OrderClass
    role: Role
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    status: Status
    submitted_at: datetime
    session_day: date
    fractional: bool
    reason: str = ""
    parent_id: str | None = None
    leg_ids: list[str] = field(default_factory=list)
    active_since: datetime | None = None
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    failed_at: datetime | None = None
    filled_qty: Decimal = ZERO
    filled_avg_price: Decimal | None = None
    reserved: Decimal = ZERO
    triggered: bool = False
    reject_reason: str = ""

    @property
    def is_open(self) -> bool:
        """Whether the order may still fill or be cancelled."""
        return self.status.is_open

    @property
    def group_id(self) -> str:
        """The id shared by the orders of one bracket/OTO/OCO group (the parent's id)."""
        return self.parent_id or self.id

    @property
    def remaining_qty(self) -> Decimal | None:
        """Shares still to fill (None for a notional order)."""
        return None if self.qty is None else self.qty - self.filled_qty


@dataclass(frozen=True, slots=True)
class AccountView:
    """The account as GET /v2/account reports it (cash account, multiplier 1)."""

    cash: Decimal
    equity: Decimal
    buying_power: Decimal
    last_equity: Decimal
    long_market_value: Decimal
    short_market_value: Decimal
    daytrade_count: int
    pattern_day_trader: bool = False
    multiplier: str = "1"
    status: str = "ACTIVE"
    trading_blocked: bool = False
    shorting_enabled: bool = False
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class PositionView:
    """A position as GET /v2/positions reports it: no opening time, no stop."""

    symbol: str
    qty: Decimal
    qty_available: Decimal
    held_for_orders: Decimal
    avg_entry_price: Decimal
    cost_basis: Decimal
    current_price: Decimal
    lastday_price: Decimal
    market_value: Decimal
    related_orders: tuple[str, ...]

    @property
    def side(self) -> str:
        """"long" or "short"."""
        return "long" if self.qty > 0 else "short"

    @property
    def unrealized_pl(self) -> Decimal:
        """Market value less cost basis."""
        return self.market_value - self.cost_basis
