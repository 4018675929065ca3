"""Round trips: what a backtest report calls a trade.

A round trip opens with a buy from flat and closes with the sell that brings the position back to flat; the
buys adding to it and the partial sells in between belong to it. Fills are counted separately: a bracket
entry, a partial take-profit and a final stop are three fills and one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.models.trading import Fill, Side
from domain.money import ZERO


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One closed long position, from flat to flat.

    Attributes:
        symbol: the stock.
        opened_at: time of the opening buy.
        closed_at: time of the sell that brought the position back to flat.
        fills: fills of the round trip (buys and sells).
        qty: shares bought over the round trip.
        cost: cash paid for them, buy fees included.
        proceeds: cash received for them, sell fees deducted.
        exit_reason: the reason of the sell that closed it, as Quorum or the broker adapter wrote it.
    """

    symbol: str
    opened_at: datetime
    closed_at: datetime
    fills: int
    qty: Decimal
    cost: Decimal
    proceeds: Decimal
    exit_reason: str = ""

    @property
    def pnl(self) -> Decimal:
        """Proceeds less cost, net of every fee."""
        return self.proceeds - self.cost

    @property
    def return_pct(self) -> float:
        """Proceeds over cost, less one (0 for a round trip that cost nothing)."""
        return float(self.proceeds / self.cost - 1) if self.cost > 0 else 0.0


@dataclass(slots=True)
class _Open:
    opened_at: datetime
    held: Decimal = ZERO
    fills: int = 0
    qty: Decimal = ZERO
    cost: Decimal = ZERO
    proceeds: Decimal = ZERO


def round_trips(fills: Sequence[Fill]) -> list[RoundTrip]:
    """The closed round trips of `fills` (taken in time order), in the order they closed. A position still open
    at the end is not a round trip; a sell without a long position is ignored (the account is cash only)."""
    open_: dict[str, _Open] = {}
    out: list[RoundTrip] = []
    for f in sorted(fills, key=lambda f: f.at):
        trip = open_.get(f.symbol)
        if f.side is Side.BUY:
            if trip is None:
                trip = open_[f.symbol] = _Open(f.at)
            trip.held += f.qty
            trip.qty += f.qty
            trip.cost += -f.cash_delta
            trip.fills += 1
            continue
        if trip is None:
            continue
        trip.held -= f.qty
        trip.proceeds += f.cash_delta
        trip.fills += 1
        if trip.held <= 0:
            out.append(RoundTrip(f.symbol, trip.opened_at, f.at, trip.fills, trip.qty, trip.cost, trip.proceeds,
                                 f.reason))
            del open_[f.symbol]
    return out


def round_trip_returns(fills: Sequence[Fill]) -> list[float]:
    """Return of every closed round trip, net of fees, in the order they closed."""
    return [t.return_pct for t in round_trips(fills)]
