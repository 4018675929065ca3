"""Alpaca's user protections that look at the account's other orders: wash trades and pattern day trading.

Sources: https://docs.alpaca.markets/docs/user-protection (see docs/exchange-model.md).
"""

from __future__ import annotations

from decimal import Decimal

from adapters.inmemory.exchange.model import ExchangeOrder, Kind, OrderSpec
from domain.models.trading import Side

_LIMITED = (Kind.LIMIT, Kind.STOP_LIMIT)


def could_wash(existing: ExchangeOrder, new: OrderSpec) -> bool:
    """Whether `new` could execute against the open order `existing` (Alpaca's wash-trade table).

    An opposite-side pair is refused whenever either order is a market or stop order; between two limit or
    stop-limit orders only when the buy's limit is at or above the sell's limit.
    """
    if existing.side is new.side or existing.symbol != new.symbol:
        return False
    if existing.kind not in _LIMITED or new.kind not in _LIMITED:
        return True
    if existing.side is Side.BUY:
        buy_limit, sell_limit = existing.limit_price, new.limit_price
    else:
        buy_limit, sell_limit = new.limit_price, existing.limit_price
    return buy_limit is not None and sell_limit is not None and buy_limit >= sell_limit


def could_day_trade(new: OrderSpec, position: Decimal, bought_today: Decimal,
                    open_opposite: list[ExchangeOrder]) -> bool:
    """Whether `new` could complete a day trade: it sells shares bought today, or it pairs with an open order
    on the other side in the same symbol (pending orders may fill in any order). Protective legs are not
    counted as pending orders."""
    if new.side is Side.SELL and position > 0 and bought_today > 0:
        return True
    return any(o.parent_id is None for o in open_opposite)
