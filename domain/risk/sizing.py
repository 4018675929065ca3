"""Position sizing and protective price levels: from a dollar target to a share quantity.

Quantities are always rounded down, so a sized position never costs more than
its target. Order prices sit on the tick grid the exchanges accept: whole cents
at $1 and above (SEC Rule 612 forbids sub-penny prices there), 0.0001 below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext

from domain.models.trading import Side
from domain.money import CENT, PRICE_TICK, quantity
from domain.money import price as to_price
from domain.risk.config import RiskSettings
from domain.risk.fees import fill_price

_PRECISION = 60
MAX_TAKE_PROFIT_PCT = Decimal(10)
_ONE = Decimal(1)


@dataclass(frozen=True)
class SizingResult:
    """A sized position, or why it could not be sized.

    Attributes:
        qty: shares to trade (positive), or None when the position is too small.
        notional: qty * price, unrounded (0 when skipped).
        fractional: whether qty has a fractional part (a fractional order).
        skipped_reason: why no quantity could be sized, with the numbers; None when sized.
    """

    qty: Decimal | None
    notional: Decimal
    fractional: bool
    skipped_reason: str | None


def usd(amount: Decimal) -> str:
    """Human dollar amount for messages: `$1,234.56` (scientific notation when absurdly large)."""
    if not amount.is_finite():
        return f"${amount}"
    if abs(amount) >= Decimal("1e12"):
        return f"${amount:.3e}"
    return f"${amount:,.2f}"


def price_text(value: Decimal) -> str:
    """Human price: cents at $1 and above, four decimals below."""
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def pct_text(value: Decimal | float) -> str:
    """Human percentage of a fraction: 0.055 -> `5.5%`."""
    return f"{float(value) * 100:.4g}%"


def to_decimal(value: float) -> Decimal:
    """A float setting or proposal value as the Decimal of its shortest repr."""
    return Decimal(str(value))


def div_down(numerator: Decimal, denominator: Decimal) -> Decimal:
    """`numerator / denominator` rounded toward zero at high precision (never overstates a cap)."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        ctx.rounding = ROUND_DOWN
        return numerator / denominator


def size_position(
    target_notional: Decimal, price: Decimal, *, fractionable: bool, min_notional: Decimal
) -> SizingResult:
    """Turn a dollar target into a share quantity, rounded down.

    Fractionable assets get fractional quantities (9 decimals); a quantity that
    happens to be whole is sent as a whole-share order. Other assets get whole
    shares only.

    Args:
        target_notional: the most this position may be worth at `price`.
        price: reference price of one share.
        fractionable: whether the broker accepts fractional quantities of the asset.
        min_notional: smallest order value the broker accepts.

    Returns:
        The quantity, or qty None with a reason that quotes the numbers.
    """
    if not price.is_finite() or price <= 0:
        return _skipped(f"cannot size a position at a price of {price}")
    if not target_notional.is_finite() or target_notional <= 0:
        return _skipped(f"position too small to size: the target {usd(target_notional)} is not positive")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        qty = quantity(div_down(target_notional, price), fractional=fractionable)
        if qty == qty.to_integral_value():
            qty = quantity(qty, fractional=False)
        notional = qty * price
    if qty <= 0:
        shares = "whole shares" if not fractionable else "shares"
        return _skipped(
            f"position too small to size: {usd(target_notional)} buys 0 {shares} of a {price_text(price)} stock"
        )
    if notional < min_notional:
        return _skipped(
            f"position too small to size: {qty.normalize():f} shares at {price_text(price)} is {usd(notional)}, "
            f"below the {usd(min_notional)} minimum order"
        )
    return SizingResult(qty=qty, notional=notional, fractional=qty != qty.to_integral_value(), skipped_reason=None)


def _skipped(reason: str) -> SizingResult:
    return SizingResult(qty=None, notional=Decimal(0), fractional=False, skipped_reason=reason)


