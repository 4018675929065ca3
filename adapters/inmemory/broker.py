"""InMemoryBroker: a simulated cash account that backtests and tests trade against.

The backtest driver feeds it prices: `on_session_open(day, opens)` and `on_session_close(day, bars)`.
Market orders fill at the open (moved against us by the slippage, plus fees); orders sent while the
market is closed wait for the next open. A whole-share BUY with a stop price gets a protective GTC stop
leg (and, with a take-profit price, a take-profit leg; the two are one-cancels-other), like an Alpaca
bracket. Cash only moves through fills (`Fill.cash_delta`) and recorded deposits, so replaying the fills
from the starting cash reproduces the cash to the cent. Time comes only from the injected Clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from adapters.inmemory.broker_book import OrderBook, Working
from adapters.inmemory.broker_rules import count_day_trades, price_at_open, price_in_range, session_day
from domain.errors import InsufficientBuyingPowerError
from domain.models.account import Account
from domain.models.trading import Fill, Order, OrderRequest, OrderStatus, OrderType, Portfolio, Position, Side
from domain.money import ZERO, money
from domain.ports.broker import Broker
from domain.ports.clock import Clock, MarketCalendar
from domain.risk.config import FeeSettings
from domain.risk.fees import order_fee

OHLC = tuple[Decimal, Decimal, Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class CashMovement:
    """A deposit (positive) or withdrawal (negative): money in or out that is not profit."""

    amount: Decimal
    at: datetime


class InMemoryBroker(OrderBook, Broker):
    """Implements the `Broker` port in memory (a paper account without margin).

    Args:
        starting_cash: cash at the start (USD, whole cents).
        fees: slippage and fees applied to every fill.
        clock: the only source of time.
        calendar: the exchange calendar (sessions, open and close times).
        fractionable: symbol -> whether fractional quantities are allowed (absent: allowed).
        allow_short: whether selling more than is held opens a short position.
    """

    def __init__(
        self,
        starting_cash: Decimal,
        fees: FeeSettings,
        clock: Clock,
        calendar: MarketCalendar,
        fractionable: Mapping[str, bool] | None = None,
        *,
        allow_short: bool = False,
    ) -> None:
        if not isinstance(starting_cash, Decimal) or starting_cash < 0 or starting_cash != money(starting_cash):
            raise ValueError(f"starting_cash must be a non-negative Decimal in whole cents, got {starting_cash!r}")
        super().__init__(fees, clock, calendar, dict(fractionable or {}), allow_short)
        self.starting_cash = starting_cash
        self._portfolio = Portfolio(cash=starting_cash)
        self._movements: list[CashMovement] = []

    # ------------------------------------------------------------------ port

    @property
    def is_paper(self) -> bool:
        """Always True: the money is simulated."""
        return True

    async def account(self) -> Account:
        """Cash, equity at the last known prices, buying power (cash less open buy orders) and day trades."""
        cash = self._portfolio.cash
        return Account(
            cash=cash,
            equity=self.equity(),
            buying_power=max(cash - self._reserved_cash(), ZERO),
            day_trade_count=count_day_trades(self._fills, self._last_five_sessions()),
        )

    async def positions(self) -> list[Position]:
        """Open positions, by symbol."""
        return [self._portfolio.positions[s] for s in sorted(self._portfolio.positions)]

    async def open_orders(self) -> list[Order]:
        """Orders that may still fill (protective legs included), oldest first."""
        return [w.order for w in self._working() if w.order.status.is_open]

    async def submit(self, request: OrderRequest) -> Order:
        """Submit an order; idempotent on `client_order_id` (see the module docstring for execution).

        Raises:
            OrderRejectedError: unknown symbol, bad price increment or qty, fractional qty of a
                non-fractionable symbol, or selling more than is held (without `allow_short`).
            InsufficientBuyingPowerError: the estimated cost exceeds cash less open buy orders.
        """
        existing = self._book.get(request.client_order_id)
        if existing is not None:
            return existing.order
        fractional = self._validate(request)
        now = self._now()
        target = self._target_session(now)
        if self._closed and self._open_day is not None and target <= self._open_day:
            target = self._calendar.next_session(self._open_day)  # today's close was already fed
        w = self._add(request, now, target, fractional)
        today_open = self._fillable_open(request.symbol, now)
        if today_open is not None:
            px = price_at_open(request, today_open, self._fees)
            if px is not None:
                self._execute(w, px, now)
        return self._book[request.client_order_id].order

    async def get_by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client order id, or None."""
        w = self._book.get(client_order_id)
        return w.order if w else None

    async def cancel(self, broker_order_id: str) -> None:
        """Cancel an open order (a protective leg cancels the rest of its bracket).

        Raises:
            NotFoundError: no such order.
            OrderRejectedError: the order is no longer open.
        """
        w = self._by_broker_id(broker_order_id)
        self._cancel(w)
        self._sync_position_stop(w.order.symbol)

    async def fills_since(self, since: datetime) -> list[Fill]:
        """Executions at or after `since`, oldest first."""
        return sorted((f for f in self._fills if f.at >= since), key=lambda f: f.at)

    # ------------------------------------------------------------------ driver

    def on_session_open(self, day: date, opens: Mapping[str, Decimal]) -> list[Fill]:
        """The session of `day` opened at `opens`: fill waiting orders that execute at the open.

        Returns:
            The fills made.

        Raises:
            ValueError: `day` is not a session or is before the last session fed.
            TypeError: a price is not a Decimal.
        """
        at = self._calendar.session_open(day)
        if self._open_day is not None and day < self._open_day:
            raise ValueError(f"session {day} is before the last session fed ({self._open_day})")
        prices = {s: self._checked_price(s, p) for s, p in opens.items()}
        self._expire_before(day)
        self._open_day, self._opens, self._closed = day, prices, False
        self._last_price.update(prices)
        made = len(self._fills)
        for w in self._working():
            px = prices.get(w.order.symbol)
            if w.order.status.is_open and w.target_day <= day and px is not None:
                fill_px = price_at_open(w.order.request, px, self._fees)
                if fill_px is not None:
                    self._execute(w, fill_px, at)
        return self._fills[made:]

    def on_session_close(self, day: date, bars: Mapping[str, OHLC]) -> list[Fill]:
        """The session of `day` closed with these (open, high, low, close) bars.

        Resting stops and limits touched during the day fill (stops before take-profits: when both legs of
        a bracket were touched the worse outcome is assumed); DAY orders still open expire.

        Returns:
            The fills made (those made by an implicit `on_session_open` included).
        """
        made = len(self._fills)
        if self._open_day == day and self._closed:
            raise ValueError(f"the session of {day} was already closed")
        if any(len(b) != 4 for b in bars.values()):
            raise ValueError("bars must be (open, high, low, close) tuples")
        checked = {s: tuple(self._checked_price(s, p) for p in b) for s, b in bars.items()}
        at = self._calendar.session_close(day)
        if self._open_day != day:
            self.on_session_open(day, {s: b[0] for s, b in checked.items()})
        for kind in (OrderType.STOP, OrderType.LIMIT):
            for w in self._working():
                bar = checked.get(w.order.symbol)
                if not (w.order.status.is_open and w.order.request.type is kind and w.target_day <= day and bar):
                    continue
                o, h, lo, c = bar
                px = price_in_range(w.order.request, o, max(h, o, c), min(lo, o, c), self._fees)
                if px is not None:
                    self._execute(w, px, at)
        self._last_price.update({s: b[3] for s, b in checked.items()})
        self._expire_through(day)
        self._closed = True
        return self._fills[made:]

    def deposit(self, amount: Decimal, at: datetime | None = None) -> None:
        """Add (positive) or withdraw (negative) cash that is not profit; recorded in `cash_movements`.

        Raises:
            InsufficientBuyingPowerError: a withdrawal larger than the available cash.
        """
        if not isinstance(amount, Decimal) or amount == 0 or amount != money(amount):
            raise ValueError(f"amount must be a non-zero Decimal in whole cents, got {amount!r}")
        if amount < 0 and -amount > self._portfolio.cash - self._reserved_cash():
            raise InsufficientBuyingPowerError(f"cannot withdraw {-amount}: only {self._portfolio.cash} in cash")
        when = at if at is not None else self._now()
        self._portfolio = self._portfolio.deposit(amount)
        self._movements.append(CashMovement(amount, when))

    # ------------------------------------------------------------------ extras

    @property
    def cash(self) -> Decimal:
        """Cash now."""
        return self._portfolio.cash

    @property
    def portfolio(self) -> Portfolio:
        """Cash, positions and net deposits (an immutable snapshot)."""
        return self._portfolio

    @property
    def cash_movements(self) -> list[CashMovement]:
        """Every deposit and withdrawal, oldest first."""
        return list(self._movements)

    @property
    def fills(self) -> list[Fill]:
        """Every fill, in execution order."""
        return list(self._fills)

    @property
    def last_prices(self) -> dict[str, Decimal]:
        """Last known price per symbol (latest close or open fed)."""
        return dict(self._last_price)

    def all_orders(self) -> list[Order]:
        """Every order ever accepted, oldest first."""
        return [w.order for w in sorted(self._book.values(), key=lambda w: w.seq)]

    def equity(self) -> Decimal:
        """Cash plus every position at its last known price."""
        return self._portfolio.equity(self._last_price)

    # ------------------------------------------------------------------ internals

    def _held(self, symbol: str) -> Decimal:
        return self._portfolio.qty(symbol)

    def _cash_now(self) -> Decimal:
        return self._portfolio.cash

    def _last_five_sessions(self) -> set[date]:
        now = self._now()
        last = self._calendar.previous_session(now)
        if self._calendar.is_open(now):
            last = self._calendar.next_session(last)
        days = self._calendar.sessions(date.fromordinal(last.toordinal() - 14), last)
        return set(days[-5:])

    def _execute(self, w: Working, px: Decimal, at: datetime) -> None:
        req = w.order.request
        fee = order_fee(req.side, req.qty, px, self._fees)
        fill = Fill(req.client_order_id, req.symbol, req.side, req.qty, px, fee, at, req.reason)
        problem = self._fill_problem(fill)
        if problem is not None:
            self._reject(w, problem)
            return
        self._portfolio = self._portfolio.apply(fill, fractional=w.fractional)
        self._fills.append(fill)
        self._set_status(w, OrderStatus.FILLED, filled_qty=req.qty, avg_price=px)
        w.filled_day = session_day(fill)
        if w.parent is not None:
            self._cancel_siblings(w)
        elif req.side is Side.BUY and not w.fractional:
            self._add_legs(w, at)
        self._trim_legs(req.symbol, self._held(req.symbol))
        self._sync_position_stop(req.symbol)

    def _fill_problem(self, fill: Fill) -> str | None:
        if fill.side is Side.BUY and -fill.cash_delta > self._portfolio.cash:
            return f"insufficient cash at fill: needs {-fill.cash_delta}, has {self._portfolio.cash}"
        if fill.side is Side.SELL and not self._allow_short and fill.qty > self._held(fill.symbol):
            return f"insufficient qty at fill: selling {fill.qty}, holding {self._held(fill.symbol)}"
        return None

    def _sync_position_stop(self, symbol: str) -> None:
        pos = self._portfolio.positions.get(symbol)
        if pos is None:
            return
        stops = [w for w in self._working() if w.is_stop_leg and w.order.symbol == symbol and w.order.status.is_open]
        stop = stops[-1].order.request.stop_price if stops else None
        if pos.stop_price != stop:
            positions = dict(self._portfolio.positions)
            positions[symbol] = replace(pos, stop_price=stop)
            self._portfolio = replace(self._portfolio, positions=positions)
