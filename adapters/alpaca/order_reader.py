"""Reading orders from Alpaca's trading API: by id, by client order id, the open ones, with legs.

Legs carry no reference to their parent, so the reader remembers every leg it has seen nested
under a parent (the submit answer, open orders, any nested read). A leg met on its own whose
parent is unknown is looked up once among the symbol's orders, read nested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import structlog
from alpaca.trading.models import Order as SdkOrder

from adapters.alpaca.orders import ADVANCED, fill_reason, is_leg, order_from_sdk, sdk_order, status_of, with_legs
from adapters.alpaca.rest import AlpacaRest
from adapters.alpaca.sdk import as_list, parsed
from domain.errors import BrokerError, NotFoundError
from domain.models.trading import Order

log = structlog.get_logger(__name__)

ORDERS = "/v2/orders"
BY_CLIENT_ID = "/v2/orders:by_client_order_id"
MAX_ORDERS = 500
NESTED = {"nested": "true"}


def order_path(broker_order_id: str) -> str:
    """The path of one order."""
    return f"{ORDERS}/{quote(broker_order_id, safe='')}"


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What a fill needs to know about its order: Quorum's client order id and why it filled."""

    client_order_id: str
    reason: str


class OrderReader:
    """Orders as domain `Order`s, legs with `parent_id`, with per-order caches.

    Args:
        rest: the trading API client.
    """

    def __init__(self, rest: AlpacaRest) -> None:
        self._rest = rest
        self._parents: dict[str, str] = {}
        self._facts: dict[str, OrderFacts] = {}

    def remember(self, order: SdkOrder) -> None:
        """Note the parent of every leg nested under `order`."""
        for item, parent_id in with_legs(order):
            if parent_id is not None:
                self._parents[str(item.id)] = parent_id

    async def to_domain(self, order: SdkOrder) -> Order:
        """`order` as a domain `Order`; a leg gets its parent's id.

        Raises:
            BrokerError: the order cannot be expressed as a domain order.
        """
        self.remember(order)
        parent_id = await self.parent_of(order) if is_leg(order) else None
        return parsed("an order", BrokerError, order_from_sdk, order, parent_id)

    async def read(self, broker_order_id: str) -> SdkOrder:
        """One order read nested (its legs rolled up under it).

        Raises:
            NotFoundError: Alpaca has no such order.
        """
        body = await self._rest.request("GET", order_path(broker_order_id), params=NESTED)
        order = sdk_order(body)
        self.remember(order)
        return order

    async def get(self, broker_order_id: str) -> Order | None:
        """The order with this broker order id (a leg with `parent_id`), or None."""
        try:
            order = await self.read(broker_order_id)
        except NotFoundError:
            return None
        return await self.to_domain(order)

    async def by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client order id, or None.

        GET /v2/orders:by_client_order_id takes no ``nested`` parameter, so an advanced order that comes
        back without legs is read again by id, nested, to tell a parent from a leg.
        """
        try:
            body = await self._rest.request("GET", BY_CLIENT_ID, params={"client_order_id": client_order_id})
        except NotFoundError:
            return None
        order = sdk_order(body)
        if order.order_class in ADVANCED and not order.legs:
            order = await self.read(str(order.id))
        return await self.to_domain(order)

    async def open_orders(self) -> list[Order]:
        """Orders that may still fill, oldest first, each leg as its own order after its parent."""
        params = {"status": "open", "limit": MAX_ORDERS, "direction": "asc", **NESTED}
        items = as_list(await self._rest.request("GET", ORDERS, params=params), "open orders", BrokerError)
        if len(items) >= MAX_ORDERS:
            log.warning("alpaca_open_orders_truncated", limit=MAX_ORDERS)
        orders: list[Order] = []
        for item in items:
            top = sdk_order(item)
            self.remember(top)
            for order, parent_id in with_legs(top):
                if not status_of(order).is_open:
                    continue
                if order.qty is None:
                    log.warning("alpaca_notional_order_skipped", broker_order_id=str(order.id), symbol=order.symbol)
                    continue
                if parent_id is None and is_leg(order):
                    parent_id = await self.parent_of(order)
                orders.append(parsed("an order", BrokerError, order_from_sdk, order, parent_id))
        return orders

    async def parent_of(self, leg: SdkOrder) -> str | None:
        """The broker id of the parent of `leg`: remembered, else searched among the symbol's orders."""
        leg_id = str(leg.id)
        if leg_id in self._parents:
            return self._parents[leg_id]
        params: dict[str, Any] = {"status": "all", "limit": MAX_ORDERS, "direction": "desc", **NESTED}
        if leg.symbol:
            params["symbols"] = leg.symbol
        items = as_list(await self._rest.request("GET", ORDERS, params=params), "orders", BrokerError)
        for item in items:
            self.remember(sdk_order(item))
        parent = self._parents.get(leg_id)
        if parent is None:
            log.warning("alpaca_leg_parent_not_found", broker_order_id=leg_id, symbol=leg.symbol)
        return parent

    async def facts(self, broker_order_id: str) -> OrderFacts:
        """Client order id and fill reason of an order (read once, then cached)."""
        if broker_order_id not in self._facts:
            order = await self.read(broker_order_id)
            leg = is_leg(order) or broker_order_id in self._parents
            self._facts[broker_order_id] = OrderFacts(order.client_order_id, fill_reason(order, leg))
        return self._facts[broker_order_id]
