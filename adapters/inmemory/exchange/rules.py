"""The parameters of Alpaca's rules, and the small pure checks every order goes through.

Each rule's source is listed in docs/exchange-model.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from domain.money import QTY_STEP

NEW_YORK = ZoneInfo("America/New_York")
PENNY = Decimal("0.01")
SUB_PENNY = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class ExchangeRules:
    """Alpaca's rules where the documentation gives a range, or where Alpaca changed them over time.

    Attributes:
        collar_pct: a market buy is valued for buying power at the last price plus this collar (Alpaca turns
            market orders into limit orders with a collar; its docs have said 2.5%..4% and up to 5%: the
            default is the strictest).
        allow_short: whether a sell beyond the position opens a short (Quorum never shorts: off).
        wash_trade_protection: refuse an order that could execute against an open opposite order (403).
        pdt_protection: refuse an exit that would be a fourth day trade in five sessions while the previous
            close's equity is under `pdt_equity_threshold` (403). FINRA retired the rule and Alpaca stopped
            enforcing it on 2026-07-06; kept on by default as the stricter behaviour (see the docs).
        pdt_equity_threshold: equity under which PDT protection applies.
        pdt_max_day_trades: day trades allowed in five sessions under the threshold.
        min_fractional_buy: smallest notional of a fractional or notional buy (Alpaca: 1 USD).
    """

    collar_pct: Decimal = Decimal("0.05")
    allow_short: bool = False
    wash_trade_protection: bool = True
    pdt_protection: bool = True
    pdt_equity_threshold: Decimal = Decimal("25000")
    pdt_max_day_trades: int = 3
    min_fractional_buy: Decimal = Decimal("1")

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.collar_pct < 1:
            raise ValueError(f"collar_pct must be in [0, 1), got {self.collar_pct}")
        if self.pdt_max_day_trades < 0:
            raise ValueError(f"pdt_max_day_trades must be >= 0, got {self.pdt_max_day_trades}")


def tick_error(name: str, value: Decimal) -> str | None:
    """Why `value` is not a valid order price (whole cents from 1 USD, 1/100 cent below), or None."""
    step = PENNY if value >= 1 else SUB_PENNY
    if value != value.quantize(step):
        return f"invalid {name} {fmt(value)}: sub-penny increment does not fulfill minimum pricing criteria"
    return None


def qty_error(qty: Decimal) -> str | None:
    """Why `qty` is not a valid order quantity, or None."""
    if not qty.is_finite() or qty <= 0:
        return "qty must be > 0"
    if qty != qty.quantize(QTY_STEP):
        return f"qty {fmt(qty)} has more than 9 decimal places"
    return None


def is_fractional(qty: Decimal) -> bool:
    """Whether `qty` has a fractional part."""
    return qty != qty.to_integral_value()


def fmt(value: Decimal) -> str:
    """A Decimal as Alpaca writes numbers in messages and JSON: plain, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text if text not in ("-0", "") else "0"


def ny_date(at: datetime) -> date:
    """The New York calendar day of an aware instant (day trades are counted per calendar day)."""
    return at.astimezone(NEW_YORK).date()
