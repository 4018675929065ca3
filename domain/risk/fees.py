"""Fees and slippage, modelled explicitly so backtests report results net of costs."""

from __future__ import annotations

from decimal import ROUND_UP, Decimal

from domain.models.trading import Side
from domain.money import CENT, ZERO, money, price
from domain.risk.config import FeeSettings

_BPS = Decimal("0.0001")
_MILLION = Decimal("1000000")


def fill_price(side: Side, reference: Decimal, fees: FeeSettings) -> Decimal:
    """The price actually paid or received: `reference` moved against us by the slippage.

    Args:
        side: buys pay more, sells receive less.
        reference: the quoted or bar price.
        fees: slippage in basis points.

    Returns:
        The adjusted price rounded to the tick.
    """
    if reference <= 0:
        raise ValueError(f"reference price must be positive, got {reference}")
    move = reference * fees.slippage_bps * _BPS
    return price(reference + move if side is Side.BUY else reference - move)


def order_fee(side: Side, qty: Decimal, fill_px: Decimal, fees: FeeSettings) -> Decimal:
    """Commission plus, on sells, the SEC Section 31 fee and the FINRA TAF.

    Regulatory fees are rounded up to the cent, as brokers charge them.
    """
    total = fees.commission_per_order
    if side is Side.SELL:
        sec = (qty * fill_px * fees.sec_fee_per_million / _MILLION).quantize(CENT, rounding=ROUND_UP)
        taf = min(qty * fees.taf_per_share, fees.taf_max).quantize(CENT, rounding=ROUND_UP)
        total += sec + taf
    return money(total) if total > ZERO else ZERO.quantize(CENT)
