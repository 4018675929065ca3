"""The exchange model's views as Alpaca's trading API JSON: decimals as strings, times in RFC 3339.

Shapes follow Alpaca's documented entities and the recorded bodies in ../shared/data/alpaca; a test parses
them with alpaca-py's models (Order, Position, TradeAccount, TradeActivity, Asset, Clock) as a cross-check.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from adapters.inmemory.exchange import AccountView, CashActivity, ExchangeOrder, FillActivity, PositionView, Tif
from adapters.inmemory.exchange.rules import NEW_YORK, fmt
from domain.models.market import Asset
from domain.models.trading import Side
from domain.money import ZERO
from domain.ports.clock import MarketCalendar

ACCOUNT_ID = "6f1c8a3e-5b7d-4e2a-9c41-0d2b7e8f9a10"
_ASSET_NAMESPACE = uuid.UUID("0b7f3a52-2c1e-4d6a-8f8e-3c9d5e1a7b24")
_EXCHANGES = frozenset({"AMEX", "ARCA", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "OTC"})


def rfc3339(at: datetime | None) -> str | None:
    """An aware time as RFC 3339 in UTC with microseconds and "Z" (as Alpaca writes trading times)."""
    if at is None:
        return None
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def num(value: Decimal | None) -> str | None:
    """A Decimal as Alpaca's string number, or None."""
    return None if value is None else fmt(value)


def asset_id(symbol: str) -> str:
    """A stable asset id per symbol."""
    return str(uuid.uuid5(_ASSET_NAMESPACE, symbol))


def exchange_of(asset: Asset | None) -> str:
    """The asset's exchange as one of Alpaca's exchange names."""
    name = asset.exchange.upper() if asset is not None else "NASDAQ"
    return name if name in _EXCHANGES else "NASDAQ"


def order_json(order: ExchangeOrder, legs: list[ExchangeOrder] | None, calendar: MarketCalendar) -> dict[str, Any]:
    """One order; `legs` nested under it when given (nested=true, and the answer to POST /v2/orders)."""
    expires = calendar.session_close(order.session_day) if order.tif is Tif.DAY else None
    intent = "buy_to_open" if order.side is Side.BUY else "sell_to_close"
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "created_at": rfc3339(order.submitted_at),
        "updated_at": rfc3339(order.updated_at or order.submitted_at),
        "submitted_at": rfc3339(order.submitted_at),
        "filled_at": rfc3339(order.filled_at),
        "expired_at": rfc3339(order.expired_at),
        "canceled_at": rfc3339(order.canceled_at),
        "failed_at": rfc3339(order.failed_at),
        "replaced_at": None,
        "replaced_by": None,
        "replaces": None,
        "asset_id": asset_id(order.symbol),
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": num(order.notional),
        "qty": num(order.qty),
        "filled_qty": num(order.filled_qty),
        "filled_avg_price": num(order.filled_avg_price),
        "order_class": order.order_class.value,
        "order_type": order.kind.value,
        "type": order.kind.value,
        "side": order.side.value,
        "position_intent": intent,
        "time_in_force": order.tif.value,
        "limit_price": num(order.limit_price),
        "stop_price": num(order.stop_price),
        "status": order.status.value,
        "extended_hours": False,
        "legs": None if legs is None else [order_json(leg, None, calendar) for leg in legs],
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
        "expires_at": rfc3339(expires),
    }


def position_json(view: PositionView, asset: Asset | None) -> dict[str, Any]:
    """One position: quantity, what is available, prices and P&L; no opening time, no stop."""
    cost = abs(view.cost_basis)
    plpc = view.unrealized_pl / cost if cost else ZERO
    change = (view.current_price - view.lastday_price) / view.lastday_price if view.lastday_price else ZERO
    intraday = (view.current_price - view.lastday_price) * view.qty
    return {
        "asset_id": asset_id(view.symbol),
        "symbol": view.symbol,
        "exchange": exchange_of(asset),
        "asset_class": "us_equity",
        "asset_marginable": True,
        "avg_entry_price": fmt(view.avg_entry_price),
        "qty": fmt(view.qty),
        "qty_available": fmt(view.qty_available),
        "side": view.side,
        "market_value": fmt(view.market_value),
        "cost_basis": fmt(view.cost_basis),
        "unrealized_pl": fmt(view.unrealized_pl),
        "unrealized_plpc": fmt(plpc.quantize(Decimal("0.0000001"))),
        "unrealized_intraday_pl": fmt(intraday.quantize(Decimal("0.01"))),
        "unrealized_intraday_plpc": fmt(change.quantize(Decimal("0.0000001"))),
        "current_price": fmt(view.current_price),
        "lastday_price": fmt(view.lastday_price),
        "change_today": fmt(change.quantize(Decimal("0.0000001"))),
    }


