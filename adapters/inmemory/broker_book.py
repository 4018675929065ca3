"""The order book of the simulated broker: validation, resting orders, bracket legs, expiry, reservations."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from adapters.inmemory.broker_rules import is_fractional, qty_error, tick_error
from domain.errors import InsufficientBuyingPowerError, NotFoundError, OrderRejectedError
from domain.models.trading import Fill, Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from domain.money import ZERO, money
from domain.ports.clock import Clock, MarketCalendar
from domain.risk.config import FeeSettings
from domain.risk.fees import fill_price, order_fee


@dataclass
class Working:
    """An order and what the book needs to know about it."""

    order: Order
    seq: int
    target_day: date
    fractional: bool
    parent: str | None = None
    is_stop_leg: bool = False
    filled_day: date | None = None
    reject_reason: str = ""


class OrderBook:
    """Order storage and rules shared by `InMemoryBroker`; it knows nothing of cash beyond two hooks."""

    def __init__(
        self,
        fees: FeeSettings,
        clock: Clock,
        calendar: MarketCalendar,
        fractionable: dict[str, bool],
        allow_short: bool,
    ) -> None:
        self._fees = fees
        self._clock = clock
        self._calendar = calendar
        self._fractionable = fractionable
        self._allow_short = allow_short
        self._book: dict[str, Working] = {}
        self._open: dict[str, Working] = {}
        self._broker_ids: dict[str, str] = {}
        self._fills: list[Fill] = []
        self._last_price: dict[str, Decimal] = {}
        self._open_day: date | None = None
        self._opens: dict[str, Decimal] = {}
        self._closed = True

    # hooks the broker provides
    def _held(self, symbol: str) -> Decimal:
        raise NotImplementedError

    def _cash_now(self) -> Decimal:
        raise NotImplementedError

    def rejection_reason(self, client_order_id: str) -> str:
        """Why an accepted order was rejected when it came to fill ("" if it was not)."""
        w = self._book.get(client_order_id)
        return w.reject_reason if w else ""

    def _now(self) -> datetime:
        now = self._clock.now()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"the clock returned a naive datetime {now!r}")
        return now

    def _working(self) -> list[Working]:
        """Open orders, oldest first."""
        return sorted(self._open.values(), key=lambda w: w.seq)

    def _target_session(self, now: datetime) -> date:
        """The session an order sent at `now` is for: the current one, or the next when the market is closed."""
        return self._calendar.next_session(self._calendar.previous_session(now))

    def _fillable_open(self, symbol: str, now: datetime) -> Decimal | None:
        """Today's open of `symbol` when the session fed last is in progress at `now`, else None."""
        day = self._open_day
        if day is None or self._closed:
            return None
        if not self._calendar.session_open(day) <= now < self._calendar.session_close(day):
            return None
        return self._opens.get(symbol)

    @staticmethod
    def _checked_price(symbol: str, value: object) -> Decimal:
        if isinstance(value, float) or not isinstance(value, Decimal | int):
            raise TypeError(f"{symbol}: prices fed to the broker must be Decimal, got {type(value).__name__}")
        d = Decimal(value)
        if not d.is_finite() or d <= 0:
            raise ValueError(f"{symbol}: price must be positive, got {value}")
        return d

    def _reference(self, req: OrderRequest) -> Decimal:
        """Price a buy is expected to pay per share: limit, triggered stop or the current price plus slippage."""
        if req.type is OrderType.LIMIT and req.limit_price is not None:
            return req.limit_price
        last = self._fillable_open(req.symbol, self._now()) or self._last_price[req.symbol]
        if req.type is OrderType.STOP and req.stop_price is not None:
            last = max(last, req.stop_price)
        return fill_price(Side.BUY, last, self._fees)

    def _reserved_cash(self, excluding: str | None = None) -> Decimal:
        total = ZERO
        for w in self._open.values():
            req = w.order.request
            if req.side is Side.BUY and req.client_order_id != excluding:
                ref = self._reference(req)
                total += money(req.qty * ref) + order_fee(Side.BUY, req.qty, ref, self._fees)
        return total

    def _reserved_qty(self, symbol: str) -> Decimal:
        return sum(
            (
                w.order.request.qty
                for w in self._open.values()
                if w.parent is None and w.order.symbol == symbol and w.order.request.side is Side.SELL
            ),
            ZERO,
        )

    def _validate(self, req: OrderRequest) -> bool:
        """Check `req` against the account; returns whether it is a fractional order. Changes nothing."""
        sym = req.symbol
        if sym not in self._last_price:
            raise OrderRejectedError(f"unknown symbol {sym!r}: no price has been seen for it")
        problems = [qty_error(req.qty)]
        problems += [
            tick_error(n, getattr(req, n))
            for n in ("limit_price", "stop_price", "take_profit_price")
            if getattr(req, n) is not None
        ]
        if req.type is OrderType.LIMIT and req.limit_price is None:
            problems.append("a limit order needs limit_price")
        if req.type is OrderType.STOP and req.stop_price is None:
            problems.append("a stop order needs stop_price")
        if is_fractional(req.qty):
            if not self._fractionable.get(sym, True):
                problems.append(f"{sym} is not fractionable: qty {req.qty} must be a whole number")
            if req.time_in_force is not TimeInForce.DAY:
                problems.append("fractional orders must be DAY orders")
        if first := next((p for p in problems if p), None):
            raise OrderRejectedError(first)
        fractional = req.fractional or is_fractional(req.qty)
        if req.side is Side.SELL:
            available = self._held(sym) - self._reserved_qty(sym)
            if req.qty > available and not self._allow_short:
                raise OrderRejectedError(f"insufficient qty: selling {req.qty} {sym}, {max(available, ZERO)} available")
            if req.qty > available and is_fractional(req.qty):
                raise OrderRejectedError("fractional short sales are not allowed")
            return fractional
        ref = self._reference(req)
        cost = money(req.qty * ref) + order_fee(Side.BUY, req.qty, ref, self._fees)
        available = self._cash_now() - self._reserved_cash()
        if cost > available:
            raise InsufficientBuyingPowerError(
                f"buying {req.qty} {sym} needs about {cost}, buying power is {available}"
            )
        if req.type is not OrderType.STOP and not fractional:
            if req.stop_price is not None and req.stop_price >= ref:
                raise OrderRejectedError(f"stop_price {req.stop_price} must be below the entry price (~{ref})")
            if req.take_profit_price is not None and req.take_profit_price <= ref:
                raise OrderRejectedError(f"take_profit_price {req.take_profit_price} must be above the entry (~{ref})")
        return fractional

    def _add(
        self, req: OrderRequest, at: datetime, target: date, fractional: bool, parent: str | None = None
    ) -> Working:
        seq = len(self._book) + 1
        order = Order(req, f"sim-{seq:06d}", OrderStatus.ACCEPTED, at)
        w = Working(order, seq, target, fractional, parent, parent is not None and req.type is OrderType.STOP)
        self._book[req.client_order_id] = w
        self._open[req.client_order_id] = w
        self._broker_ids[order.broker_order_id] = req.client_order_id
        return w

    def _set_status(
        self, w: Working, status: OrderStatus, *, filled_qty: Decimal | None = None, avg_price: Decimal | None = None
    ) -> None:
        w.order = replace(
            w.order,
            status=status,
            filled_qty=w.order.filled_qty if filled_qty is None else filled_qty,
            filled_avg_price=w.order.filled_avg_price if avg_price is None else avg_price,
        )
        if not status.is_open:
            self._open.pop(w.order.client_order_id, None)

    def _by_broker_id(self, broker_order_id: str) -> Working:
        cid = self._broker_ids.get(broker_order_id)
        if cid is None:
            raise NotFoundError(f"no order {broker_order_id!r}")
        return self._book[cid]

    def _cancel(self, w: Working) -> None:
        if not w.order.status.is_open:
            raise OrderRejectedError(f"order {w.order.broker_order_id} is {w.order.status} and cannot be cancelled")
        self._set_status(w, OrderStatus.CANCELED)
        if w.parent is not None:
            self._cancel_siblings(w)

    def _cancel_siblings(self, w: Working) -> None:
        for other in self._working():
            if other.parent == w.parent and other is not w:
                self._set_status(other, OrderStatus.CANCELED)

    def _reject(self, w: Working, reason: str) -> None:
        w.reject_reason = reason
        self._set_status(w, OrderStatus.REJECTED)

    def _leg_id(self, parent: str, suffix: str) -> str:
        cid, n = f"{parent}-{suffix}", 1
        while cid in self._book:
            n += 1
            cid = f"{parent}-{suffix}{n}"
        return cid

    def _add_legs(self, parent: Working, at: datetime) -> None:
        req = parent.order.request
        if req.type is OrderType.STOP:
            return
        target = self._target_session(at) if self._closed else (self._open_day or self._target_session(at))
        cid, qty, gtc = req.client_order_id, req.qty, TimeInForce.GTC
        legs = []
        if req.stop_price is not None:
            sl_id = self._leg_id(cid, "sl")
            legs.append(
                OrderRequest(
                    sl_id,
                    req.symbol,
                    Side.SELL,
                    qty,
                    OrderType.STOP,
                    stop_price=req.stop_price,
                    time_in_force=gtc,
                    reason="protective stop",
                )
            )
        if req.take_profit_price is not None:
            tp_id = self._leg_id(cid, "tp")
            legs.append(
                OrderRequest(
                    tp_id,
                    req.symbol,
                    Side.SELL,
                    qty,
                    OrderType.LIMIT,
                    limit_price=req.take_profit_price,
                    time_in_force=gtc,
                    reason="take profit",
                )
            )
        for leg in legs:
            self._add(leg, at, target, False, parent=cid)

    def _trim_legs(self, symbol: str, held: Decimal) -> None:
        """Shrink or cancel protective legs so they never sell more than is held (oldest brackets kept first)."""
        remaining = max(held, ZERO)
        groups: dict[str, list[Working]] = {}
        for w in self._working():
            if w.parent is not None and w.order.symbol == symbol:
                groups.setdefault(w.parent, []).append(w)
        for legs in groups.values():
            qty = legs[0].order.request.qty
            keep = min(qty, remaining)
            remaining -= keep
            for w in legs:
                if keep == 0:
                    self._set_status(w, OrderStatus.CANCELED)
                elif keep < qty:
                    w.order = replace(w.order, request=replace(w.order.request, qty=keep))

    def _expire(self, last_day: date, *, inclusive: bool) -> None:
        for w in self._working():
            req = w.order.request
            due = w.target_day <= last_day if inclusive else w.target_day < last_day
            if req.time_in_force is TimeInForce.DAY and due:
                self._set_status(w, OrderStatus.EXPIRED)

    def _expire_before(self, day: date) -> None:
        self._expire(day, inclusive=False)

    def _expire_through(self, day: date) -> None:
        self._expire(day, inclusive=True)
