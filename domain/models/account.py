"""Broker account summary."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Account:
    """What the broker says about the account."""

    cash: Decimal
    equity: Decimal
    buying_power: Decimal
    day_trade_count: int = 0
    pattern_day_trader: bool = False
    trading_blocked: bool = False
    status: str = "ACTIVE"
    currency: str = "USD"
