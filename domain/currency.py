"""Showing USD amounts in the user's currency as well: the account trades in USD; a report or the chat can add
the same amount in GBP (or another currency) at a configured or fetched rate. Nothing here reaches an order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from domain.errors import QuorumError

ACCOUNT_CURRENCY = "USD"
SYMBOLS = {"USD": "$", "GBP": "£", "EUR": "€"}
_CENT = Decimal("0.01")


class FxUnavailableError(QuorumError):
    """No exchange rate could be had (the rate service is unreachable or answered nonsense, and none is configured);
    the message says what failed and how to configure a rate."""


@dataclass(frozen=True, slots=True)
class FxRate:
    """Units of `quote` one USD buys.

    Attributes:
        quote: ISO currency code shown beside USD, e.g. "GBP".
        rate: `quote` per USD (e.g. 0.79), positive.
        on: the day the rate is for (the rate service's date, or the day it was configured for).
        source: "configured" or the service's name (e.g. "frankfurter").
    """

    quote: str
    rate: Decimal
    on: date
    source: str

    def __post_init__(self) -> None:
        if not self.rate.is_finite() or self.rate <= 0:
            raise ValueError(f"an exchange rate must be positive, got {self.rate}")

    def convert(self, usd: Decimal) -> Decimal:
        """`usd` in the quote currency, to the cent."""
        return (usd * self.rate).quantize(_CENT, rounding=ROUND_HALF_UP)

    def to_json(self) -> dict[str, str]:
        """JSON-safe description of the rate."""
        return {"currency": self.quote, "rate": str(self.rate), "date": self.on.isoformat(), "source": self.source}


@dataclass(frozen=True, slots=True)
class DisplayCurrency:
    """What to show beside USD: nothing (`rate` None and no `problem`), an amount at `rate`, or why not (`problem`)."""

    currency: str = ACCOUNT_CURRENCY
    rate: FxRate | None = None
    problem: str | None = None

    @property
    def shown(self) -> bool:
        """Whether a second currency is shown."""
        return self.rate is not None

    def amount(self, usd: Decimal) -> Decimal | None:
        """`usd` in the display currency, or None when there is no rate."""
        return self.rate.convert(usd) if self.rate is not None else None

    def text(self, usd: Decimal, *, cents: bool = True) -> str:
        """"$650.00 (£512.35)", or "$650.00" when no second currency is shown."""
        first = money_text(usd, ACCOUNT_CURRENCY, cents=cents)
        if self.rate is None:
            return first
        return f"{first} ({money_text(self.rate.convert(usd), self.rate.quote, cents=cents)})"

    def note(self) -> str:
        """One line about the rate used (or why none is), empty when only USD is wanted."""
        if self.rate is not None:
            r = self.rate
            return (f"{r.quote} at {r.rate} per USD ({r.source}, {r.on.isoformat()}); the account trades in USD")
        return f"{self.currency} not shown: {self.problem}" if self.problem else ""

    def to_json(self, **usd_amounts: Decimal | None) -> dict[str, object]:
        """The API's extra field: the currency, the rate (or the problem) and each given amount converted."""
        out: dict[str, object] = {"currency": self.currency}
        if self.rate is not None:
            out["rate"] = self.rate.to_json()
            out.update({k: None if v is None else str(self.rate.convert(v)) for k, v in usd_amounts.items()})
        else:
            out["problem"] = self.problem
        return out


def money_text(amount: Decimal, currency: str, *, cents: bool = True) -> str:
    """"$1,234.56", "-£12.30", or "1,234.56 CHF" for a currency without a known symbol."""
    sign = "-" if amount < 0 else ""
    body = f"{abs(amount):,.2f}" if cents else f"{abs(amount):,.0f}"
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {currency}"
