"""Simulated venue port: a market and a broker replaying history, whose time moves only when told."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from domain.models.trading import Fill
from domain.ports.clock import Clock


@runtime_checkable
class SimulatedVenue(Protocol):
    """Where backtests, the `sim` provider and rehearsals trade: replayed history on its own clock.

    One driver moves every kind of venue (the in-memory broker and the Alpaca-wire emulator): session opens
    (DAY orders of earlier sessions expire, orders waiting for the open fill there), price updates (market orders
    sent before them fill; stops and limits they cross execute), intraday bars where the data has them, and
    session closes (the day's range, DAY expiry, the closing equity).
    """

    @property
    def clock(self) -> Clock:
        """The venue's time, read by the broker (and by whatever trades against it)."""
        ...

    def advance_to(self, at: datetime) -> list[Fill]:
        """Replay every price event up to `at` (timezone-aware, never earlier than the venue's time).

        Returns:
            The fills the events made.
        """
        ...
