"""Broker port: account, positions and orders. The broker is the source of truth."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from domain.models.account import Account
from domain.models.cash_transfer import CashTransfer
from domain.models.trading import Fill, Order, OrderRequest, Position


@runtime_checkable
class Broker(Protocol):
    """Executes orders. Errors are raised as `domain.errors.BrokerError` subclasses.

    The rules are Alpaca's, and the in-memory broker keeps them as strictly as Alpaca does: an order is
    accepted first and filled later (a market order at the next price, after `submit` has returned);
    open sell orders, protective legs included, hold the shares they may sell; a DAY order and its legs
    expire at the close; a buy must fit the buying power at a collared price.
    """

    @property
    def is_paper(self) -> bool:
        """Whether orders move simulated (paper) money."""
        ...

    async def account(self) -> Account:
        """Cash, equity, buying power, the previous close's equity and the day-trade count."""
        ...

    async def positions(self) -> list[Position]:
        """Open positions with `qty_available` (no opening time: brokers do not report it)."""
        ...

    async def open_orders(self) -> list[Order]:
        """Orders that may still fill, oldest first; protective legs are listed as their own orders with
        `parent_id` set to their parent's broker order id."""
        ...

    async def submit(self, request: OrderRequest) -> Order:
        """Submit an order.

        Idempotent on `request.client_order_id`: when an order with that id
        already exists the broker's existing order is returned and nothing new
        is sent.

        A whole-share buy with `stop_price` is sent with a protective stop leg (and a take-profit leg
        with `take_profit_price`); the legs take the order's time in force.

        Raises:
            InsufficientBuyingPowerError, InsufficientQtyError (shares held by open orders),
            WashTradeError, PatternDayTraderError, OrderRejectedError, ForbiddenError, BrokerAuthError,
            RateLimitedError, BrokerUnavailableError.
        """
        ...

    async def get_by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client order id, or None."""
        ...

    async def get_order(self, broker_order_id: str) -> Order | None:
        """The order with this broker order id (legs included), or None."""
        ...

    async def cancel(self, broker_order_id: str) -> None:
        """Cancel an open order and return once the broker no longer holds it open.

        Cancelling one leg of a bracket cancels its sibling too. An order that filled before the
        cancel took effect stays filled (read it with `get_order`).

        Raises:
            NotFoundError: no such order.
            OrderRejectedError: the order is no longer open (filled, expired).
            BrokerUnavailableError: the cancellation was not confirmed in time (the order may still be open).
        """
        ...

    async def fills_since(self, since: datetime) -> list[Fill]:
        """Executions at or after `since` (a timezone-aware time), oldest first."""
        ...

    async def cash_transfers_since(self, since: datetime) -> list[CashTransfer]:
        """Deposits, withdrawals and cash journals (Alpaca's CSD, CSW and JNLC activities) at or after `since`
        (timezone-aware), oldest first. Canceled transfers are left out.

        Raises:
            ValueError: `since` is naive.
            BrokerError: the broker could not be read.
        """
        ...
