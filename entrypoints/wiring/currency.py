"""The currency shown beside USD (settings.reporting): a configured rate, else the Frankfurter API once a day."""

from __future__ import annotations

from adapters.fx import FrankfurterRates
from application.currency import CurrencyDisplay
from entrypoints.settings import Settings


def currency_display(settings: Settings) -> CurrencyDisplay:
    """USD only by default; QUORUM_REPORTING__CURRENCY=GBP adds GBP at QUORUM_REPORTING__FX_RATE, or at the rate
    fetched from QUORUM_REPORTING__FX_URL when no rate is configured."""
    r = settings.reporting
    if r.currency == "USD":
        return CurrencyDisplay()
    rates = None if r.fx_rate is not None else FrankfurterRates(r.fx_url, timeout=r.fx_timeout_s)
    return CurrencyDisplay(r.currency, configured_rate=r.fx_rate, rates=rates)