def account_json(view: AccountView, *, created_at: datetime, pdt_fields: bool) -> dict[str, Any]:
    """GET /v2/account for a cash account (multiplier 1). Without `pdt_fields` the body has no
    `pattern_day_trader`, `daytrade_count` or `daytrading_buying_power`, as Alpaca's since 2026-07-06."""
    body: dict[str, Any] = {
        "id": ACCOUNT_ID,
        "account_number": "PA3EMULATOR1",
        "status": view.status,
        "currency": view.currency,
        "buying_power": fmt(view.buying_power),
        "regt_buying_power": fmt(view.buying_power),
        "non_marginable_buying_power": fmt(view.buying_power),
        "options_buying_power": fmt(view.buying_power),
        "cash": fmt(view.cash),
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "pending_transfer_out": "0",
        "portfolio_value": fmt(view.equity),
        "trading_blocked": view.trading_blocked,
        "transfers_blocked": False,
        "account_blocked": False,
        "created_at": rfc3339(created_at),
        "trade_suspended_by_user": False,
        "multiplier": view.multiplier,
        "shorting_enabled": view.shorting_enabled,
        "equity": fmt(view.equity),
        "last_equity": fmt(view.last_equity),
        "long_market_value": fmt(view.long_market_value),
        "short_market_value": fmt(view.short_market_value),
        "position_market_value": fmt(view.long_market_value + view.short_market_value),
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "options_approved_level": 0,
        "options_trading_level": 0,
    }
    if pdt_fields:
        body |= {"pattern_day_trader": view.pattern_day_trader, "daytrade_count": view.daytrade_count,
                 "daytrading_buying_power": "0"}
    return body


def activity_json(activity: FillActivity | CashActivity) -> dict[str, Any]:
    """One account activity: a FILL, or a non-trade activity (FEE, CSD, CSW, DIV with `qty` and
    `per_share_amount`: Alpaca's NonTradeActivity sample, docs.alpaca.markets/docs/account-activities)."""
    if isinstance(activity, FillActivity):
        f = activity.fill
        return {
            "id": activity.id,
            "account_id": ACCOUNT_ID,
            "activity_type": "FILL",
            "transaction_time": rfc3339(f.at),
            "type": "fill",
            "price": fmt(f.price),
            "qty": fmt(f.qty),
            "side": f.side.value,
            "symbol": f.symbol,
            "leaves_qty": fmt(activity.leaves_qty),
            "order_id": activity.order_id,
            "cum_qty": fmt(activity.cum_qty),
            "order_status": "filled",
        }
    body: dict[str, Any] = {
        "id": activity.id,
        "account_id": ACCOUNT_ID,
        "activity_type": activity.activity_type,
        "date": activity.at.astimezone(NEW_YORK).date().isoformat(),
        "net_amount": fmt(activity.net_amount),
        "description": activity.description,
        "status": "executed",
    }
    if activity.symbol is not None:
        body["symbol"] = activity.symbol
    if activity.qty is not None:
        body["qty"] = fmt(activity.qty)
    if activity.per_share_amount is not None:
        body["per_share_amount"] = fmt(activity.per_share_amount)
    return body


def asset_json(asset: Asset) -> dict[str, Any]:
    """One item of GET /v2/assets."""
    return {
        "id": asset_id(asset.symbol),
        "class": "us_equity",
        "exchange": exchange_of(asset),
        "symbol": asset.symbol,
        "name": asset.name or asset.symbol,
        "status": asset.status or "active",
        "tradable": asset.tradable,
        "marginable": asset.tradable,
        "maintenance_margin_requirement": 100,
        "shortable": asset.shortable,
        "easy_to_borrow": asset.shortable,
        "fractionable": asset.fractionable,
        "attributes": [],
    }


def clock_json(now: datetime, calendar: MarketCalendar) -> dict[str, Any]:
    """GET /v2/clock at `now` (times in New York's offset, as Alpaca writes them)."""
    day = calendar.next_session(calendar.previous_session(now))
    is_open = calendar.is_open(now)
    next_open = calendar.session_open(calendar.next_session(day) if is_open or now >= calendar.session_open(day)
                                      else day)
    return {
        "timestamp": now.astimezone(NEW_YORK).isoformat(),
        "is_open": is_open,
        "next_open": next_open.astimezone(NEW_YORK).isoformat(),
        "next_close": calendar.session_close(day).astimezone(NEW_YORK).isoformat(),
    }


def calendar_json(days: list[date], calendar: MarketCalendar) -> list[dict[str, Any]]:
    """GET /v2/calendar: one item per session, open and close in New York time."""
    out = []
    for day in days:
        opens = calendar.session_open(day).astimezone(NEW_YORK)
        closes = calendar.session_close(day).astimezone(NEW_YORK)
        out.append({"date": day.isoformat(), "open": opens.strftime("%H:%M"), "close": closes.strftime("%H:%M"),
                    "session_open": "0400", "session_close": "2000",
                    "settlement_date": calendar.next_session(day).isoformat()})
    return out
