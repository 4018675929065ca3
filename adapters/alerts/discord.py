"""DiscordAlertChannel: alerts as embeds posted to a Discord webhook.

Rate limits: a 429 answer raises a retryable `AlertDeliveryError` carrying Discord's `retry_after` (JSON
body, seconds) or the Retry-After header; when a successful answer says the bucket is empty
(X-RateLimit-Remaining: 0) the next send first waits X-RateLimit-Reset-After seconds. 5xx answers and
transport failures are retryable, other 4xx answers are not. The webhook URL is a secret: it never
appears in a log line or an error message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import structlog

from domain.errors import AlertDeliveryError
from domain.events import Severity
from domain.ports.alerts import Alert, AlertChannel

log = structlog.get_logger(__name__)

COLOURS = {
    Severity.CRITICAL: 0xE74C3C,
    Severity.WARNING: 0xF39C12,
    Severity.INFO: 0x3498DB,
    Severity.DEBUG: 0x95A5A6,
}
# Discord's embed limits.
_TITLE, _DESCRIPTION, _FIELDS, _FIELD_NAME, _FIELD_VALUE = 256, 4096, 25, 256, 1024
_MAX_RESET_WAIT = 30.0


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def embed_payload(alert: Alert, *, username: str = "Quorum") -> dict[str, Any]:
    """The webhook JSON body for `alert`: one embed, no mentions."""
    fields = [
        {"name": _clip(k, _FIELD_NAME) or "-", "value": _clip(v, _FIELD_VALUE) or "-", "inline": len(v) <= 40}
        for k, v in list(alert.fields.items())[:_FIELDS]
    ]
    embed: dict[str, Any] = {
        "title": _clip(alert.title, _TITLE),
        "description": _clip(alert.body, _DESCRIPTION),
        "color": COLOURS.get(Severity(alert.severity), COLOURS[Severity.INFO]),
        "fields": fields,
        "timestamp": alert.at.isoformat(),
        "footer": {"text": f"Quorum · {alert.type} · {Severity(alert.severity).value}"},
    }
    return {"username": username, "embeds": [embed], "allowed_mentions": {"parse": []}}


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and _seconds(body.get("retry_after")) is not None:
        return _seconds(body.get("retry_after"))
    return _seconds(response.headers.get("Retry-After"))


class DiscordAlertChannel(AlertChannel):
    """Implements `AlertChannel` on a Discord webhook.

    Args:
        webhook_url: the webhook URL (a secret).
        client: an httpx client to use (closed by the caller); one is created when None.
        timeout: seconds per request.
        name: the channel name used in routes.
        username: the name the webhook posts as.
        sleep: used to wait for an exhausted rate-limit bucket (injected in tests).
    """

    def __init__(self, webhook_url: str, *, client: httpx.AsyncClient | None = None, timeout: float = 10.0,
                 name: str = "discord", username: str = "Quorum",
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        if not webhook_url.startswith(("https://", "http://")):
            raise ValueError("the Discord webhook URL must be an http(s) URL")
        self.name = name
        self._url = webhook_url
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout
        self._username = username
        self._sleep = sleep
        self._blocked_until = 0.0

    def __repr__(self) -> str:
        return f"DiscordAlertChannel(name={self.name!r}, webhook=***)"

    async def aclose(self) -> None:
        """Close the client if this channel created it."""
        if self._own_client:
            await self._client.aclose()

    async def send(self, alert: Alert) -> None:
        """Post `alert` as an embed.

        Raises:
            AlertDeliveryError: 429 (retryable, with retry_after), 5xx or transport failure (retryable),
                any other non-2xx answer (not retryable).
        """
        wait = self._blocked_until - time.monotonic()
        if wait > 0:
            await self._sleep(min(wait, _MAX_RESET_WAIT))
        try:
            response = await self._client.post(self._url, json=embed_payload(alert, username=self._username),
                                               timeout=self._timeout)
        except httpx.TimeoutException:
            raise AlertDeliveryError("Discord webhook timed out", retryable=True) from None
        except httpx.HTTPError as exc:
            raise AlertDeliveryError(f"Discord webhook unreachable ({type(exc).__name__})", retryable=True) from None
        status = response.status_code
        if 200 <= status < 300:
            self._note_bucket(response)
            return
        if status == 429:
            after = _retry_after(response)
            raise AlertDeliveryError(f"Discord rate limit (429), retry after {after}s", retryable=True,
                                     retry_after=after)
        if status >= 500:
            raise AlertDeliveryError(f"Discord webhook failed with HTTP {status}", retryable=True)
        raise AlertDeliveryError(f"Discord refused the alert with HTTP {status}: {self._reason(response)}",
                                 retryable=False)

    def _note_bucket(self, response: httpx.Response) -> None:
        if response.headers.get("X-RateLimit-Remaining") == "0":
            reset = _seconds(response.headers.get("X-RateLimit-Reset-After")) or 0.0
            self._blocked_until = time.monotonic() + reset
            log.debug("discord_bucket_empty", channel=self.name, reset_after=reset)

    @staticmethod
    def _reason(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return "no details"
        if isinstance(body, dict) and body.get("message"):
            return _clip(str(body.get("message")), 200)
        return "no details"
