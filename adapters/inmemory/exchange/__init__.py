"""One exchange model with Alpaca's rules, behind the in-memory broker and the Alpaca-wire emulator.

See `Exchange` and docs/exchange-model.md (every rule with its source).
"""

from adapters.inmemory.exchange.events import OHLC
from adapters.inmemory.exchange.exchange import Exchange
from adapters.inmemory.exchange.ledger import Activity, CashActivity, CashMovement, FillActivity
from adapters.inmemory.exchange.model import (
    AccountView,
    ExchangeOrder,
    Kind,
    OrderClass,
    OrderSpec,
    PositionView,
    Role,
    Status,
    Tif,
)
from adapters.inmemory.exchange.rejections import Rejection, RejectionKind
from adapters.inmemory.exchange.rules import ExchangeRules

__all__ = [
    "OHLC",
    "AccountView",
    "Activity",
    "CashActivity",
    "CashMovement",
    "Exchange",
    "ExchangeOrder",
    "ExchangeRules",
    "FillActivity",
    "Kind",
    "OrderClass",
    "OrderSpec",
    "PositionView",
    "Rejection",
    "RejectionKind",
    "Role",
    "Status",
    "Tif",
]
