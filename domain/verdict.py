"""What a cycle decided for one symbol: the `final` of every decision in the event log and decisions.jsonl."""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    """The outcome of one symbol's proposal; each comes with a reason.

    The values are the strings reports have always carried, so decisions.jsonl and the event log read the same.
    """

    HOLD = "HOLD"
    """No order: the signal was HOLD or not applicable, or the position was already closed at the broker."""
    BUY = "BUY"
    """An entry order was sent (on the shadow book while the circuit breaker is tripped)."""
    SELL = "SELL"
    """An exit order was sent."""
    REJECTED = "REJECTED"
    """A validator, a hard limit or the broker refused the proposal."""
    SHADOW_EXIT = "SHADOW_EXIT"
    """A shadow-book position was closed on the shadow book (no order sent)."""
