"""Money and quantity helpers. Money is Decimal; a float never reaches an order."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
PRICE_TICK = Decimal("0.0001")
QTY_STEP = Decimal("0.000000001")
ZERO = Decimal("0")


def money(value: Decimal | int | str | float) -> Decimal:
    """Round a cash amount to the cent (banker's rounding).

    Floats are converted through their shortest repr so 0.1 becomes 0.10.
    """
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    return d.quantize(CENT, rounding=ROUND_HALF_EVEN)


def price(value: Decimal | int | str | float) -> Decimal:
    """A price rounded to four decimals, the finest tick Quorum sends."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    if not d.is_finite():
        raise ValueError(f"price must be finite, got {value!r}")
    return d.quantize(PRICE_TICK, rounding=ROUND_HALF_EVEN)


def quantity(value: Decimal | int | str | float, *, fractional: bool) -> Decimal:
    """Round a share quantity down: to 1e-9 when fractional, to whole shares otherwise."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    if not d.is_finite():
        raise ValueError(f"quantity must be finite, got {value!r}")
    step = QTY_STEP if fractional else Decimal(1)
    return d.quantize(step, rounding=ROUND_DOWN)


def to_cents(amount: Decimal) -> int:
    """Integer cents of a cash amount."""
    return int(money(amount) * 100)


def from_cents(cents: int) -> Decimal:
    """Decimal dollars from integer cents."""
    return (Decimal(cents) / 100).quantize(CENT)
