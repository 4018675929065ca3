"""FxRates port: how many units of another currency one USD buys."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from domain.currency import FxRate


@runtime_checkable
class FxRates(Protocol):
    """A source of exchange rates (for showing amounts, never for trading)."""

    async def usd_to(self, quote: str) -> FxRate:
        """The latest rate of `quote` per USD.

        Raises:
            FxUnavailableError: the source is unreachable or its answer cannot be read.
        """
        ...
