"""FrankfurterRates: `GET {base}/latest?from=USD&to=GBP` on the Frankfurter API (ECB reference rates, no key).

The answer is `{"amount": 1.0, "base": "USD", "date": "2024-06-07", "rates": {"GBP": 0.78}}`
(https://www.frankfurter.app/docs/). The rate is read as the decimal text of the JSON number.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import structlog

from domain.currency import ACCOUNT_CURRENCY, FxRate, FxUnavailableError
from domain.ports.fx import FxRates

log = structlog.get_logger(__name__)
DEFAULT_URL = "https://api.frankfurter.app"


class FrankfurterRates(FxRates):
    """Implements `FxRates` on the Frankfurter API.

    Args:
        base_url: the API root (a local server in tests).
        timeout: seconds per request.
        transport: optional httpx transport.
    """

    def __init__(self, base_url: str = DEFAULT_URL, *, timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._transport = transport

    def __repr__(self) -> str:
        return f"FrankfurterRates(base_url={self._base!r})"

    async def usd_to(self, quote: str) -> FxRate:
        """The latest ECB reference rate of `quote` per USD.

        Raises:
            FxUnavailableError: unreachable, a non-2xx answer, or an answer without a positive rate for `quote`.
        """
        quote = quote.upper()
        url = f"{self._base}/latest"
        try:
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
                response = await client.get(url, params={"from": ACCOUNT_CURRENCY, "to": quote})
        except httpx.HTTPError as exc:
            raise FxUnavailableError(f"the exchange rate service at {self._base} could not be reached "
                                     f"({type(exc).__name__})") from None
        if not response.is_success:
            raise FxUnavailableError(f"the exchange rate service at {self._base} answered HTTP "
                                     f"{response.status_code}")
        try:
            body = json.loads(response.text, parse_float=Decimal)
            rate = _rate(body, quote)
            on = date.fromisoformat(str(body["date"]))
            fx = FxRate(quote, rate, on, "frankfurter")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise FxUnavailableError(f"the exchange rate service at {self._base} gave no usable USD->{quote} rate "
                                     f"({type(exc).__name__}: {exc})") from None
        log.info("fx_rate_fetched", quote=quote, rate=str(fx.rate), on=fx.on.isoformat())
        return fx


def _rate(body: Any, quote: str) -> Decimal:
    if not isinstance(body, dict) or body.get("base") != ACCOUNT_CURRENCY:
        raise ValueError(f"the answer is not based on {ACCOUNT_CURRENCY}")
    value = body["rates"][quote]
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"rate {value!r} is not a number")
    return Decimal(value)
