"""How the tearsheet writes numbers: returns and rates as percentages (0.1062 is "10.62%"), ratios with two
decimals, money in dollars. Missing figures are "n/a"; unbounded ratios (summary.json writes them "inf") are "∞".
Every function returns text already safe to put in HTML."""

from __future__ import annotations

import html
import math
from decimal import Decimal, InvalidOperation
from typing import Any

NA = "n/a"


def number(value: Any) -> float | None:
    """`value` as a float: floats, ints, Decimals and numeric strings ("inf" too); None when it is not a number
    or is NaN."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError, InvalidOperation):
        return None
    return None if math.isnan(out) else out


def _unbounded(v: float) -> str | None:
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return None


def pct(value: Any, *, signed: bool = False, digits: int = 2) -> str:
    """A fraction as a percentage: pct(0.1062) == "10.62%", pct(0.05, signed=True) == "+5.00%"."""
    v = number(value)
    if v is None:
        return NA
    if (inf := _unbounded(v)) is not None:
        return inf
    shown = round(v * 100, digits) + 0.0
    if shown == 0:
        return f"{0:.{digits}f}%"
    return f"{shown:+.{digits}f}%" if signed else f"{shown:.{digits}f}%"


def ratio(value: Any, digits: int = 2) -> str:
    """A ratio (Sharpe, beta, profit factor) with `digits` decimals."""
    v = number(value)
    if v is None:
        return NA
    if (inf := _unbounded(v)) is not None:
        return inf
    return f"{v:.{digits}f}"


def usd(value: Any, *, signed: bool = False, digits: int = 2) -> str:
    """Dollars with thousands separators: usd(1234.5) == "$1,234.50", usd(-8.36) == "-$8.36"."""
    v = number(value)
    if v is None:
        return NA
    sign = "-" if v < 0 else ("+" if signed and v > 0 else "")
    return f"{sign}${abs(v):,.{digits}f}"


def tone(value: Any) -> str:
    """CSS class of a figure: "pos" above zero, "neg" below, "" otherwise."""
    v = number(value)
    if v is None or v == 0:
        return ""
    return "pos" if v > 0 else "neg"


def text(value: Any) -> str:
    """Any value as escaped text; None is "n/a", Decimals keep their digits."""
    if value is None:
        return NA
    if isinstance(value, Decimal):
        return html.escape(format(value, "f"))
    return html.escape(str(value))


def raw(value: Any) -> str:
    """A summary.json field as the report's appendix shows it: fractions left as they are (4 decimals)."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return text(value)
