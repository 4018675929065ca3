"""Keyword constructors of the events discovery and the watchlist write."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.events import Event, EventType, Severity


def discovery_run(*, at: datetime, scope: str, text: str, payload: dict[str, Any]) -> Event:
    """One discovery run's summary (INFO)."""
    return Event(type=EventType.DISCOVERY_RUN, at=at, message=text, severity=Severity.INFO, cycle_id=None,
                 symbol=None, payload=payload, scope=scope)


def discovery_divergence(*, at: datetime, scope: str, symbols: list[str], text: str,
                         payload: dict[str, Any]) -> Event:
    """The pickers disagree on suggested symbols (INFO); the symbol is set when there is one."""
    return Event(type=EventType.DISCOVERY_DIVERGENCE, at=at,
                 message=f"pickers disagree on {len(symbols)} suggested symbol(s): {text}", severity=Severity.INFO,
                 cycle_id=None, symbol=symbols[0] if len(symbols) == 1 else None, payload=payload, scope=scope)


def picker_failed(*, at: datetime, scope: str, reason: str) -> Event:
    """The LLM picker raised: the run goes on without LLM picks (WARNING)."""
    return Event(type=EventType.LLM_FAILED, at=at, message=f"picker agent failed, no LLM picks this run: {reason}",
                 severity=Severity.WARNING, payload={"agent": "picker", "error": reason}, scope=scope)


def watchlist_change(*, at: datetime, scope: str, symbol: str, change: str, source: str, reason: str,
                     score: float | None) -> Event:
    """One symbol added to or removed from the watchlist (DEBUG)."""
    verb = "added to" if change == "add" else "removed from"
    who = "by hand" if source == "manual" else "by discovery"
    return Event(type=EventType.WATCHLIST_CHANGED, at=at, message=f"{symbol} {verb} the watchlist {who}: {reason}",
                 severity=Severity.DEBUG, cycle_id=None, symbol=symbol,
                 payload={"change": change, "source": source, "reason": reason, "score": score}, scope=scope)


def watchlist_changed(*, at: datetime, scope: str, who: str, added: list[str], removed: list[str],
                      reasons: dict[str, str], lines: str, size: int, symbol: str | None) -> Event:
    """All the changes of one edit or discovery run (INFO)."""
    return Event(type=EventType.WATCHLIST_CHANGED, at=at,
                 message=f"watchlist changed {who} (+{len(added)} -{len(removed)}, now {size} symbols): {lines}",
                 severity=Severity.INFO, cycle_id=None, symbol=symbol,
                 payload={"added": added, "removed": removed, "reasons": reasons, "size": size,
                          "source": "manual" if who == "by hand" else "discovered"}, scope=scope)
