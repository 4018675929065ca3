"""Keyword constructors of the events written around the cycle: jobs, start-up, the operator's switches (pause,
resume, kill switch, breaker approval), control actions asked for in the chat, the daily summary and undeliverable
alerts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain.events import Event, EventType, Severity


def job_failed(*, at: datetime, scope: str, job: str, tries: int, error: str, cycle_id: str | None = None) -> Event:
    """A job failed on its last try (CRITICAL)."""
    return Event(type=EventType.SYSTEM_ERROR, at=at, message=f"job {job} failed after {tries} tries: {error}",
                 severity=Severity.CRITICAL, cycle_id=cycle_id, symbol=None,
                 payload={"job": job, "tries": tries, "error": error}, scope=scope)


def cycle_stale(*, at: datetime, scope: str, cycle_id: str, kind: str, requested_at: datetime, late: timedelta,
                symbol: str | None = None) -> Event:
    """A queued cycle ran too late to trade on and was skipped (WARNING)."""
    return Event(type=EventType.CYCLE_SKIPPED, at=at,
                 message=f"{kind} cycle requested at {requested_at.isoformat()} is {late} late: skipped",
                 severity=Severity.WARNING, cycle_id=cycle_id, symbol=symbol,
                 payload={"reason": "stale", "late_s": late.total_seconds()}, scope=scope)


def daily_summary(*, at: datetime, scope: str, text: str, payload: dict[str, Any]) -> Event:
    """The end-of-day summary (INFO)."""
    return Event(type=EventType.DAILY_SUMMARY, at=at, message=text, severity=Severity.INFO, cycle_id=None,
                 symbol=None, payload=payload, scope=scope)


def startup_reconcile_failed(*, at: datetime, scope: str, what: str, error: str, retryable: bool) -> Event:
    """Reconciling with the broker at start-up failed (WARNING when the broker may answer later, else CRITICAL)."""
    return Event(type=EventType.SYSTEM_ERROR, at=at,
                 message=f"start-up reconciliation failed, {what}: {error}; the next trading cycle reconciles again",
                 severity=Severity.WARNING if retryable else Severity.CRITICAL, cycle_id=None, symbol=None,
                 payload={"job": "startup_reconcile", "error": error}, scope=scope)


def process_started(*, at: datetime, scope: str, process: str) -> Event:
    """A process that trades started (INFO): the paper campaign counts restarts from these."""
    return Event(type=EventType.PROCESS_STARTED, at=at, message=f"{process} started", severity=Severity.INFO,
                 cycle_id=None, symbol=None, payload={"process": process}, scope=scope)


def kill_switch(*, at: datetime, scope: str, summary: str, by: str, reason: str, payload: dict[str, Any]) -> Event:
    """The kill switch ran (CRITICAL): `summary` says what was cancelled and sold."""
    return Event(type=EventType.KILL_SWITCH, at=at, message=f"{summary} (by {by}{': ' + reason if reason else ''})",
                 severity=Severity.CRITICAL, cycle_id=None, symbol=None, payload=payload, scope=scope)


def breaker_resumed(*, at: datetime, scope: str, by: str, note: str) -> Event:
    """A person approved the breaker's resume (WARNING)."""
    return Event(type=EventType.BREAKER_RESUMED, at=at,
                 message=f"trading resumed, approved by {by}" + (f": {note}" if note else ""),
                 severity=Severity.WARNING, cycle_id=None, symbol=None, payload={"approved_by": by, "note": note},
                 scope=scope)


def trading_switched(*, at: datetime, scope: str, paused: bool, by: str, reason: str) -> Event:
    """Trading was paused or resumed by hand (WARNING)."""
    return Event(type=EventType.TRADING_PAUSED if paused else EventType.TRADING_RESUMED, at=at,
                 message=f"trading {'paused' if paused else 'resumed'} by {by}" + (f": {reason}" if reason else ""),
                 severity=Severity.WARNING, cycle_id=None, symbol=None,
                 payload={"paused": paused, "by": by, "reason": reason, "at": at.isoformat()}, scope=scope)


def chat_action(*, at: datetime, scope: str, action: str, outcome: str, by: str, requested_by: str, reason: str,
                detail: str, action_ref: str) -> Event:
    """A control action asked for in the chat was done, failed, cancelled or refused (WARNING when it failed, else
    INFO: the action's own event, e.g. TRADING_PAUSED or KILL_SWITCH, is what alerts).

    Args:
        action: pause, resume, run_cycle, run_evals or flatten.
        outcome: "done", "failed", "cancelled" or "refused".
        by: who confirmed, cancelled or sent the refused confirmation.
        requested_by: who proposed it.
        reason: why, in the requester's words.
        detail: what happened (the cycle id, the job id, the kill switch's summary, why it was refused).
        action_ref: the first characters of the action id (enough to match the chat's step, too few to use).
    """
    acted = {"cancelled": "cancelled by", "refused": "confirmation sent by"}.get(outcome, "confirmed by")
    said = f": {reason}" if reason else ""
    return Event(type=EventType.CHAT_ACTION, at=at,
                 message=f"chat action {action} {outcome} (asked by {requested_by}, {acted} {by}){said}"
                 + (f" — {detail}" if detail else ""),
                 severity=Severity.WARNING if outcome == "failed" else Severity.INFO, cycle_id=None, symbol=None,
                 payload={"action": action, "outcome": outcome, "by": by, "requested_by": requested_by,
                          "reason": reason, "detail": detail, "action_ref": action_ref}, scope=scope)


def alert_undeliverable(*, at: datetime, scope: str, alert_id: int, channel: str, attempts: int, error: str,
                        alert_type: str, alert_severity: Severity, title: str, event_id: int | None) -> Event:
    """An alert could not be delivered on `channel` (CRITICAL for a critical alert, else WARNING)."""
    return Event(type=EventType.ALERT_UNDELIVERABLE, at=at,
                 message=f"alert not delivered via {channel} after {attempts} attempt(s): {title} ({error})",
                 severity=Severity.CRITICAL if alert_severity is Severity.CRITICAL else Severity.WARNING,
                 cycle_id=None, symbol=None,
                 payload={"alert_id": alert_id, "channel": channel, "alert_type": alert_type,
                          "alert_severity": alert_severity.value, "title": title, "attempts": attempts,
                          "last_error": error, "event_id": event_id},
                 scope=scope)