def order_tick(reference: Decimal) -> Decimal:
    """Smallest price increment of an order near `reference`: a cent at $1 and above, 0.0001 below."""
    return CENT if reference >= 1 else PRICE_TICK


def _on_grid(value: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return value.quantize(tick, rounding=rounding)


def protective_stop_price(
    reference: Decimal, stop_pct: Decimal, *, long: bool, min_pct: Decimal, max_pct: Decimal
) -> Decimal | None:
    """Stop price `stop_pct` away from `reference` (below for a long, above for a short).

    The price is put on the tick grid so that its distance from `reference`
    stays within `[min_pct, max_pct]` after rounding.

    Args:
        reference: the entry's reference price.
        stop_pct: wanted stop distance as a fraction, already within `[min_pct, max_pct]`.
        long: True for a long entry (stop below), False for a short (stop above).
        min_pct: smallest allowed distance.
        max_pct: largest allowed distance.

    Returns:
        The stop price, or None when no positive price on the tick grid fits the bounds.
    """
    tick = order_tick(reference)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        if long:
            lo = _on_grid(reference * (_ONE - max_pct), tick, ROUND_CEILING)
            hi = _on_grid(reference * (_ONE - min_pct), tick, ROUND_FLOOR)
            wanted = _on_grid(reference * (_ONE - stop_pct), tick, ROUND_HALF_EVEN)
        else:
            lo = _on_grid(reference * (_ONE + min_pct), tick, ROUND_CEILING)
            hi = _on_grid(reference * (_ONE + max_pct), tick, ROUND_FLOOR)
            wanted = _on_grid(reference * (_ONE + stop_pct), tick, ROUND_HALF_EVEN)
    if lo > hi or lo <= 0:
        return None
    return to_price(min(max(wanted, lo), hi))


def take_profit_price(reference: Decimal, take_profit_pct: Decimal, *, long: bool) -> Decimal | None:
    """Take-profit limit `take_profit_pct` beyond `reference`, on the tick grid.

    Returns:
        The price, or None when it would not be at least one tick on the profitable side
        of `reference` (or, for a short, not positive).
    """
    tick = order_tick(reference)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        factor = _ONE + take_profit_pct if long else _ONE - take_profit_pct
        level = _on_grid(reference * factor, tick, ROUND_HALF_EVEN)
    if long and level < reference + tick:
        return None
    if not long and (level <= 0 or level > reference - tick):
        return None
    return to_price(level)


@dataclass(frozen=True)
class EntryCap:
    """One upper bound on the value (at the reference price) of a new entry.

    Attributes:
        limit: the hard limit's stable name.
        cap: the largest notional the limit allows (may be zero or negative: no room).
        why: the numbers behind the cap.
    """

    limit: str
    cap: Decimal
    why: str


def entry_caps(
    *,
    price: Decimal,
    equity: Decimal,
    cash: Decimal,
    pending_exposure: Decimal,
    held_value: Decimal,
    gross_value: Decimal,
    settings: RiskSettings,
) -> tuple[EntryCap, ...]:
    """The caps on a new entry: position size, gross exposure and cash (no margin).

    Args:
        price: reference price of the symbol.
        equity: account equity.
        cash: account cash.
        pending_exposure: gross value of entries approved earlier in the cycle (they use cash too).
        held_value: absolute value of the position already held in the symbol.
        gross_value: absolute value of all positions held.
        settings: the hard limits, including fees and slippage.

    Returns:
        ("max_position_pct", "max_gross_exposure", "cash") caps, in that order. The cash cap
        leaves room for the expected slippage of this order and of the pending ones, and for the
        price collar at which the broker checks a market buy against its buying power
        (`buying_power_collar_pct`): a buy sized to the last cent would be refused.
    """
    pending = max(pending_exposure, Decimal(0))
    fees = settings.fees
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        collar = _ONE + to_decimal(settings.buying_power_collar_pct)
        buy_px = max(fill_price(Side.BUY, price, fees), price * collar)
        spendable = cash - pending * max(1 + fees.slippage_bps / 10000, collar) - fees.commission_per_order
        return (
            EntryCap(
                "max_position_pct",
                to_decimal(settings.max_position_pct) * equity - held_value,
                f"{pct_text(settings.max_position_pct)} of {usd(equity)} equity, {usd(held_value)} already held",
            ),
            EntryCap(
                "max_gross_exposure",
                to_decimal(settings.max_gross_exposure_pct) * equity - gross_value - pending,
                f"{pct_text(settings.max_gross_exposure_pct)} gross cap on {usd(equity)} equity, "
                f"{usd(gross_value)} held, {usd(pending)} pending",
            ),
            EntryCap(
                "cash",
                div_down(spendable, buy_px) * price,
                f"{usd(cash)} cash, {usd(pending)} pending, checked at {price_text(buy_px)} (slippage and the "
                f"broker's {pct_text(settings.buying_power_collar_pct)} price collar)",
            ),
        )


def choose_stop_pct(proposed: float | None, settings: RiskSettings) -> tuple[Decimal, tuple[str, str] | None]:
    """The stop distance of an entry: the proposed one clamped into the allowed range, or the default.

    Returns:
        The distance as a fraction, and (limit, detail) when the proposal was changed.
    """
    lo, hi = to_decimal(settings.min_stop_pct), to_decimal(settings.max_stop_pct)
    if not isinstance(proposed, int | float) or not math.isfinite(proposed) or proposed <= 0:
        default = to_decimal(settings.default_stop_pct)
        return default, ("stop_required", f"stop distance {proposed!r} unusable, using the default {pct_text(default)}")
    wanted = to_decimal(proposed)
    if wanted < lo:
        return lo, ("min_stop_pct", f"stop distance {pct_text(wanted)} -> {pct_text(lo)}")
    if wanted > hi:
        return hi, ("max_stop_pct", f"stop distance {pct_text(wanted)} -> {pct_text(hi)}")
    return wanted, None


@dataclass(frozen=True)
class ProtectiveLevels:
    """Stop and take-profit prices of an entry.

    Attributes:
        stop_price: the protective stop, or None when no price on the tick grid fits the allowed distance.
        take_profit_price: the take-profit limit, or None.
        changes: (limit, detail) for every way the proposal was changed.
    """

    stop_price: Decimal | None
    take_profit_price: Decimal | None
    changes: tuple[tuple[str, str], ...]


def protective_levels(
    reference: Decimal,
    stop_loss_pct: float | None,
    take_profit_pct: float | None,
    *,
    long: bool,
    settings: RiskSettings,
) -> ProtectiveLevels:
    """Stop and take-profit prices of an entry at `reference` from untrusted proposed distances.

    The stop distance is clamped into `[min_stop_pct, max_stop_pct]` (default when unusable);
    a take profit that is not a finite distance in (0, 10] or rounds onto the price is dropped.
    """
    changes: list[tuple[str, str]] = []
    pct, change = choose_stop_pct(stop_loss_pct, settings)
    if change is not None:
        changes.append(change)
    lo, hi = to_decimal(settings.min_stop_pct), to_decimal(settings.max_stop_pct)
    stop = protective_stop_price(reference, pct, long=long, min_pct=lo, max_pct=hi)
    take_profit = None
    if take_profit_pct is not None:
        if isinstance(take_profit_pct, int | float) and math.isfinite(take_profit_pct) and take_profit_pct > 0:
            wanted = to_decimal(take_profit_pct)
            if wanted <= MAX_TAKE_PROFIT_PCT:
                take_profit = take_profit_price(reference, wanted, long=long)
        if take_profit is None:
            changes.append(("take_profit_ignored", f"take profit {take_profit_pct!r} unusable, none set"))
    return ProtectiveLevels(stop, take_profit, tuple(changes))
