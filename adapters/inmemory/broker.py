"""InMemoryBroker: the `Broker` port on the exchange model (adapters.inmemory.exchange), for backtests and tests.

It keeps Alpaca's rules as strictly as the Alpaca-wire emulator does, because both run the same model:
an order is accepted by `submit` and fills later, at the next price the driver feeds
(`on_session_open`, `on_prices`, `on_session_close`); open sell orders hold their shares; DAY orders and their
legs expire at the close; buys must fit the buying power at a collared price; wash trades and (by default)
pattern day trades are refused. Cash only moves through fills (`Fill.cash_delta`) and recorded deposits, so
replaying the fills from the starting cash gives the cash to the cent. Time comes only from the injected Clock
and the driver's calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

from adapters.inmemory.broker_orders import (
    account_from_view,
    order_from_exchange,
    position_from_view,
    spec_from_request,
)
from adapters.inmemory.exchange import (
    OHLC,
    CashActivity,
    CashMovement,
    Exchange,
    ExchangeOrder,
    ExchangeRules,
    Rejection,
)
from domain.models.account import Account
from domain.models.cash_transfer import TRANSFER_KINDS, CashTransfer
from domain.models.trading import Fill, Order, OrderRequest, Portfolio, Position
from domain.ports.broker import Broker
from domain.ports.clock import Clock, MarketCalendar
from domain.risk.config import FeeSettings

__all__ = ["OHLC", "CashMovement", "InMemoryBroker"]


class InMemoryBroker(Broker):
    """Implements the `Broker` port in memory: an Alpaca cash account without margin.

    Args:
        starting_cash: cash at the start (USD, whole cents).
        fees: slippage and fees applied to every fill.
        clock: the only source of time for orders.
        calendar: the exchange calendar (sessions, open and close times).
        fractionable: symbol -> whether fractional quantities are allowed (absent: allowed).
        allow_short: whether selling more than is held opens a short position.
        rules: the exchange's rule parameters (collar, PDT protection...); `ExchangeRules()` when None.
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
        rules: ExchangeRules | None = None,
    ) -> None:
        chosen = rules or ExchangeRules()
        if allow_short:
            chosen = replace(chosen, allow_short=True)
        self._exchange = Exchange(starting_cash, fees, clock, calendar, rules=chosen, fractionable=fractionable,
                                  id_seed=0)
        self.starting_cash = starting_cash
        self._calendar = calendar

    @property
    def exchange(self) -> Exchange:
        """The exchange model underneath (for inspection in tests; drive it through this broker)."""
        return self._exchange

    # ------------------------------------------------------------------ port

    @property
    def is_paper(self) -> bool:
        """Always True: the money is simulated."""
        return True

    async def account(self) -> Account:
        """Cash, equity at the last known prices, buying power (cash less open buys), last close's equity."""
        return account_from_view(self._exchange.account())

    async def positions(self) -> list[Position]:
        """Open positions by symbol, with `qty_available` (no opening time, no stop)."""
        return [position_from_view(v) for v in self._exchange.positions()]

    async def open_orders(self) -> list[Order]:
        """Orders that may still fill, legs included as their own orders with `parent_id`, oldest first."""
        return [self._order(o) for o in self._exchange.open_orders()]

    async def submit(self, request: OrderRequest) -> Order:
        """Send an order; it is accepted here and fills at a later price. Idempotent on `client_order_id`: a
        reused id returns the existing order and sends nothing.

        Raises:
            OrderRejectedError, InsufficientBuyingPowerError, InsufficientQtyError, WashTradeError,
            PatternDayTraderError: as Alpaca would refuse it.
        """
        existing = self._exchange.by_client_id(request.client_order_id)
        if existing is not None:
            return self._order(existing)
        try:
            order = self._exchange.submit(spec_from_request(request))
        except Rejection as refused:
            raise refused.to_domain_error() from None
        return self._order(order)

    async def get_by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client order id, or None."""
        order = self._exchange.by_client_id(client_order_id)
        return self._order(order) if order is not None else None

    async def get_order(self, broker_order_id: str) -> Order | None:
        """The order with this broker order id (legs included), or None."""
        order = self._exchange.get(broker_order_id)
        return self._order(order) if order is not None else None

    async def cancel(self, broker_order_id: str) -> None:
        """Cancel an open order and return once it is cancelled (a leg takes its sibling with it).

        Raises:
            NotFoundError: no such order.
            OrderRejectedError: the order is no longer open.
        """
        try:
            self._exchange.cancel(broker_order_id)
        except Rejection as refused:
            raise refused.to_domain_error() from None

    async def fills_since(self, since: datetime) -> list[Fill]:
        """Executions at or after `since`, oldest first."""
        if since.tzinfo is None or since.utcoffset() is None:
            raise ValueError(f"since must be timezone-aware, got naive {since!r}")
        return self._exchange.fills_since(since)

    async def cash_transfers_since(self, since: datetime) -> list[CashTransfer]:
        """Deposits, withdrawals and cash journals at or after `since`, oldest first (the CSD, CSW and JNLC
        account activities `deposit` records)."""
        if since.tzinfo is None or since.utcoffset() is None:
            raise ValueError(f"since must be timezone-aware, got naive {since!r}")
        return [CashTransfer(a.id, a.net_amount, a.at, a.activity_type, a.description)
                for a in self._exchange.activities()
                if isinstance(a, CashActivity) and a.activity_type in TRANSFER_KINDS and a.at >= since]

    # ------------------------------------------------------------------ driver

    def on_session_open(self, day: date, opens: Mapping[str, Decimal]) -> list[Fill]:
        """The session of `day` opened at `opens`: DAY orders of earlier sessions expire, orders waiting for the
        open fill at it (at the open time).

        Raises:
            ValueError: `day` is not a session or is not after the last session fed.
            TypeError: a price is not a Decimal.
        """
        return self._exchange.open_session(day, opens)

    def on_prices(self, at: datetime, prices: Mapping[str, Decimal]) -> list[Fill]:
        """Prices printed at `at` during the open session: market orders sent at or before `at` fill at them (with
        slippage and fees), resting stops and limits they cross execute.

        Raises:
            ValueError: no session is open or `at` is outside it.
        """
        return self._exchange.price_update(at, prices)

    def on_session_close(self, day: date, bars: Mapping[str, OHLC]) -> list[Fill]:
        """The session of `day` closed with these (open, high, low, close) bars: resting stops and limits the day's
        range touched execute (stops first), market orders still waiting fill at the close, DAY orders and their
        legs expire, and the equity at the closes becomes `last_equity`. A session never opened is opened first
        at the bars' opens.

        Returns:
            The fills made (those of the implicit open included).
        """
        if any(len(b) != 4 for b in bars.values()):
            raise ValueError("bars must be (open, high, low, close) tuples")
        ex = self._exchange
        made: list[Fill] = []
        if ex.session != day:
            if ex.session is None and self._closed_already(day):
                raise ValueError(f"the session of {day} was already closed")
            made += ex.open_session(day, {s: b[0] for s, b in bars.items()})
        return made + ex.close_session(day, {s: b[3] for s, b in bars.items()}, bars)

    def deposit(self, amount: Decimal, at: datetime | None = None, *, journal: bool = False) -> None:
        """Add (positive) or withdraw (negative) cash that is not profit; recorded in `cash_movements` and as a
        CSD/CSW account activity (a JNLC cash journal when `journal`), listed by `cash_transfers_since`.

        Raises:
            InsufficientBuyingPowerError: a withdrawal larger than the cash not reserved by open buys.
        """
        self._exchange.deposit(amount, at, journal=journal)

    # ------------------------------------------------------------------ extras

    @property
    def cash(self) -> Decimal:
        """Cash now."""
        return self._exchange.ledger.cash

    @property
    def portfolio(self) -> Portfolio:
        """Cash, positions (no opening time, no stop) and net deposits: a snapshot."""
        ledger = self._exchange.ledger
        positions = {v.symbol: position_from_view(v) for v in self._exchange.positions()}
        return Portfolio(cash=ledger.cash, positions=positions, net_deposits=ledger.net_deposits)

    @property
    def cash_movements(self) -> list[CashMovement]:
        """Every deposit and withdrawal, oldest first."""
        return list(self._exchange.ledger.movements)

    @property
    def fills(self) -> list[Fill]:
        """Every fill, in execution order."""
        return self._exchange.fills

    @property
    def last_prices(self) -> dict[str, Decimal]:
        """Last known price per symbol."""
        return self._exchange.last_prices

    def all_orders(self) -> list[Order]:
        """Every order ever accepted (legs included), oldest first."""
        return [self._order(o) for o in self._exchange.orders()]

    def equity(self) -> Decimal:
        """Cash plus every position at its last known price."""
        return self._exchange.equity()

    def rejection_reason(self, client_order_id: str) -> str:
        """Why an accepted order was rejected when it came to fill ("" if it was not)."""
        order = self._exchange.by_client_id(client_order_id)
        return order.reject_reason if order is not None else ""

    def _order(self, order: ExchangeOrder) -> Order:
        return order_from_exchange(order, self._exchange.legs(order))

    def _closed_already(self, day: date) -> bool:
        last = self._exchange.last_closed_session
        return last is not None and day <= last
