"""Deterministic ids: a retried cycle has the same id and resubmits the same client order ids, which the broker
refuses as doubles."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from domain.ids import short_hash


def cycle_id_for(scope: str, as_of: datetime, kind: str, symbol: str | None = None, *, tz: tzinfo) -> str:
    """Deterministic id: the same scope, time, kind and symbol always give the same id; it starts with the
    exchange-local time (`tz`, the calendar's time zone)."""
    raw = f"{scope}|{as_of.astimezone(UTC).isoformat()}|{kind}|{symbol or ''}"
    return f"c-{as_of.astimezone(tz):%Y%m%d-%H%M}-{short_hash(raw, 10)}"


def client_order_id_for(cycle_id: str, symbol: str, action: str) -> str:
    """Deterministic client order id: a retried cycle resubmits the same id and the broker refuses a double."""
    return f"q-{short_hash(f'{cycle_id}|{symbol}|{action}', 24)}"
