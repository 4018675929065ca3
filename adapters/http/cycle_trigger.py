"""HttpCycleTrigger: `POST {api}/api/cycles/run?type=event&symbol=X` with the API key in X-API-Key."""

from __future__ import annotations

from datetime import datetime

import httpx
import structlog

from domain.errors import CycleTriggerError
from domain.ports.trigger import CycleTrigger

log = structlog.get_logger(__name__)


class HttpCycleTrigger(CycleTrigger):
    """Implements `CycleTrigger` on Quorum's API.

    A 2xx answer returns its JSON "cycle_id"; 429, 5xx and transport failures raise a retryable
    `CycleTriggerError`, any other answer a non-retryable one. The API key is never logged.

    Args:
        base_url: the API's base URL, e.g. http://127.0.0.1:8000.
        api_key: the value of the X-API-Key header (None when the API has no key).
        client: an httpx client to use (closed by the caller); one is created when None.
        timeout: seconds per request.
    """

    def __init__(self, base_url: str, api_key: str | None, *, client: httpx.AsyncClient | None = None,
                 timeout: float = 10.0) -> None:
        self._url = base_url.rstrip("/") + "/api/cycles/run"
        self._headers = {"X-API-Key": api_key} if api_key else {}
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"HttpCycleTrigger(url={self._url!r}, api_key=***)"

    async def aclose(self) -> None:
        """Close the client if this trigger created it."""
        if self._own_client:
            await self._client.aclose()

    async def trigger(self, symbol: str, move: float, at: datetime) -> str | None:
        """Ask the API for an event cycle on `symbol`; returns the cycle id it answers with."""
        try:
            response = await self._client.post(self._url, params={"type": "event", "symbol": symbol},
                                               headers=self._headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise CycleTriggerError(f"API unreachable at {self._url} ({type(exc).__name__})", retryable=True) from None
        status = response.status_code
        if 200 <= status < 300:
            try:
                body = response.json()
            except ValueError:
                body = None
            cycle_id = body.get("cycle_id") if isinstance(body, dict) else None
            return None if cycle_id is None else str(cycle_id)
        retryable = status == 429 or status >= 500
        raise CycleTriggerError(f"API answered HTTP {status} to an event cycle request for {symbol}",
                                retryable=retryable)
