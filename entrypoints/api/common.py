"""Parameters and helpers shared by the route modules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from litestar.params import Parameter

from application.queries import MAX_PAGE

API_KEY_SCHEME = "ApiKeyHeader"
WRITE_SECURITY: list[dict[str, list[str]]] = [{API_KEY_SCHEME: []}]
READ_SECURITY: list[dict[str, list[str]]] = [{}, {API_KEY_SCHEME: []}]

CYCLE_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,200}$"
CycleId = Annotated[str, Parameter(pattern=CYCLE_ID_PATTERN, description="e.g. c-20240612-1100-f5041e29ab")]
CycleIdFilter = Annotated[str | None, Parameter(pattern=CYCLE_ID_PATTERN, description="only this cycle's events")]
FilterSymbol = Annotated[str | None, Parameter(pattern=r"^[A-Za-z0-9./-]{1,20}$", description="only this symbol "
                                                                                              "(case-insensitive)")]
Limit = Annotated[int, Parameter(ge=1, le=MAX_PAGE, description=f"page size, 1..{MAX_PAGE}")]
Offset = Annotated[int, Parameter(ge=0, le=10**9, description="items to skip")]
Since = Annotated[datetime | None, Parameter(description="ISO 8601 time, inclusive (UTC when no offset is given)")]
Until = Annotated[datetime | None, Parameter(description="ISO 8601 time, exclusive (UTC when no offset is given)")]


def as_utc(at: datetime | None, name: str) -> datetime | None:
    """A query time in UTC; a time without an offset is taken as UTC.

    Raises:
        ValueError: the time cannot be expressed in UTC (out of range).
    """
    if at is None:
        return None
    try:
        return at.replace(tzinfo=UTC) if at.tzinfo is None or at.utcoffset() is None else at.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"{name} is out of range: {at.isoformat()}") from None


def check_range(since: datetime | None, until: datetime | None) -> None:
    """Refuse an empty time range.

    Raises:
        ValueError: since is not before until.
    """
    if since is not None and until is not None and since >= until:
        raise ValueError(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
