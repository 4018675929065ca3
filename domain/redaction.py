"""Secrets known to the process, and text, events and documents with them masked.

The entrypoints register every secret setting at start-up (API keys, passwords, webhook URLs...). Logs, alerts
and the event log all mask them with `redact`, so a provider's error message quoting a key is stored as `***`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from domain.events import Event

MASK = "***"
MIN_SECRET_CHARS = 4
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is masked wherever it appears (values under 4 characters are ignored)."""
    if value and len(value) >= MIN_SECRET_CHARS:
        _secrets.add(value)


def has_secrets() -> bool:
    """Whether any secret is registered."""
    return bool(_secrets)


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***` (longest first, so no part of one is left)."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_document(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings, numbers) with every string, keys included, passed through `redact`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_document(k): redact_document(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_document(v) for v in value]
    return value


def scrub_event(event: Event) -> Event:
    """`event` with registered secrets masked in its message and in every string of its payload."""
    if not _secrets:
        return event
    message, payload = redact(event.message), redact_document(event.payload)
    if message == event.message and payload == event.payload:
        return event
    return replace(event, message=message, payload=payload)
