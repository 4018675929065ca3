"""Cash dividends in simulations, counted for Quorum and every benchmark alike or for nobody.

A simulated venue that knows its history's dividends (`DividendVenue`: the in-memory venue, the Alpaca-wire
emulator) credits each one as cash, at the open of its ex-date, to the shares held at the previous close.
The policy is "alike": dividends are counted only when every symbol the run may trade and every benchmark
symbol has dividend information; otherwise none is credited to anyone, and Quorum and the benchmarks are all
price returns. The report says which, and why.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from domain.money import ZERO

NAMED_MISSING = 5
"""How many symbols without dividend information a reason names (the rest are counted)."""


@dataclass(frozen=True, slots=True)
class DividendPayment:
    """One cash dividend credited to (or, for a short, debited from) the account."""

    at: datetime
    symbol: str
    qty: Decimal
    per_share: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class DividendPolicy:
    """Whether a run counted dividends, why, and what Quorum's account was credited.

    Attributes:
        counted: dividends were credited to Quorum and to every benchmark.
        reason: one sentence for the report.
        credited: cash credited to Quorum's account in the run (0 when not counted).
    """

    counted: bool
    reason: str
    credited: Decimal = ZERO

    def to_json(self) -> dict[str, Any]:
        """{"counted", "reason", "credited"} for summary.json."""
        return {"counted": self.counted, "reason": self.reason, "credited": str(self.credited)}


@runtime_checkable
class DividendVenue(Protocol):
    """A simulated venue that knows the cash dividends of the history it replays and can credit them."""

    def dividend_symbols(self) -> frozenset[str]:
        """Symbols whose data says what they paid (possibly nothing): the others have no dividend information."""
        ...

    def dividends_of(self, symbol: str) -> Mapping[date, Decimal]:
        """Cash dividend per share of `symbol` by ex-date (empty when it paid none or is unknown)."""
        ...

    def credit_dividends(self, on: bool) -> None:
        """Credit dividends from now on (True, the default) or never (False)."""
        ...

    def dividend_payments(self) -> list[DividendPayment]:
        """Every dividend credited so far, oldest first."""
        ...


def dividend_policy(known: Collection[str], symbols: Collection[str]) -> DividendPolicy:
    """The "alike" policy for a run that may trade or benchmark against `symbols`.

    Args:
        known: symbols with dividend information.
        symbols: the symbols the run may trade and the benchmark symbols.
    """
    missing = sorted(set(symbols) - set(known))
    if not symbols:
        return DividendPolicy(False, "no symbols: nothing to count")
    if not known:
        return DividendPolicy(False, "the data has no dividend information (no Adj Close or Dividends column): no "
                                     "dividend is counted for anyone, so Quorum and the benchmarks are all price "
                                     "returns")
    if not missing:
        return DividendPolicy(True, f"every one of the {len(set(symbols))} traded and benchmark symbols has dividend "
                                    "information: cash dividends are credited on their ex-dates to Quorum and to "
                                    "every benchmark alike")
    named = ", ".join(missing[:NAMED_MISSING]) + (f" and {len(missing) - NAMED_MISSING} more"
                                                  if len(missing) > NAMED_MISSING else "")
    return DividendPolicy(False, f"no dividend information for {len(missing)} of the {len(set(symbols))} traded and "
                                 f"benchmark symbols ({named}): no dividend is counted for anyone, so Quorum and "
                                 "the benchmarks are all price returns")


def dividends_in(payments: Collection[DividendPayment]) -> Decimal:
    """Total cash of `payments`."""
    return sum((p.amount for p in payments), ZERO)
