"""Alpaca HTTP failures as typed domain errors.

Every non-2xx answer becomes a `domain.errors.BrokerError` subclass whose message names the
request and carries Alpaca's own message and code, with the keys scrubbed out. Alpaca's user
protections are recognised by their message, because the same refusal has been seen with more
than one status and code:

- ``insufficient qty available for order`` (403, body with ``available``, ``existing_qty``,
  ``held_for_orders``, ``related_orders``, ``symbol``): `InsufficientQtyError`.
- ``potential wash trade detected. use complex orders`` (422 code 42210000, reported in
  https://github.com/Petersoj/alpaca-java/issues/145; 403 code 40310000 on Alpaca's forum):
  `WashTradeError`. Rule: https://docs.alpaca.markets/docs/user-protection#preventing-wash-trades
- ``trade denied due to pattern day trading protection`` (403 code 40310100; PDT protection
  answers 403, https://docs.alpaca.markets/docs/user-protection): `PatternDayTraderError`.
- ``insufficient buying power`` (403): `InsufficientBuyingPowerError`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from domain.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerUnavailableError,
    ForbiddenError,
    InsufficientBuyingPowerError,
    InsufficientQtyError,
    NotFoundError,
    OrderRejectedError,
    PatternDayTraderError,
    RateLimitedError,
    WashTradeError,
)

AUTH_MESSAGE = (
    "Alpaca rejected the API key (401): check QUORUM_BROKER__ALPACA_API_KEY/SECRET_KEY and paper/live mode"
)
PDT_CODE = 40310100
SIP_REFUSAL = "subscription does not permit"
_MAX_DETAIL = 300


class TransientFailure(Exception):
    """A failed attempt that may succeed if repeated (429, 5xx, timeout, connection error).

    Attributes:
        error: the domain error to raise once retries are exhausted.
        retry_after: seconds the server asked us to wait, if it said so.
        maybe_executed: whether the request may have been processed despite the failure.
    """

    def __init__(self, error: BrokerError, *, retry_after: float | None, maybe_executed: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        self.maybe_executed = maybe_executed


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def alpaca_detail(response: httpx.Response) -> tuple[str, int | None]:
    """Alpaca's error message and numeric code from a response body (JSON or text)."""
    body = _body(response)
    if body is None:
        return response.text.strip()[:_MAX_DETAIL], None
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("error") or "").strip()
        code = body.get("code")
        return message[:_MAX_DETAIL], code if isinstance(code, int) else None
    return str(body)[:_MAX_DETAIL], None


def is_duplicate_client_order_id(error: BrokerError) -> bool:
    """Whether Alpaca refused an order because its client_order_id is already used."""
    text = str(error).lower()
    return "client_order_id" in text and any(w in text for w in ("unique", "duplicate", "already", "exists"))


def is_sip_refusal(error: BrokerError) -> bool:
    """Whether the market data API refused SIP data for the account's subscription (403).

    Source: https://docs.alpaca.markets/docs/market-data-faq ("subscription does not permit querying
    recent SIP data").
    """
    return isinstance(error, ForbiddenError) and SIP_REFUSAL in str(error).lower()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _insufficient_qty(body: dict[str, Any], text: str) -> InsufficientQtyError:
    related = body.get("related_orders")
    return InsufficientQtyError(
        text,
        symbol=str(body.get("symbol") or ""),
        available=_decimal(body.get("available")),
        held_for_orders=_decimal(body.get("held_for_orders")),
        related_orders=tuple(str(r) for r in related) if isinstance(related, list) else (),
    )


def _protection_error(body: Any, message: str, code: int | None, where: str, said: str,
                      secrets: tuple[str, ...]) -> BrokerError | None:
    text = message.lower()
    if "insufficient qty" in text:
        details = body if isinstance(body, dict) else {}
        extra = ", ".join(f"{k}={details[k]}" for k in ("symbol", "available", "existing_qty", "held_for_orders")
                          if details.get(k) is not None)
        msg = f"Alpaca refused {where}: shares are held by open orders ({extra or 'no details'}); {said}"
        return _insufficient_qty(details, scrub(msg, secrets))
    if "wash trade" in text:
        return WashTradeError(scrub(f"Alpaca refused {where} as a potential wash trade (an open order on the "
                                    f"other side in the same symbol); {said}", secrets))
    if code == PDT_CODE or "pattern day trad" in text:
        return PatternDayTraderError(scrub(f"Alpaca refused {where} by its pattern day trader protection; {said}",
                                           secrets))
    return None


def error_for_status(response: httpx.Response, method: str, path: str, secrets: tuple[str, ...]) -> BrokerError:
    """The domain error for a non-2xx Alpaca response."""
    status = response.status_code
    message, code = alpaca_detail(response)
    said = f"Alpaca said: {message or '(no message)'}" + (f" (code {code})" if code is not None else "")
    where = f"{method} {path}"
    if status == 401:
        return BrokerAuthError(scrub(f"{AUTH_MESSAGE}; {said}", secrets))
    if status in (403, 422):
        protection = _protection_error(_body(response), message, code, where, said, secrets)
        if protection is not None:
            return protection
    if status == 403:
        if "buying power" in message.lower():
            return InsufficientBuyingPowerError(scrub(f"insufficient buying power for {where} (403); {said}", secrets))
        return ForbiddenError(scrub(f"Alpaca refused {where} (403); {said}", secrets))
    if status == 404:
        return NotFoundError(scrub(f"Alpaca has no such resource for {where} (404); {said}", secrets))
    if status in (400, 422) and path.startswith("/v2/orders"):
        return OrderRejectedError(scrub(f"Alpaca rejected the order ({status}) on {where}; {said}", secrets))
    if status == 429:
        return RateLimitedError(scrub(f"Alpaca rate limit hit (429) on {where}; {said}", secrets))
    if status >= 500:
        return BrokerUnavailableError(scrub(f"Alpaca failed on its side (HTTP {status}) on {where}; {said}", secrets))
    return BrokerError(scrub(f"Alpaca refused {where} (HTTP {status}); {said}", secrets))


def error_for_transport(exc: httpx.TransportError, method: str, path: str, timeout: float) -> TransientFailure:
    """A transient failure for a timeout or connection problem (the message names no URL secrets)."""
    where = f"{method} {path}"
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError | httpx.PoolTimeout):
        error = BrokerUnavailableError(f"could not connect to Alpaca for {where}: {type(exc).__name__}")
        return TransientFailure(error, retry_after=None, maybe_executed=False)
    if isinstance(exc, httpx.TimeoutException):
        error = BrokerUnavailableError(f"Alpaca did not answer {where} within {timeout:g}s")
        return TransientFailure(error, retry_after=None, maybe_executed=True)
    error = BrokerUnavailableError(f"connection to Alpaca broke during {where}: {type(exc).__name__}")
    return TransientFailure(error, retry_after=None, maybe_executed=True)


def with_attempts(error: BrokerError, attempts: int) -> BrokerError:
    """The same error type (only transient ones are retried), its message saying how many attempts were made."""
    return type(error)(f"{error}; gave up after {attempts} attempt{'s' if attempts != 1 else ''}")
