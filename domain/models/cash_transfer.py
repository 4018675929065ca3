"""Money moved into or out of the account that is not profit: deposits, withdrawals and cash journals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

TRANSFER_KINDS = ("CSD", "CSW", "JNLC")
"""Alpaca's activity types of money moved: cash deposit, cash withdrawal, cash journal between accounts."""


@dataclass(frozen=True, slots=True)
class CashTransfer:
    """One deposit (positive `amount`) or withdrawal (negative), as the broker reports it.

    Attributes:
        id: the broker's activity id, unique per transfer (booking is idempotent on it).
        amount: USD, positive in, negative out.
        at: when it happened (timezone-aware; Alpaca dates non-trade activities, the id carries the time).
        kind: "CSD" (deposit), "CSW" (withdrawal) or "JNLC" (cash journal, either sign).
        description: the broker's text, possibly empty.
    """

    id: str
    amount: Decimal
    at: datetime
    kind: str
    description: str = ""
