"""Alpaca REST calls: HTTP failures become typed domain errors, transient ones are retried.

`AlpacaRest` is the one place that talks HTTP (httpx). It sends the keys only as headers,
retries 429, 5xx and timeouts with exponential back-off (honouring ``Retry-After``), and
turns every failure into a `domain.errors.BrokerError` subclass whose message names the
request and carries Alpaca's own message and code, with the keys scrubbed out.

Non-idempotent requests (POST, PATCH) are retried only when they certainly did not reach
Alpaca (429, connection refused); the broker reconciles the other cases by client order id.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from adapters.alpaca.config import AlpacaConfig
from domain.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerUnavailableError,
    ForbiddenError,
    InsufficientBuyingPowerError,
    NotFoundError,
    OrderRejectedError,
    RateLimitedError,
)

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]
AUTH_MESSAGE = (
    "Alpaca rejected the API key (401): check QUORUM_BROKER__ALPACA_API_KEY/SECRET_KEY and paper/live mode"
)
_IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE"})
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


def alpaca_detail(response: httpx.Response) -> tuple[str, int | None]:
    """Alpaca's error message and numeric code from a response body (JSON or text)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
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


def error_for_status(response: httpx.Response, method: str, path: str, secrets: tuple[str, ...]) -> BrokerError:
    """The domain error for a non-2xx Alpaca response."""
    status = response.status_code
    message, code = alpaca_detail(response)
    said = f"Alpaca said: {message or '(no message)'}" + (f" (code {code})" if code is not None else "")
    where = f"{method} {path}"
    if status == 401:
        text = f"{AUTH_MESSAGE}; {said}"
        return BrokerAuthError(scrub(text, secrets))
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


@functools.cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def with_attempts(error: BrokerError, attempts: int) -> BrokerError:
    """The same error type, its message saying how many attempts were made."""
    return type(error)(f"{error}; gave up after {attempts} attempt{'s' if attempts != 1 else ''}")


class AlpacaRest:
    """A JSON client for one Alpaca API (trading or data) with retries and typed errors.

    Args:
        config: keys, timeout and retry policy.
        base_url: API root, e.g. ``config.trading_base_url``.
        sleep: awaited between retries; tests inject a recorder so nothing really sleeps.
        transport: optional httpx transport (tests may pass a mock transport).
    """

    def __init__(
        self,
        config: AlpacaConfig,
        base_url: str,
        *,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._secrets = config.secrets()
        self._sleep = sleep
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={**config.auth_headers(), "Accept": "application/json"},
            timeout=httpx.Timeout(config.timeout),
            transport=transport,
            verify=_tls(),
        )

    def __repr__(self) -> str:
        return f"AlpacaRest(base_url={str(self._client.base_url)!r})"

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt."""
        return self._config.max_retries

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def send_once(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """One attempt: the parsed JSON body (None when empty).

        Raises:
            TransientFailure: 429, 5xx, timeout or connection error.
            BrokerError: any other failure, already typed (401, 403, 404, 422, ...).
        """
        try:
            response = await self._client.request(method, path, params=params, json=body)
        except httpx.TransportError as exc:
            raise error_for_transport(exc, method, path, self._config.timeout) from None
        if response.is_success:
            return self._parse(response, method, path)
        error = error_for_status(response, method, path, self._secrets)
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientFailure(error, retry_after=retry_after, maybe_executed=False)
        if response.status_code >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientFailure(error, retry_after=retry_after, maybe_executed=True)
        raise error

    async def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """Send with retries; the parsed JSON body (None when empty).

        POST and PATCH are repeated only when the failed attempt certainly was not processed.

        Raises:
            BrokerError: the typed error of the last attempt.
        """
        attempt = 0
        while True:
            try:
                return await self.send_once(method, path, params=params, body=body)
            except TransientFailure as failure:
                unsafe = failure.maybe_executed and method.upper() not in _IDEMPOTENT
                if unsafe or attempt >= self._config.max_retries:
                    raise with_attempts(failure.error, attempt + 1) from None
                await self.back_off(attempt, failure, method, path)
                attempt += 1

    async def back_off(self, attempt: int, failure: TransientFailure, method: str, path: str) -> None:
        """Wait before retry number `attempt + 1`: Retry-After if given, else exponential, both capped."""
        if failure.retry_after is not None:
            delay = failure.retry_after
        else:
            delay = self._config.backoff_seconds * (2**attempt)
        delay = min(delay, self._config.max_backoff_seconds)
        log.warning(
            "alpaca_retry",
            method=method,
            path=path,
            attempt=attempt + 1,
            delay_s=round(delay, 3),
            error=type(failure.error).__name__,
        )
        await self._sleep(delay)

    def _parse(self, response: httpx.Response, method: str, path: str) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            text = scrub(response.text[:_MAX_DETAIL], self._secrets)
            raise BrokerError(f"Alpaca answered {method} {path} with a body that is not JSON: {text!r}") from None
