"""Storage rules every repository applies to the values it is given (part of the repository contract).

Quantities, prices and cash are stored as NUMERIC(20, scale); times as UTC; documents as JSON.
The PostgreSQL and the in-memory repositories both use these functions, so they accept, refuse
and round exactly the same values.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import Enum
from typing import Any

# Column precision and scales (migration 0004 creates the columns with them).
NUMERIC_PRECISION = 20
QTY_SCALE = 9
PRICE_SCALE = 4
EXEC_PRICE_SCALE = 9
CASH_SCALE = 4


def utc(value: datetime, *, what: str = "datetime") -> datetime:
    """`value` converted to UTC; naive datetimes are refused.

    Raises:
        ValueError: `value` has no timezone.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def utc_or_none(value: datetime | None, *, what: str = "datetime") -> datetime | None:
    """`utc(value)`, passing None through."""
    return None if value is None else utc(value, what=what)


def decimal(value: Decimal | int, scale: int, *, what: str, exact: bool = False) -> Decimal:
    """`value` as stored in a NUMERIC(20, `scale`) column.

    Args:
        value: a Decimal (or int); floats are refused.
        scale: decimals kept by the column.
        what: name used in error messages.
        exact: refuse values with more decimals instead of rounding them (quantities).

    Returns:
        The value quantized to `scale` decimals, banker's rounding.

    Raises:
        TypeError: `value` is a float.
        ValueError: not finite, too large for the column, or inexact when `exact`.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{what} must be a Decimal, got {type(value).__name__}")
    d = Decimal(value)
    if not d.is_finite():
        raise ValueError(f"{what} must be finite, got {value}")
    limit = NUMERIC_PRECISION - scale
    try:
        q = d.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN)
    except InvalidOperation as exc:
        raise ValueError(f"{what} {value} does not fit NUMERIC({NUMERIC_PRECISION}, {scale})") from exc
    if q != 0 and q.adjusted() >= limit:
        raise ValueError(f"{what} {value} does not fit NUMERIC({NUMERIC_PRECISION}, {scale})")
    if exact and q != d:
        raise ValueError(f"{what} {value} has more than {scale} decimals")
    return q


def decimal_or_none(value: Decimal | int | None, scale: int, *, what: str) -> Decimal | None:
    """`decimal(value, scale)`, passing None through."""
    return None if value is None else decimal(value, scale, what=what)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_document(value: dict[str, Any], *, what: str = "document") -> dict[str, Any]:
    """A JSON-compatible copy of `value`: Decimal as str, datetime as ISO 8601, enums as values.

    Raises:
        TypeError: a value cannot be represented in JSON.
        ValueError: a float is NaN or infinite.
    """
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict, got {type(value).__name__}")
    try:
        out = json.loads(json.dumps(value, default=_json_default, allow_nan=False))
    except TypeError as exc:
        raise TypeError(f"{what} is not storable as JSON: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{what} is not storable as JSON: {exc}") from exc
    if not isinstance(out, dict):
        raise TypeError(f"{what} is not a JSON object")
    return out


def in_range(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    """Whether since <= at < until (a missing bound does not limit)."""
    return (since is None or at >= since) and (until is None or at < until)


def check_limit(limit: int) -> None:
    """Refuse a negative page size.

    Raises:
        ValueError: `limit` is negative.
    """
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
