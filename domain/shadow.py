"""The shadow book: simulated fills for decisions taken while the breaker is tripped."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.models.trading import Fill, Portfolio, Position, Side
from domain.money import money
from domain.risk.config import FeeSettings
from domain.risk.fees import fill_price, order_fee


def portfolio_to_dict(p: Portfolio) -> dict[str, Any]:
    """JSON-safe form of a portfolio."""
    return {
        "cash": str(p.cash),
        "net_deposits": str(p.net_deposits),
        "positions": {
            s: {"qty": str(pos.qty), "avg_entry_price": str(pos.avg_entry_price),
                "stop_price": None if pos.stop_price is None else str(pos.stop_price),
                "opened_at": None if pos.opened_at is None else pos.opened_at.isoformat(),
                "fractional": pos.fractional,
                "take_profit_price": None if pos.take_profit_price is None else str(pos.take_profit_price)}
            for s, pos in sorted(p.positions.items())
        },
    }


def portfolio_from_dict(d: dict[str, Any]) -> Portfolio:
    """Inverse of `portfolio_to_dict`."""
    positions = {
        s: Position(s, Decimal(v["qty"]), Decimal(v["avg_entry_price"]),
                    None if v["stop_price"] is None else Decimal(v["stop_price"]),
                    None if v["opened_at"] is None else datetime.fromisoformat(v["opened_at"]),
                    bool(v["fractional"]),
                    take_profit_price=None if v.get("take_profit_price") is None else Decimal(v["take_profit_price"]))
        for s, v in d["positions"].items()
    }
    return Portfolio(Decimal(d["cash"]), positions, Decimal(d["net_deposits"]))


def simulate_fill(
    book: Portfolio, *, symbol: str, side: Side, qty: Decimal, reference: Decimal, fees: FeeSettings,
    at: datetime, client_order_id: str, reason: str, stop_price: Decimal | None = None, fractional: bool = False,
    take_profit_price: Decimal | None = None,
) -> tuple[Portfolio, Fill]:
    """Fill an order on the shadow book at `reference` with the same slippage and fees as a real fill; an entry
    keeps its stop and take-profit on the position, as a real entry's bracket legs would.

    Returns:
        The book after the fill and the simulated fill.
    """
    px = fill_price(side, reference, fees)
    fill = Fill(client_order_id, symbol, side, qty, px, order_fee(side, qty, px, fees), at, reason)
    return book.apply(fill, stop_price=stop_price, fractional=fractional,
                      take_profit_price=take_profit_price), fill


def closed_return(entry_price: Decimal, fill: Fill) -> float:
    """Return of a long closed by `fill`, net of the exit fee."""
    if entry_price <= 0 or fill.qty <= 0:
        return 0.0
    proceeds = money(fill.qty * fill.price) - fill.fee
    cost = money(fill.qty * entry_price)
    return float(proceeds / cost - 1) if cost > 0 else 0.0
