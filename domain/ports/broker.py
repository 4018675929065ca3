"""Broker port: account, positions and orders. The broker is the source of truth."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from domain.models.account import Account
from domain.models.trading import Fill, Order, OrderRequest, Position


@runtime_checkable
class Broker(Protocol):
    """Executes orders. Errors are raised as `domain.errors.BrokerError` subclasses."""

    @property
    def is_paper(self) -> bool:
        """Whether orders move simulated (paper) money."""
        ...

    async def account(self) -> Account:
        """Cash, equity, buying power and day-trade count."""
        ...

    async def positions(self) -> list[Position]:
        """Open positions."""
        ...

    async def open_orders(self) -> list[Order]:
        """Orders that may still fill."""
        ...

    async def submit(self, request: OrderRequest) -> Order:
        """Submit an order.

        Idempotent on `request.client_order_id`: when an order with that id
        already exists the broker's existing order is returned and nothing new
        is sent.

        Raises:
            InsufficientBuyingPowerError, OrderRejectedError, BrokerAuthError,
            RateLimitedError, BrokerUnavailableError.
        """
        ...

    async def get_by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client order id, or None."""
        ...

    async def cancel(self, broker_order_id: str) -> None:
        """Cancel an open order."""
        ...

    async def fills_since(self, since: datetime) -> list[Fill]:
        """Executions at or after `since`, oldest first."""
        ...
