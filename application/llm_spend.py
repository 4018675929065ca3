"""SpendLedger: the daily LLM spend cap of a process, shared by every caller in it (agents, discovery picker,
chat), with each paid call's worst-case cost reserved before it is made.

Spend comes from the `llm_calls` table, which every process writes: `load` reads it (once per cycle, or per chat
message) and adds what this process spent and has not written yet. Before a paid call, `reserve` books its worst
case: the call goes ahead only while spent + reserved + its worst case stays within the cap. When it does not fit
but other calls hold reservations, it waits for them (their real cost is usually far below their worst case)
and tries again; when nothing else is in flight and it still does not fit, it is refused. `settle` swaps the
reservation for the real cost. So calls running at the same time never take the day's spend over the cap, as long
as none costs more than its worst case (retries of one call can).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from domain.ports.uow import UnitOfWork

_EPSILON = 1e-12


@dataclass
class Reservation:
    """Money held for one call until it is settled."""

    amount: float
    settled: bool = False


class SpendLedger:
    """Today's LLM spend against `cap_usd`, for every caller in the process.

    Args:
        cap_usd: the daily cap (0: no paid call at all).
        scopes: the scopes whose recorded calls count (the account's, and e.g. the evals').
        tz: the timezone whose midnight starts a new budget day.
    """

    def __init__(self, cap_usd: float, scopes: Sequence[str], tz: tzinfo) -> None:
        if cap_usd < 0 or not scopes:
            raise ValueError("a spend ledger needs a cap >= 0 and at least one scope")
        self.cap_usd = cap_usd
        self.scopes = tuple(scopes)
        self.tz = tz
        self._stored = 0.0       # in the table at the last load, plus what was unwritten then
        self._since_load = 0.0   # settled in this process since the last load
        self._unwritten = 0.0    # settled, not yet written (the callers' buffered records)
        self._lost = 0.0         # settled and never to be written (a rolled-back cycle's calls): still spent
        self._reserved = 0.0
        self._in_flight = 0      # reservations not settled yet
        self._day: str | None = None
        self._changed: asyncio.Condition | None = None

    @property
    def spent(self) -> float:
        """Today's spend as far as this process knows."""
        return self._stored + self._since_load

    @property
    def reserved(self) -> float:
        """Money held for calls in flight."""
        return self._reserved

    @property
    def day(self) -> str | None:
        """The budget day of the last load (ISO date), None before the first."""
        return self._day

    async def load(self, uow: UnitOfWork, as_of: datetime) -> float:
        """Read today's recorded spend (the budget day of `as_of`) and return today's spend."""
        start = as_of.astimezone(self.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        day = start.date().isoformat()
        if day != self._day:
            self._lost, self._day = 0.0, day
        stored = 0.0
        for scope in self.scopes:
            stored += await uow.llm_calls.spend(scope, since=start, until=start + timedelta(days=1))
        self._stored, self._since_load = stored + self._unwritten + self._lost, 0.0
        return self.spent

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def reserve(self, worst_case_usd: float) -> Reservation | None:
        """Hold `worst_case_usd` for a paid call: at once when it fits under the cap, after calls in flight settle
        when it fits only then; None (the call must not be made) when today's spend is at the cap or it cannot
        fit even with nothing else in flight."""
        amount = max(0.0, worst_case_usd)
        changed = self._condition()
        async with changed:
            while True:
                if self.spent >= self.cap_usd:
                    return None
                if self.spent + self._reserved + amount <= self.cap_usd + _EPSILON:
                    self._reserved += amount
                    self._in_flight += 1
                    return Reservation(amount)
                if self._in_flight == 0:
                    return None
                await changed.wait()

    async def settle(self, reservation: Reservation, cost_usd: float, *, written: bool = False) -> None:
        """Replace `reservation` by the call's real cost (`written`: the caller has already stored its record)."""
        changed = self._condition()
        async with changed:
            if not reservation.settled:
                reservation.settled = True
                self._in_flight -= 1
                self._reserved = max(0.0, self._reserved - reservation.amount) if self._in_flight else 0.0
            self._since_load += cost_usd
            if not written:
                self._unwritten += cost_usd
            changed.notify_all()

    def charge(self, cost_usd: float, *, written: bool = False) -> None:
        """Count money spent outside a reservation (a free model's call has none; a budget error's cost)."""
        self._since_load += cost_usd
        if not written:
            self._unwritten += cost_usd

    def exhaust(self) -> None:
        """The provider said the budget is spent: count today as spent to the cap."""
        self._since_load += max(0.0, self.cap_usd - self.spent)

    def written(self, cost_usd: float) -> None:
        """Buffered records costing `cost_usd` were written to the table."""
        self._unwritten = max(0.0, self._unwritten - cost_usd)

    def dropped(self, cost_usd: float) -> None:
        """Buffered records costing `cost_usd` will never be written (their transaction rolled back); the money
        was spent all the same and counts until the day ends."""
        self._unwritten = max(0.0, self._unwritten - cost_usd)
        self._lost += cost_usd
