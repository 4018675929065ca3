"""What the request handlers of the emulator share, and the small helpers they all use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from adapters.inmemory.exchange import Exchange
from adapters.inmemory.exchange.rejections import CODE_REQUEST, Rejection, invalid
from adapters.inmemory.replay.timeline import Timeline
from domain.models.market import Asset
from domain.ports.clock import MarketCalendar

Reply = tuple[int, Any, dict[str, str]]
Query = dict[str, list[str]]
_NANOS = re.compile(r"(\.\d{6})\d+")


@dataclass
class EmulatorState:
    """The exchange, the market it replays and the emulator's settings, as the routes see them."""

    exchange: Exchange
    calendar: MarketCalendar
    timeline: Timeline
    assets: dict[str, Asset]
    created_at: datetime
    spread_bps: Decimal

    def now(self) -> datetime:
        """The emulator's time."""
        return self.exchange.now()


def ok(body: Any, status: int = 200) -> Reply:
    """A JSON answer."""
    return status, body, {}


def refused(rejection: Rejection) -> Reply:
    """Alpaca's answer to a refused request."""
    return rejection.status, rejection.body, {}


def not_found(message: str) -> Reply:
    """404 with Alpaca's body."""
    return 404, {"code": 40410000, "message": message}, {}


def param(query: Query, name: str) -> str | None:
    """The single value of a query parameter (None when absent or empty)."""
    values = query.get(name)
    return values[0] if values and values[0] != "" else None


def flag(query: Query, name: str, default: bool = False) -> bool:
    """A boolean query parameter."""
    value = param(query, name)
    return default if value is None else value.lower() == "true"


def integer(query: Query, name: str, default: int, maximum: int) -> int:
    """A positive integer query parameter, capped at `maximum`.

    Raises:
        Rejection: 422 when it is not a positive integer.
    """
    value = param(query, name)
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError:
        raise invalid(f"invalid {name} {value!r}", CODE_REQUEST) from None
    if n < 1:
        raise invalid(f"{name} must be >= 1", CODE_REQUEST)
    return min(n, maximum)


def timestamp(query: Query, name: str) -> datetime | None:
    """An RFC 3339 time (a date or a naive time is taken as UTC) query parameter.

    Raises:
        Rejection: 422 when it cannot be read.
    """
    value = param(query, name)
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(_NANOS.sub(r"\1", value.replace(" ", "+").replace("Z", "+00:00")))
    except ValueError:
        raise invalid(f"invalid {name} {value!r}", CODE_REQUEST) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
