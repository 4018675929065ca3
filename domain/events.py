"""The event log: every step of every cycle, every alert-worthy thing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.memory import DEFAULT_SCOPE


class Severity(StrEnum):
    """How much an event matters to the user."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class EventType(StrEnum):
    """Kinds of event."""

    CYCLE_STARTED = "cycle_started"
    CYCLE_COMPLETED = "cycle_completed"
    CYCLE_SKIPPED = "cycle_skipped"
    SYSTEM_ERROR = "system_error"
    SNAPSHOT = "snapshot"
    RECALL = "recall"
    SIGNAL = "signal"
    RISK = "risk"
    VALIDATION = "validation"
    LIMIT_APPLIED = "limit_applied"
    PROPOSAL_REJECTED = "proposal_rejected"
    ORDER_SUBMITTED = "order_submitted"
    ORDER_REJECTED = "order_rejected"
    ORDER_FILLED = "order_filled"
    STOP_TRIGGERED = "stop_triggered"
    SHADOW_FILL = "shadow_fill"
    BREAKER_TRIPPED = "breaker_tripped"
    BREAKER_ELIGIBLE = "breaker_eligible"
    BREAKER_RESUMED = "breaker_resumed"
    RECONCILIATION_DIFF = "reconciliation_diff"
    LLM_CALL = "llm_call"
    LLM_FAILED = "llm_failed"
    LLM_BUDGET_EXHAUSTED = "llm_budget_exhausted"
    LLM_CAP_SKIPPED = "llm_cap_skipped"
    LLM_DECISIONS = "llm_decisions"
    WATCHLIST_CHANGED = "watchlist_changed"
    DISCOVERY_RUN = "discovery_run"
    DISCOVERY_DIVERGENCE = "discovery_divergence"
    TRADING_PAUSED = "trading_paused"
    TRADING_RESUMED = "trading_resumed"
    MARKET_CONDITIONS = "market_conditions"
    ALERT_UNDELIVERABLE = "alert_undeliverable"
    DAILY_SUMMARY = "daily_summary"
    LARGE_POSITION_CHANGE = "large_position_change"
    KILL_SWITCH = "kill_switch"
    EVAL_REGRESSION = "eval_regression"
    CHAT_ACTION = "chat_action"
    CASH_TRANSFER = "cash_transfer"
    CHAT_PROBE = "chat_probe"
    PAPER_REPORT = "paper_report"
    PROCESS_STARTED = "process_started"


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the event log."""

    type: EventType
    at: datetime
    message: str
    severity: Severity = Severity.INFO
    cycle_id: str | None = None
    symbol: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    scope: str = DEFAULT_SCOPE
    id: int | None = None
