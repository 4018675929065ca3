"""`Exchange`: one Alpaca account and the market it trades in, as a synchronous in-memory model.

The in-memory broker (backtests) and the Alpaca-wire emulator (adapter tests, rehearsals) both run on it,
so the rules a backtest meets are the rules the live stack meets. Orders are accepted on `submit` and never
filled there; they execute on later market events (`open_session`, `price_update`, `range_update`,
`close_session`). Time comes from the injected Clock (order entry) and from the events (executions).
Every rule and its source is listed in docs/exchange-model.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal

from adapters.inmemory.exchange.events import MarketEvents
from adapters.inmemory.exchange.ledger import Activity
from adapters.inmemory.exchange.model import (
    AccountView,
    ExchangeOrder,
    Kind,
    OrderClass,
    OrderSpec,
    PositionView,
    Role,
    Status,
)
from adapters.inmemory.exchange.pricing import buy_valuation
from adapters.inmemory.exchange.protections import could_day_trade, could_wash
from adapters.inmemory.exchange.rejections import (
    duplicate_client_order_id,
    insufficient_buying_power,
    insufficient_qty,
    invalid,
    not_cancelable,
    order_not_found,
    pattern_day_trader,
    wash_trade,
)
from adapters.inmemory.exchange.rules import ny_date
from adapters.inmemory.exchange.validation import check_spec
from domain.errors import InsufficientBuyingPowerError
from domain.models.trading import Fill, Side
from domain.money import PRICE_TICK, QTY_STEP, ZERO, money

_SHORT_COLLAR = Decimal("0.03")


class Exchange(MarketEvents):
    """An Alpaca cash account (multiplier 1, no margin) with Alpaca's order rules.

    Args:
        starting_cash: cash at the start (USD, whole cents).
        fees: slippage and fees of every fill.
        clock: the time orders are submitted, cancelled and read at.
        calendar: the exchange calendar.
        rules: rule parameters (collar, PDT, shorting...); `ExchangeRules()` when None.
        fractionable: per-symbol override of `default_fractionable`.
        default_fractionable: whether symbols trade in fractions unless overridden.
        tradable: the symbols that exist (None: any symbol with a known price).
        id_seed: seed of the order and activity UUIDs (None: `uuid4`); set it for reproducible runs.
    """

    # ------------------------------------------------------------------ orders

    def submit(self, spec: OrderSpec) -> ExchangeOrder:
        """Accept an order (and its legs), or refuse it. Nothing executes here.

        Returns:
            The parent order, status `new` during the session and `accepted` outside it; legs are `held`.

        Raises:
            Rejection: 422 (invalid, duplicate client order id), 403 (insufficient qty, insufficient buying
                power, potential wash trade, pattern day trading protection).
        """
        now = self.now()
        cid = spec.client_order_id or self._ids.new()
        if self.book.has_client_id(cid):
            raise duplicate_client_order_id()
        if self._tradable is not None and spec.symbol not in self._tradable:
            raise invalid(f'asset "{spec.symbol}" not found')
        last = self._prices.get(spec.symbol)
        if last is None:
            raise invalid(f"unknown symbol {spec.symbol!r}: no price has been seen for it")
        fractional = check_spec(spec, fractionable=self.fractionable(spec.symbol), last=last, rules=self.rules)
        reserve = self._check_account(spec, fractional, last, now)
        return self._accept(spec, cid, fractional, reserve, now)

    def request_cancel(self, order_id: str) -> ExchangeOrder:
        """Ask to cancel an open order: it becomes `pending_cancel` (still holding what it held) until the next
        processing step (`settle_cancels` or any market event).

        Raises:
            Rejection: 404 no such order; 422 the order is no longer open.
        """
        order = self.book.get(order_id)
        if order is None:
            raise order_not_found(order_id)
        if order.status is Status.PENDING_CANCEL:
            return order
        if not order.is_open:
            raise not_cancelable(order.status.value)
        order.status = Status.PENDING_CANCEL
        order.updated_at = self.now()
        self._pending_cancels[order.id] = order
        return order

    def cancel(self, order_id: str) -> ExchangeOrder:
        """Cancel an open order now (its group goes with it); returns it once `canceled`."""
        order = self.request_cancel(order_id)
        self.settle_cancels({order.id})
        return order

    def get(self, order_id: str) -> ExchangeOrder | None:
        """The order with this id (legs included), or None."""
        return self.book.get(order_id)

    def by_client_id(self, client_order_id: str) -> ExchangeOrder | None:
        """The order with this client order id, or None."""
        return self.book.by_client_id(client_order_id)

    def orders(self) -> list[ExchangeOrder]:
        """Every order ever accepted, oldest first."""
        return self.book.all()

    def open_orders(self) -> list[ExchangeOrder]:
        """Orders that may still fill (legs included), oldest first."""
        return self.book.open_orders()

    def legs(self, order: ExchangeOrder) -> list[ExchangeOrder]:
        """The legs of a parent order."""
        return [leg for i in order.leg_ids if (leg := self.book.get(i)) is not None]

    # ------------------------------------------------------------------ money

    def deposit(self, amount: Decimal, at: datetime | None = None, *, journal: bool = False) -> None:
        """Add (positive) or withdraw (negative) cash that is not profit (a JNLC cash journal when `journal`).

        Raises:
            ValueError: not a non-zero Decimal in whole cents.
            InsufficientBuyingPowerError: a withdrawal larger than the cash not reserved by open buys.
        """
        if not isinstance(amount, Decimal) or amount == 0 or amount != money(amount):
            raise ValueError(f"amount must be a non-zero Decimal in whole cents, got {amount!r}")
        if amount < 0 and -amount > self.ledger.cash - self._reserved:
            raise InsufficientBuyingPowerError(f"cannot withdraw {-amount}: only {self.ledger.cash} in cash")
        self.ledger.deposit(amount, at if at is not None else self.now(), self._ids.new(), journal=journal)

    @property
    def fills(self) -> list[Fill]:
        """Every fill, in execution order."""
        return list(self.ledger.fills)

    def fills_since(self, since: datetime) -> list[Fill]:
        """Fills at or after `since`, oldest first."""
        return self.ledger.fills_since(since)

    def activities(self) -> list[Activity]:
        """Every account activity (fills, fees, deposits), oldest first."""
        return list(self.ledger.activities)

    # ------------------------------------------------------------------ views

    def account(self) -> AccountView:
        """Cash, equity, buying power (cash less open buys), last equity and day trades."""
        long_value, short_value = self.ledger.market_value(self._prices)
        count = self.daytrade_count()
        flagged = self.rules.pdt_protection and count > self.rules.pdt_max_day_trades and (
            self.last_equity < self.rules.pdt_equity_threshold)
        return AccountView(
            cash=self.ledger.cash,
            equity=self.ledger.cash + long_value + short_value,
            buying_power=max(self.ledger.cash - self._reserved, ZERO),
            last_equity=self.last_equity,
            long_market_value=long_value,
            short_market_value=short_value,
            daytrade_count=count,
            pattern_day_trader=flagged,
            shorting_enabled=self.rules.allow_short,
        )

    def positions(self) -> list[PositionView]:
        """Open positions by symbol."""
        return [v for s in sorted(self.ledger.holdings) if (v := self.position(s)) is not None]

    def position(self, symbol: str) -> PositionView | None:
        """The position in `symbol`, or None when flat."""
        holding = self.ledger.holdings.get(symbol)
        if holding is None:
            return None
        px = self._prices[symbol]
        held, related = self.book.held(symbol, self._prices.__getitem__)
        available = max(holding.qty - held, ZERO) if holding.qty > 0 else holding.qty
        avg = holding.avg_entry_price.quantize(PRICE_TICK)
        return PositionView(symbol, holding.qty, available, held, avg, money(holding.qty * holding.avg_entry_price),
                            px, self._lastday.get(symbol, px), money(holding.qty * px), tuple(related))

    def daytrade_count(self) -> int:
        """Day trades in the last five sessions (today's included once it has opened)."""
        now = self.now()
        last = self.calendar.previous_session(now)
        if self.calendar.is_open(now) or self._session is not None:
            last = self.calendar.next_session(last)
        days = self.calendar.sessions(date.fromordinal(last.toordinal() - 14), last)
        return self.ledger.day_trades_on(set(days[-5:]))

    # ------------------------------------------------------------------ internals

    def _check_account(self, spec: OrderSpec, fractional: bool, last: Decimal, now: datetime) -> Decimal:
        """Refuse what the account cannot do; returns the buying power the order reserves."""
        position = self.ledger.qty(spec.symbol)
        requested = spec.qty if spec.qty is not None else ((spec.notional or ZERO) / last).quantize(
            QTY_STEP, rounding=ROUND_DOWN)
        reserve = ZERO
        if spec.order_class in (OrderClass.BRACKET, OrderClass.OTO) and (
                (spec.side is Side.SELL and position > 0) or (spec.side is Side.BUY and position < 0)):
            raise invalid("bracket orders must be entry orders")
        if spec.side is Side.SELL:
            self._check_sell(spec, requested, position, fractional, last)
        else:
            valuation = buy_valuation(spec.kind, spec.limit_price, spec.stop_price, last, self.rules.collar_pct)
            cost = spec.notional if spec.notional is not None else money(requested * valuation)
            reserve = cost + self._buy_fee(requested, valuation)
            buying_power = max(self.ledger.cash - self._reserved, ZERO)
            if reserve > buying_power:
                raise insufficient_buying_power(buying_power, reserve)
        if self.rules.wash_trade_protection:
            for existing in self.book.opposite_open(spec.symbol, spec.side):
                if could_wash(existing, spec):
                    raise wash_trade(existing.id)
        if self.rules.pdt_protection and self.daytrade_count() >= self.rules.pdt_max_day_trades and (
                self.last_equity < self.rules.pdt_equity_threshold):
            opposite = list(self.book.opposite_open(spec.symbol, spec.side))
            if could_day_trade(spec, position, self.ledger.bought_today(spec.symbol, ny_date(now)), opposite):
                raise pattern_day_trader()
        return reserve

    def _check_sell(self, spec: OrderSpec, requested: Decimal, position: Decimal, fractional: bool,
                    last: Decimal) -> None:
        shorting = self.rules.allow_short and position <= 0
        if shorting:
            if fractional:
                raise invalid("fractional orders cannot be sold short")
            cost = money(requested * last * (1 + _SHORT_COLLAR))
            buying_power = max(self.ledger.cash - self._reserved, ZERO)
            if cost > buying_power:
                raise insufficient_buying_power(buying_power, cost)
            return
        held, related = self.book.held(spec.symbol, self._prices.__getitem__)
        available = max(position - held, ZERO)
        if requested > available:
            raise insufficient_qty(spec.symbol, requested, available, max(position, ZERO), held, related)

    def _accept(self, spec: OrderSpec, cid: str, fractional: bool, reserve: Decimal, now: datetime) -> ExchangeOrder:
        day = self._session_day_for(now)
        status = Status.NEW if self._in_session(now) else Status.ACCEPTED
        oco = spec.order_class is OrderClass.OCO
        leg_side = spec.side if oco else Side.SELL if spec.side is Side.BUY else Side.BUY
        parent = ExchangeOrder(
            id=self._ids.new(), client_order_id=cid, seq=self.book.next_seq(), symbol=spec.symbol, side=spec.side,
            kind=spec.kind, tif=spec.tif, order_class=spec.order_class, role=Role.TAKE_PROFIT if oco else Role.ENTRY,
            qty=spec.qty, notional=spec.notional,
            limit_price=spec.take_profit_limit if oco and spec.take_profit_limit else spec.limit_price,
            stop_price=None if oco else spec.stop_price, status=status, submitted_at=now, session_day=day,
            fractional=fractional, reason=spec.reason, active_since=now, updated_at=now, reserved=reserve,
        )
        self.book.add(parent)
        self._reserved += reserve
        for role, kind, limit, stop in self._leg_specs(spec):
            leg = ExchangeOrder(
                id=self._ids.new(), client_order_id=self._ids.new(), seq=self.book.next_seq(), symbol=spec.symbol,
                side=leg_side, kind=kind,
                tif=spec.tif, order_class=spec.order_class, role=role, qty=spec.qty, notional=None,
                limit_price=limit, stop_price=stop, status=Status.HELD, submitted_at=now, session_day=day,
                fractional=False, parent_id=parent.id, active_since=now if oco else None, updated_at=now,
            )
            parent.leg_ids.append(leg.id)
            self.book.add(leg)
        return parent

    @staticmethod
    def _leg_specs(spec: OrderSpec) -> Iterable[tuple[Role, Kind, Decimal | None, Decimal | None]]:
        if spec.order_class in (OrderClass.BRACKET, OrderClass.OTO) and spec.take_profit_limit is not None:
            yield Role.TAKE_PROFIT, Kind.LIMIT, spec.take_profit_limit, None
        if spec.order_class in (OrderClass.BRACKET, OrderClass.OTO, OrderClass.OCO) and spec.stop_loss_stop:
            kind = Kind.STOP_LIMIT if spec.stop_loss_limit is not None else Kind.STOP
            yield Role.STOP_LOSS, kind, spec.stop_loss_limit, spec.stop_loss_stop
