"""State of the exchange model and what happens to an order once accepted: fills, legs, cancels, expiry."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal

from adapters.inmemory.exchange.book import OrderBook
from adapters.inmemory.exchange.ids import IdFactory
from adapters.inmemory.exchange.ledger import Ledger
from adapters.inmemory.exchange.model import ExchangeOrder, OrderClass, Role, Status, Tif
from adapters.inmemory.exchange.rules import ExchangeRules
from domain.models.trading import Fill, Side
from domain.money import QTY_STEP, ZERO, money
from domain.ports.clock import Clock, MarketCalendar
from domain.risk.config import FeeSettings
from domain.risk.fees import order_fee

_LEG_REASON = {Role.TAKE_PROFIT: "take profit", Role.STOP_LOSS: "protective stop"}


class ExchangeCore:
    """Accounts, orders, prices and session state shared by the event and order-entry halves of `Exchange`."""

    def __init__(
        self,
        starting_cash: Decimal,
        fees: FeeSettings,
        clock: Clock,
        calendar: MarketCalendar,
        *,
        rules: ExchangeRules | None = None,
        fractionable: Mapping[str, bool] | None = None,
        default_fractionable: bool = True,
        tradable: set[str] | None = None,
        id_seed: int | None = None,
    ) -> None:
        if not isinstance(starting_cash, Decimal) or starting_cash < 0 or starting_cash != money(starting_cash):
            raise ValueError(f"starting_cash must be a non-negative Decimal in whole cents, got {starting_cash!r}")
        self.starting_cash = starting_cash
        self.fees = fees
        self.clock = clock
        self.calendar = calendar
        self.rules = rules or ExchangeRules()
        self.book = OrderBook()
        self.ledger = Ledger(starting_cash)
        self.last_equity = starting_cash
        self._fractionable = dict(fractionable or {})
        self._default_fractionable = default_fractionable
        self._tradable = tradable
        self._ids = IdFactory(id_seed)
        self._prices: dict[str, Decimal] = {}
        self._price_at: dict[str, datetime] = {}
        self._lastday: dict[str, Decimal] = {}
        self._session: date | None = None
        self._last_open_day: date | None = None
        self._last_closed: date | None = None
        self._reserved = ZERO
        self._pending_cancels: dict[str, ExchangeOrder] = {}

    # ------------------------------------------------------------------ time and prices

    def now(self) -> datetime:
        """The clock's time (aware)."""
        now = self.clock.now()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"the clock returned a naive datetime {now!r}")
        return now

    @property
    def session(self) -> date | None:
        """The session currently open at the exchange (opened and not yet closed), or None."""
        return self._session

    @property
    def last_closed_session(self) -> date | None:
        """The last session the exchange saw close, or None."""
        return self._last_closed

    @property
    def last_prices(self) -> dict[str, Decimal]:
        """Last known price per symbol."""
        return dict(self._prices)

    def price_time(self, symbol: str) -> datetime | None:
        """When the last known price of `symbol` was printed."""
        return self._price_at.get(symbol)

    def lastday_price(self, symbol: str) -> Decimal | None:
        """Close of the previous session for `symbol`."""
        return self._lastday.get(symbol)

    def equity(self) -> Decimal:
        """Cash plus every position at its last known price."""
        long_value, short_value = self.ledger.market_value(self._prices)
        return self.ledger.cash + long_value + short_value

    def fractionable(self, symbol: str) -> bool:
        """Whether `symbol` trades in fractions."""
        return self._fractionable.get(symbol, self._default_fractionable)

    @staticmethod
    def checked_price(symbol: str, value: object) -> Decimal:
        """`value` as a positive Decimal price; floats are refused."""
        if isinstance(value, float) or not isinstance(value, Decimal | int):
            raise TypeError(f"{symbol}: prices fed to the exchange must be Decimal, got {type(value).__name__}")
        d = Decimal(value)
        if not d.is_finite() or d <= 0:
            raise ValueError(f"{symbol}: price must be positive, got {value}")
        return d

    def _set_price(self, symbol: str, px: Decimal, at: datetime) -> None:
        self._prices[symbol] = px
        self._price_at[symbol] = at

    # ------------------------------------------------------------------ order lifecycle

    def _close(self, order: ExchangeOrder, status: Status, at: datetime) -> None:
        order.status = status
        order.updated_at = at
        if status is Status.CANCELED:
            order.canceled_at = at
        elif status is Status.EXPIRED:
            order.expired_at = at
        elif status is Status.REJECTED:
            order.failed_at = at
        self._reserved -= order.reserved
        order.reserved = ZERO
        self._pending_cancels.pop(order.id, None)
        self.book.closed(order)

    def _close_group(self, order: ExchangeOrder, status: Status, at: datetime) -> None:
        """Close every other open member of `order`'s group with `status` (one-cancels-other)."""
        if order.parent_id is None and not order.leg_ids:
            return
        for member in self.book.group(order):
            if member is not order and member.is_open:
                self._close(member, status, at)

    def settle_cancels(self, order_ids: set[str] | None = None) -> None:
        """Complete requested cancellations (all, or those of `order_ids`): the exchange's processing step."""
        at = self.now()
        for order in list(self._pending_cancels.values()):
            if order_ids is None or order.id in order_ids:
                self._close(order, Status.CANCELED, at)
                self._close_group(order, Status.CANCELED, at)

    def _execute(self, order: ExchangeOrder, px: Decimal, at: datetime) -> Fill | None:
        qty = order.remaining_qty
        if qty is None:
            qty = ((order.notional or ZERO) / px).quantize(QTY_STEP, rounding=ROUND_DOWN)
        fee = order_fee(order.side, qty, px, self.fees)
        fill = Fill(order.client_order_id, order.symbol, order.side, qty, px, fee, at,
                    order.reason or _LEG_REASON.get(order.role, ""))
        problem = self.ledger.fill_problem(fill, allow_short=self.rules.allow_short)
        if problem is None and qty <= 0:
            problem = f"notional {order.notional} buys no share at {px}"
        if problem is not None:
            order.reject_reason = problem
            self._close(order, Status.REJECTED, at)
            self._close_group(order, Status.CANCELED, at)
            return None
        self.ledger.book_fill(fill, order.id, order.filled_qty + qty, ZERO, self._ids.new())
        order.filled_qty += qty
        order.filled_avg_price = px
        order.filled_at = at
        self._close(order, Status.FILLED, at)
        if order.role is Role.ENTRY and order.leg_ids:
            for leg_id in order.leg_ids:
                leg = self.book.get(leg_id)
                if leg is not None and leg.is_open:
                    leg.status = Status.NEW if leg.role is Role.TAKE_PROFIT else Status.HELD
                    leg.active_since = at
                    leg.updated_at = at
        elif order.parent_id is not None or order.order_class is OrderClass.OCO:
            self._close_group(order, Status.CANCELED, at)
        return fill

    def _expire(self, *, before: date | None = None, through: date | None = None) -> None:
        """Expire open DAY orders of sessions before `before` or up to `through`; legs of a parent that closed
        without filling are cancelled with it."""
        for order in self.book.open_orders():
            if not order.is_open or order.tif is not Tif.DAY:
                continue
            due = (before is not None and order.session_day < before) or (
                through is not None and order.session_day <= through)
            if due:
                at = self.calendar.session_close(order.session_day)
                self._close(order, Status.EXPIRED, at)
                if order.role is Role.ENTRY:
                    self._close_group(order, Status.CANCELED, at)

    # ------------------------------------------------------------------ order entry helpers

    def _session_day_for(self, now: datetime) -> date:
        """The session an order sent at `now` is for: the one in progress, or the next."""
        day = self.calendar.next_session(self.calendar.previous_session(now))
        if self._last_closed is not None and day <= self._last_closed:
            day = self.calendar.next_session(self._last_closed)
        return day

    def _in_session(self, now: datetime) -> bool:
        return self._session is not None and now < self.calendar.session_close(self._session)

    def _buy_fee(self, qty: Decimal, px: Decimal) -> Decimal:
        return order_fee(Side.BUY, qty, px, self.fees)
