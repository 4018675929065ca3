"""Alpaca account, positions, assets and fills (validated by alpaca-py models) as domain models.

Money and quantities are Decimal (from Alpaca's decimal strings), times timezone-aware UTC. Each
function either returns a complete domain object or raises (`ValueError` and friends), which the
callers turn into one typed error naming what could not be read.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from alpaca.trading.enums import PositionSide
from alpaca.trading.models import Asset as SdkAsset
from alpaca.trading.models import Position as SdkPosition
from alpaca.trading.models import TradeAccount

from adapters.alpaca.sdk import FillActivity
from adapters.alpaca.wire import dec, opt_dec, utc
from domain.models.account import Account
from domain.models.market import Asset
from domain.models.trading import Fill, Position, Side
from domain.money import ZERO


def _required(value: str | None, name: str) -> str:
    if value is None:
        raise ValueError(f"{name} is missing")
    return value


def account_from_sdk(a: TradeAccount) -> Account:
    """GET /v2/account. `last_equity` is the equity at the previous close (the daily loss base)."""
    return Account(
        cash=dec(_required(a.cash, "cash")),
        equity=dec(_required(a.equity, "equity")),
        buying_power=dec(_required(a.buying_power, "buying_power")),
        day_trade_count=a.daytrade_count or 0,
        pattern_day_trader=bool(a.pattern_day_trader),
        trading_blocked=bool(a.trading_blocked or a.account_blocked),
        status=a.status.value,
        currency=a.currency or "USD",
        last_equity=opt_dec(a.last_equity),
    )


def position_from_sdk(p: SdkPosition) -> Position:
    """One item of GET /v2/positions; `qty` (and `qty_available`) negative for a short.

    The broker does not say when a position was opened nor where its stop is: `opened_at` and
    `stop_price` stay None for Quorum to merge in from its own records.
    """
    short = p.side is PositionSide.SHORT

    def signed(value: str | None) -> Decimal | None:
        number = opt_dec(value)
        if number is not None and short and number > 0:
            return -number
        return number

    qty = signed(p.qty)
    if qty is None:
        raise ValueError("qty is missing")
    return Position(
        symbol=p.symbol.strip(),
        qty=qty,
        avg_entry_price=dec(p.avg_entry_price),
        fractional=qty != qty.to_integral_value(),
        qty_available=signed(p.qty_available),
    )


def asset_from_sdk(a: SdkAsset) -> Asset:
    """One item of GET /v2/assets."""
    return Asset(
        symbol=a.symbol.strip(),
        exchange=a.exchange.value,
        tradable=a.tradable,
        shortable=a.shortable,
        fractionable=a.fractionable,
        status=a.status.value,
        asset_class=a.asset_class.value,
        name=a.name or "",
    )


def fill_from_activity(raw: dict[str, Any], activity: FillActivity, client_order_id: str, reason: str) -> Fill:
    """One FILL account activity; qty and price from the raw decimal text (the SDK reads them as float).

    Alpaca charges no commission; regulatory fees are separate activities, so `fee` is zero.
    """
    return Fill(
        client_order_id=client_order_id,
        symbol=activity.symbol.strip(),
        side=Side(activity.side.value),
        qty=dec(raw["qty"]),
        price=dec(raw["price"]),
        fee=ZERO,
        at=utc(activity.transaction_time),
        reason=reason,
    )
