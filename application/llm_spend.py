"""SpendLedger: the daily LLM spend cap of a process, shared by every caller in it (agents, discovery picker,
chat, the nightly evals), with each paid call's worst case reserved before it is made.

Spend comes from the `llm_calls` table, which every process writes: `load` reads it (once per cycle, or per chat
message) and adds what this process spent and has not written yet. Before a paid call, `reserve` books its worst
case: the call goes ahead only while spent + reserved + its worst case stays within the cap. When it does not fit
but other calls hold reservations, it waits for them (their real cost is usually far below their worst case)
and tries again; when nothing else is in flight and it still does not fit, it is refused. `settle` swaps the
reservation for the real cost. A retry asks for more first (`grow`), so calls running at the same time never take
the day's spend over the cap.

A cycle holds the worst case of all its stages before the first (`reserve_most`: as many symbols as the cap can
carry through every stage); its calls then `draw` from that hold, and `release` gives back what is left.

The cap is fixed (`cap_usd`) or, with `share_of_equity`, that share of the account's equity at the day's start
(read by `load` from the trading state of the ledger's first scope; `cap_usd` until one is known).

One ledger may serve several event loops (the nightly evals run in a thread of their own): its books are kept
under a lock and a caller waiting for money is woken in its own loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal

from domain.ports.uow import UnitOfWork

_EPSILON = 1e-12


@dataclass
class Reservation:
    """Money held for one call (or for a cycle's stages) until it is settled or released."""

    amount: float
    settled: bool = False


class SpendLedger:
    """Today's LLM spend against the daily cap, for every caller in the process.

    Args:
        cap_usd: the daily cap (0: no paid call at all); with `share_of_equity`, the cap until the equity is known.
        scopes: the scopes whose recorded calls count (the account's first, then e.g. the evals').
        tz: the timezone whose midnight starts a new budget day.
        share_of_equity: the cap as a share of the account's equity at the day's start (None: `cap_usd` always).
    """

    def __init__(self, cap_usd: float, scopes: Sequence[str], tz: tzinfo, *,
                 share_of_equity: float | None = None) -> None:
        if cap_usd < 0 or not scopes or (share_of_equity is not None and share_of_equity < 0):
            raise ValueError("a spend ledger needs a cap >= 0, a share of equity >= 0 and at least one scope")
        self._cap = cap_usd
        self.share_of_equity = share_of_equity
        self.equity: float | None = None
        self.scopes = tuple(scopes)
        self.tz = tz
        self._stored = 0.0       # in the table at the last load, plus what was unwritten then
        self._since_load = 0.0   # settled in this process since the last load
        self._unwritten = 0.0    # settled, not yet written (the callers' buffered records)
        self._lost = 0.0         # settled and never to be written (a rolled-back cycle's calls): still spent
        self._reserved = 0.0
        self._in_flight = 0      # reservations and holds not settled yet
        self._day: str | None = None
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def cap_usd(self) -> float:
        """Today's cap: the share of the day-start equity when derived and known, else the fixed cap."""
        if self.share_of_equity is not None and self.equity is not None:
            return self.share_of_equity * self.equity
        return self._cap

    @cap_usd.setter
    def cap_usd(self, value: float) -> None:
        self._cap = value

    @property
    def spent(self) -> float:
        """Today's spend as far as this process knows."""
        return self._stored + self._since_load

    @property
    def reserved(self) -> float:
        """Money held for calls in flight and cycles' stages."""
        return self._reserved

    @property
    def available(self) -> float:
        """What can still be reserved today."""
        return max(0.0, self.cap_usd - self.spent - self._reserved)

    @property
    def day(self) -> str | None:
        """The budget day of the last load (ISO date), None before the first."""
        return self._day

    def set_equity(self, equity: Decimal | float | None) -> None:
        """The account's equity at the day's start (the cap follows it when derived)."""
        self.equity = None if equity is None else float(equity)

    async def load(self, uow: UnitOfWork, as_of: datetime) -> float:
        """Read today's recorded spend (the budget day of `as_of`), and with a derived cap the account's day-start
        equity; return today's spend."""
        start = as_of.astimezone(self.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        day = start.date().isoformat()
        stored = 0.0
        for scope in self.scopes:
            stored += await uow.llm_calls.spend(scope, since=start, until=start + timedelta(days=1))
        if self.share_of_equity is not None:
            state = await uow.trading.load(self.scopes[0])
            if state.day_start is not None:
                self.set_equity(state.day_start.equity)
        with self._lock:
            if day != self._day:
                self._lost, self._day = 0.0, day
            self._stored, self._since_load = stored + self._unwritten + self._lost, 0.0
            self._wake()
        return self.spent

    def _fits(self, amount: float) -> bool:
        return self.spent < self.cap_usd and self.spent + self._reserved + amount <= self.cap_usd + _EPSILON

    def _hold(self, amount: float) -> Reservation:
        self._reserved += amount
        self._in_flight += 1
        return Reservation(amount)

    async def reserve(self, worst_case_usd: float) -> Reservation | None:
        """Hold `worst_case_usd` for a paid call: at once when it fits under the cap, after calls in flight settle
        when it fits only then; None (the call must not be made) when today's spend is at the cap or it cannot
        fit even with nothing else in flight."""
        count, hold = await self.reserve_most([worst_case_usd])
        return hold if count else None

    async def reserve_most(self, totals: Sequence[float], *, wait: bool = True) -> tuple[int, Reservation | None]:
        """Hold the largest of `totals` that fits (`totals[i]`: what the first i+1 items cost, non-decreasing):
        all of them as soon as the last fits (with `wait`, waiting for calls in flight when only that would make it
        fit), else, with nothing else in flight (or without `wait`), the most that fit now. Returns how many items
        are covered and the hold (None when none is)."""
        amounts = [max(0.0, t) for t in totals]
        if not amounts:
            return 0, None
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._fits(amounts[-1]):
                    return len(amounts), self._hold(amounts[-1])
                if not wait or self._in_flight == 0 or self.spent >= self.cap_usd:
                    count = sum(1 for a in amounts if self._fits(a))
                    return (count, self._hold(amounts[count - 1])) if count else (0, None)
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, waiter))
            await waiter

    def draw(self, hold: Reservation, amount: float) -> Reservation | None:
        """A call's reservation of `amount`, taken from a cycle's `hold` (what the hold lacks from the cap, if that
        fits now); None when it does not fit."""
        amount = max(0.0, amount)
        with self._lock:
            taken = 0.0 if hold.settled else min(hold.amount, amount)
            if amount - taken > 0 and not self._fits(amount - taken):
                return None
            hold.amount -= taken
            self._reserved -= taken
            return self._hold(amount)

    def grow(self, reservation: Reservation, extra: float, hold: Reservation | None = None) -> bool:
        """Add `extra` to a call's reservation (its next attempt), from `hold` first, the rest from the cap if it
        fits now; False (nothing changed) when it does not."""
        extra = max(0.0, extra)
        with self._lock:
            if reservation.settled:
                return False
            taken = 0.0 if hold is None or hold.settled else min(hold.amount, extra)
            if extra - taken > 0 and not self._fits(extra - taken):
                return False
            if hold is not None:
                hold.amount -= taken
            self._reserved += extra - taken
            reservation.amount += extra
            return True

    async def settle(self, reservation: Reservation, cost_usd: float, *, written: bool = False) -> None:
        """Replace `reservation` by the call's real cost (`written`: the caller has already stored its record)."""
        with self._lock:
            self._end(reservation)
            self._since_load += cost_usd
            if not written:
                self._unwritten += cost_usd
            self._wake()

    def release(self, hold: Reservation) -> None:
        """Give back what is left of a hold (nothing was spent from it directly)."""
        with self._lock:
            self._end(hold)
            self._wake()

    def _end(self, reservation: Reservation) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        self._in_flight -= 1
        self._reserved = max(0.0, self._reserved - reservation.amount) if self._in_flight else 0.0

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for loop, waiter in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_wake_one, waiter)

    def charge(self, cost_usd: float, *, written: bool = False) -> None:
        """Count money spent outside a reservation (a free model's call has none; a budget error's cost)."""
        with self._lock:
            self._since_load += cost_usd
            if not written:
                self._unwritten += cost_usd

    def exhaust(self) -> None:
        """The provider said the budget is spent: count today as spent to the cap."""
        with self._lock:
            self._since_load += max(0.0, self.cap_usd - self.spent)

    def written(self, cost_usd: float) -> None:
        """Buffered records costing `cost_usd` were written to the table."""
        with self._lock:
            self._unwritten = max(0.0, self._unwritten - cost_usd)

    def dropped(self, cost_usd: float) -> None:
        """Buffered records costing `cost_usd` will never be written (their transaction rolled back); the money
        was spent all the same and counts until the day ends."""
        with self._lock:
            self._unwritten = max(0.0, self._unwritten - cost_usd)
            self._lost += cost_usd


def _wake_one(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
