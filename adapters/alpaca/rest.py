"""`AlpacaRest`: the one place that talks HTTP (httpx) to Alpaca.

It sends the keys only as headers, retries 429, 5xx and timeouts with exponential back-off
(honouring ``Retry-After``), and turns every failure into a typed `domain.errors.BrokerError`
(see `adapters.alpaca.errors`). Non-idempotent requests (POST, PATCH) are retried only when they
certainly did not reach Alpaca (429, connection refused); the broker reconciles the other cases
by client order id.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
import structlog

from adapters.alpaca.config import AlpacaConfig
from adapters.alpaca.errors import (
    TransientFailure,
    error_for_status,
    error_for_transport,
    parse_retry_after,
    scrub,
    with_attempts,
)
from domain.errors import BrokerError

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]
_IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE"})
_MAX_TEXT = 300


@functools.cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()


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

    @property
    def sleep(self) -> Sleep:
        """The injected sleep (also used by callers that poll)."""
        return self._sleep

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
            text = scrub(response.text[:_MAX_TEXT], self._secrets)
            raise BrokerError(f"Alpaca answered {method} {path} with a body that is not JSON: {text!r}") from None
