"""Broker account summary."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Account:
    """What the broker says about the account.

    `last_equity` is the equity at the close of the previous session (Alpaca's `last_equity`), the
    base of the daily loss; None when the broker does not say.
    """

    cash: Decimal
    equity: Decimal
    buying_power: Decimal
    day_trade_count: int = 0
    pattern_day_trader: bool = False
    trading_blocked: bool = False
    status: str = "ACTIVE"
    currency: str = "USD"
    last_equity: Decimal | None = None
