"""CurrencyDisplay: which currency to show beside USD, and at what rate, for reports, the API and the chat.

A configured rate wins; otherwise the rate source is asked, at most once per day (the answer is kept for the day).
When the source cannot be reached and no rate is configured, amounts are shown in USD only with a note saying why
and how to configure a rate; a failed ask is repeated at most every `RETRY_AFTER`. The account trades in USD:
nothing here reaches an order.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import structlog

from domain.currency import ACCOUNT_CURRENCY, DisplayCurrency, FxRate, FxUnavailableError
from domain.ports.fx import FxRates

log = structlog.get_logger(__name__)
RETRY_AFTER = timedelta(minutes=10)
RATE_SETTING = "QUORUM_REPORTING__FX_RATE"


class CurrencyDisplay:
    """Gives the `DisplayCurrency` of a moment.

    Args:
        currency: ISO code to show beside USD ("USD": nothing beside).
        configured_rate: units of `currency` per USD; when set the source is never asked.
        rates: where to fetch the rate when none is configured (None: only a configured rate is used).
    """

    def __init__(self, currency: str = ACCOUNT_CURRENCY, *, configured_rate: Decimal | None = None,
                 rates: FxRates | None = None) -> None:
        self.currency = currency.upper()
        self._configured = configured_rate
        self._rates = rates
        self._by_day: dict[date, FxRate] = {}
        self._failed: tuple[datetime, str] | None = None

    async def at(self, as_of: datetime) -> DisplayCurrency:
        """What to show at `as_of`: the rate of that day, or the problem when there is none."""
        if self.currency == ACCOUNT_CURRENCY:
            return DisplayCurrency()
        if self._configured is not None:
            return DisplayCurrency(self.currency, FxRate(self.currency, self._configured, as_of.date(), "configured"))
        day = as_of.date()
        if day in self._by_day:
            return DisplayCurrency(self.currency, self._by_day[day])
        if self._rates is None:
            return DisplayCurrency(self.currency, problem=f"no {self.currency} rate configured: set {RATE_SETTING}")
        if self._failed is not None and timedelta(0) <= as_of - self._failed[0] < RETRY_AFTER:
            return DisplayCurrency(self.currency, problem=self._failed[1])
        try:
            rate = await self._rates.usd_to(self.currency)
        except FxUnavailableError as exc:
            problem = f"{exc}; set {RATE_SETTING} (e.g. 0.79) to use a fixed rate"
            log.warning("fx_rate_unavailable", currency=self.currency, error=str(exc))
            self._failed = (as_of, problem)
            return DisplayCurrency(self.currency, problem=problem)
        self._failed = None
        self._by_day = {day: rate}
        return DisplayCurrency(self.currency, rate)
