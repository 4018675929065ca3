"""The order book: every order by id and client order id, the open ones indexed by symbol.

Open sell orders hold the shares they may sell (`held`): a simple order its remaining quantity, the legs of
one bracket/OTO/OCO group their quantity once (they are one-cancels-other). Legs of a parent that has not
filled yet hold nothing: there are no shares yet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import ROUND_DOWN, Decimal

from adapters.inmemory.exchange.model import ExchangeOrder
from domain.models.trading import Side
from domain.money import QTY_STEP, ZERO


class OrderBook:
    """Orders of one account. Open orders are kept per symbol, oldest first."""

    def __init__(self) -> None:
        self._by_id: dict[str, ExchangeOrder] = {}
        self._by_client_id: dict[str, ExchangeOrder] = {}
        self._open: dict[str, dict[str, ExchangeOrder]] = defaultdict(dict)
        self._seq = 0

    def next_seq(self) -> int:
        """A new sequence number (orders are ordered by it)."""
        self._seq += 1
        return self._seq

    def add(self, order: ExchangeOrder) -> None:
        """Store a new order (open)."""
        self._by_id[order.id] = order
        self._by_client_id[order.client_order_id] = order
        self._open[order.symbol][order.id] = order

    def get(self, order_id: str) -> ExchangeOrder | None:
        """The order with this id, or None."""
        return self._by_id.get(order_id)

    def by_client_id(self, client_order_id: str) -> ExchangeOrder | None:
        """The order with this client order id, or None."""
        return self._by_client_id.get(client_order_id)

    def has_client_id(self, client_order_id: str) -> bool:
        """Whether any order ever used this client order id."""
        return client_order_id in self._by_client_id

    def all(self) -> list[ExchangeOrder]:
        """Every order, oldest first."""
        return list(self._by_id.values())

    def open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        """Open orders (of `symbol`, or of every symbol), oldest first."""
        if symbol is not None:
            return list(self._open.get(symbol, {}).values())
        return sorted((o for by_id in self._open.values() for o in by_id.values()), key=lambda o: o.seq)

    def open_symbols(self) -> list[str]:
        """Symbols with at least one open order."""
        return [s for s, by_id in self._open.items() if by_id]

    def closed(self, order: ExchangeOrder) -> None:
        """Take an order that is no longer open out of the open index."""
        self._open.get(order.symbol, {}).pop(order.id, None)

    def group(self, order: ExchangeOrder) -> list[ExchangeOrder]:
        """The parent of `order`'s group followed by its legs."""
        parent = self._by_id[order.group_id]
        return [parent, *(self._by_id[i] for i in parent.leg_ids)]

    def held(self, symbol: str, last_price: Callable[[str], Decimal]) -> tuple[Decimal, list[str]]:
        """Shares of `symbol` held by open active sell orders, and the ids of those orders."""
        per_group: dict[str, Decimal] = {}
        related: list[str] = []
        for o in self._holding_orders(symbol):
            qty = o.remaining_qty
            if qty is None:
                qty = ((o.notional or ZERO) / last_price(symbol)).quantize(QTY_STEP, rounding=ROUND_DOWN)
            per_group[o.group_id] = max(per_group.get(o.group_id, ZERO), qty)
            related.append(o.id)
        return sum(per_group.values(), ZERO), related

    def opposite_open(self, symbol: str, side: Side) -> Iterator[ExchangeOrder]:
        """Open orders of `symbol` on the other side of `side`."""
        for o in self._open.get(symbol, {}).values():
            if o.side is not side:
                yield o

    def _holding_orders(self, symbol: str) -> Iterator[ExchangeOrder]:
        for o in self._open.get(symbol, {}).values():
            if o.side is Side.SELL and o.active_since is not None:
                yield o
