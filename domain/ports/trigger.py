"""Cycle trigger port: how the event monitor asks for an event-driven trading cycle."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class CycleTrigger(Protocol):
    """Requests one event cycle for a symbol that moved (e.g. `POST /api/cycles/run?type=event&symbol=X`)."""

    async def trigger(self, symbol: str, move: float, at: datetime) -> str | None:
        """Ask for an event cycle on `symbol`.

        Args:
            symbol: the symbol that moved.
            move: the signed move that fired, as a fraction (0.052 is +5.2%).
            at: when the move was seen (timezone-aware).

        Returns:
            The id of the cycle that was queued, or None when the other side gave none.

        Raises:
            CycleTriggerError: the request failed; `retryable` says whether trying again may help.
        """
        ...
