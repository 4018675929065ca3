"""`TradingService`: what the scheduler, the workers and the API run — a cycle now (or at a time), a
reconciliation now — with the simulated venue (if any) brought up to that time first."""

from __future__ import annotations

from datetime import datetime

from application.chat.event_index import EventIndexer
from application.cycle.trading_cycle import CycleResult, TradingCycle
from domain.ports.clock import Clock
from domain.ports.jobs import CycleRunner, Reconciler
from domain.ports.venue import SimulatedVenue


class TradingService(CycleRunner, Reconciler):
    """Implements the job ports on a `TradingCycle`.

    Args:
        cycle: the trading cycle.
        clock: "now" of a cycle asked for without a time.
        venue: the `sim` provider's replayed venue, moved to the cycle's time before it runs (None on Alpaca,
            in rehearsals, whose driver moves the emulator, and in backtests, whose runner moves the venue).
        event_index: indexes the events each cycle (or reconciliation) committed for the chat's event search,
            after it; a failure there is logged and never fails the cycle (None: off, as in backtests).
    """

    def __init__(self, cycle: TradingCycle, clock: Clock, venue: SimulatedVenue | None = None,
                 event_index: EventIndexer | None = None) -> None:
        self.cycle, self.clock, self.venue = cycle, clock, venue
        self.event_index = event_index

    @property
    def scope(self) -> str:
        """The scope the cycle trades under."""
        return self.cycle.scope

    def _catch_up(self, at: datetime) -> None:
        if self.venue is not None and at > self.venue.clock.now():
            self.venue.advance_to(at)

    async def run_cycle(self, *, kind: str = "scheduled", symbol: str | None = None,
                        as_of: datetime | None = None, cycle_id: str | None = None) -> CycleResult:
        """Run one trading cycle at `as_of` (now when None), under `cycle_id` when given."""
        at = as_of or self.clock.now()
        self._catch_up(at)
        result = await self.cycle.run(as_of=at, kind=kind, symbol=symbol, cycle_id=cycle_id)
        await self._index_events()
        return result

    async def reconcile_now(self) -> int:
        """Reconcile with the broker now, in a transaction of its own; returns the number of differences."""
        at = self.clock.now()
        self._catch_up(at)
        differences = await self.cycle.reconcile(as_of=at)
        await self._index_events()
        return differences

    async def _index_events(self) -> None:
        if self.event_index is not None:
            await self.event_index.catch_up_quietly()
