"""Money moved in or out of the account: each deposit, withdrawal or cash journal the broker lists is booked once
(by its id), kept in a running `net_deposits` total, written to the event log, and handed to the circuit breaker
and the day's start so that moving money is never a gain or a loss.

Booking starts at the first cycle that sees no book (the baseline): money moved before it is part of the starting
equity. After that every cycle asks the broker for the transfers of the last `LOOKBACK` (a transfer may be listed
late) and books the ones it has not booked yet; one dated after the cycle's `as_of` waits for a later cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from domain.events import Event, EventType, Severity
from domain.models.cash_transfer import CashTransfer
from domain.money import ZERO
from domain.ports.broker import Broker
from domain.ports.clock import MarketCalendar
from domain.ports.uow import UnitOfWork
from domain.risk.sizing import usd
from domain.trading_state import DayStart

TRANSFERS_DOC = "cash_transfers"
LOOKBACK = timedelta(days=7)
_KIND_TEXT = {"CSD": "deposit", "CSW": "withdrawal", "JNLC": "cash journal"}


@dataclass(frozen=True)
class TransferBook:
    """What has been booked: the baseline time, every transfer booked since (oldest first) and their sum."""

    baseline_at: datetime
    booked: tuple[CashTransfer, ...] = ()

    @property
    def net_deposits(self) -> Decimal:
        """Deposits minus withdrawals booked since the baseline."""
        return sum((t.amount for t in self.booked), ZERO)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return {"baseline_at": self.baseline_at.isoformat(),
                "booked": [{"id": t.id, "amount": str(t.amount), "at": t.at.isoformat(), "kind": t.kind,
                            "description": t.description} for t in self.booked]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransferBook:
        """Rebuild a book written by `to_dict`."""
        return cls(datetime.fromisoformat(d["baseline_at"]),
                   tuple(CashTransfer(b["id"], Decimal(b["amount"]), datetime.fromisoformat(b["at"]), b["kind"],
                                      b.get("description", "")) for b in d.get("booked", ())))


@dataclass(frozen=True)
class TransferBooking:
    """One booking: the book after it, the transfers booked now and their events."""

    book: TransferBook
    new: tuple[CashTransfer, ...] = ()
    events: tuple[Event, ...] = ()

    @property
    def flow(self) -> Decimal:
        """Net money moved by the transfers booked now (withdrawals negative)."""
        return sum((t.amount for t in self.new), ZERO)


async def book_transfers(uow: UnitOfWork, broker: Broker, *, scope: str, as_of: datetime,
                         cycle_id: str | None) -> TransferBooking:
    """Book the transfers the broker lists that are not booked yet, once each, and store the book.

    Args:
        uow: the transaction the book is stored in.
        broker: lists the transfers (`Broker.cash_transfers_since`).
        scope: the book's scope.
        as_of: now; transfers dated later wait.
        cycle_id: the cycle the events belong to (None for a reconciliation).

    Returns:
        The booking; the first call for a scope only sets the baseline (nothing is booked).
    """
    doc = await uow.state.load(scope, TRANSFERS_DOC)
    if not doc:
        book = TransferBook(baseline_at=as_of)
        await uow.state.save(scope, TRANSFERS_DOC, book.to_dict(), at=as_of)
        return TransferBooking(book)
    book = TransferBook.from_dict(doc)
    known = {t.id for t in book.booked}
    listed = await broker.cash_transfers_since(max(book.baseline_at, as_of - LOOKBACK))
    new = tuple(t for t in listed if t.id not in known and book.baseline_at < t.at <= as_of)
    if not new:
        return TransferBooking(book)
    book = TransferBook(book.baseline_at, (*book.booked, *new))
    await uow.state.save(scope, TRANSFERS_DOC, book.to_dict(), at=as_of)
    total = book.net_deposits
    events = tuple(transfer_event(t, net_deposits=total, scope=scope, cycle_id=cycle_id, at=as_of) for t in new)
    return TransferBooking(book, new, events)


def transfer_event(t: CashTransfer, *, net_deposits: Decimal, scope: str, cycle_id: str | None,
                   at: datetime) -> Event:
    """A CASH_TRANSFER event (INFO): what moved, when, and the net deposits after it."""
    kind = _KIND_TEXT.get(t.kind, t.kind)
    direction = "in" if t.amount > 0 else "out"
    return Event(type=EventType.CASH_TRANSFER, at=at, severity=Severity.INFO, cycle_id=cycle_id, scope=scope,
                 message=f"{kind} of {usd(abs(t.amount))} {direction} on {t.at.date().isoformat()} recorded; "
                         f"net deposits now {usd(net_deposits)} (not counted as profit or loss)",
                 payload={"id": t.id, "kind": t.kind, "amount": str(t.amount), "transfer_at": t.at.isoformat(),
                          "net_deposits": str(net_deposits), "description": t.description})


def day_start_with_transfers(start: DayStart, *, stored: bool, booking: TransferBooking, as_of: datetime,
                             calendar: MarketCalendar) -> DayStart:
    """The day's start equity moved by the money moved since it was measured, so a withdrawal is not a daily loss
    and a deposit is not a daily gain.

    Args:
        start: the day's start as `day_start` gives it.
        stored: whether `start` was measured by an earlier cycle today (else it was measured now).
        booking: this cycle's booking.
        as_of: now.
        calendar: to find the previous session's close.

    Returns:
        A stored start plus the transfers booked now; a start from the previous close plus every booked transfer
        dated after that close; a start measured now unchanged (the equity already holds every transfer).
    """
    if stored:
        moved = booking.flow
    elif start.source == "previous_close":
        midnight = datetime.combine(as_of.astimezone(calendar.tz).date(), time.min, calendar.tz)
        close = calendar.session_close(calendar.previous_session(midnight))
        moved = sum((t.amount for t in booking.book.booked if t.at > close), ZERO)
    else:
        moved = ZERO
    return start if moved == 0 else DayStart(start.day, start.equity + moved, start.source)
