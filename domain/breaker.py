"""The circuit breaker: when to stop opening positions, and when trading may resume.

The breaker trips on a drawdown from the equity peak, a daily loss, a run of
losing trades or repeated system errors. A tripped breaker blocks new entries
(exits stay allowed) while a shadow book keeps trading on paper. Before every
cycle `check_auto_resume` judges the shadow record; when it is good enough the
breaker becomes ELIGIBLE -- still not trading -- and only a person's
`approve_resume` makes it ACTIVE again. Every function is pure: it takes a
state and returns a new one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from domain.analytics import json_float, sharpe_ratio, trailing_win_streak
from domain.errors import QuorumError
from domain.money import ZERO
from domain.risk.config import BreakerSettings

SHARPE_WINDOW_DAYS = 7
MIN_SHARPE_RETURNS = 3


class BreakerStatus(StrEnum):
    """ACTIVE trades; TRIPPED and ELIGIBLE (tripped, may be approved to resume) only exit and shadow-trade."""

    ACTIVE = "active"
    TRIPPED = "tripped"
    ELIGIBLE = "eligible"


class BreakerNotEligibleError(QuorumError):
    """A resume was asked for while the breaker is not eligible to resume; the message says why."""


@dataclass(frozen=True, slots=True)
class Approval:
    """Who approved a resume, when, and why."""

    by: str
    at: datetime
    note: str


@dataclass(frozen=True, slots=True)
class Trip:
    """A trip that just happened: trigger is drawdown, daily_loss, consecutive_losses or system_errors."""

    trigger: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ResumeCheck:
    """Outcome of one auto-resume check; `reasons` name each failed condition with its numbers."""

    eligible: bool
    drawdown: float | None
    win_streak: int
    sharpe_7d: float | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BreakerState:
    """Everything the breaker remembers between cycles (persisted through `to_dict` / `from_dict`).

    Attributes:
        status: ACTIVE, TRIPPED or ELIGIBLE.
        peak_equity: highest equity seen while ACTIVE (the pre-trip peak once tripped).
        consecutive_losses: real losing trades in a row.
        recent_errors: outcome of the last cycles, oldest first, True for a system error.
        tripped_at, trip_trigger, trip_reason, equity_at_trip: the current trip (None while ACTIVE).
        shadow_equity: (day, shadow book equity) since the trip, ascending.
        shadow_trade_returns: returns of the shadow trades closed since the trip, in order.
        eligible_since: when the breaker last became ELIGIBLE.
        last_check: JSON-safe details of the last auto-resume check.
        approvals: every resume approval, oldest first.
        last_equity: the latest real equity recorded.
        trades_counted: closed real trades recorded so far (each exactly once, whoever closed it).
    """

    status: BreakerStatus
    peak_equity: Decimal
    consecutive_losses: int = 0
    recent_errors: tuple[bool, ...] = ()
    tripped_at: datetime | None = None
    trip_trigger: str | None = None
    trip_reason: str | None = None
    equity_at_trip: Decimal | None = None
    shadow_equity: tuple[tuple[date, Decimal], ...] = ()
    shadow_trade_returns: tuple[float, ...] = ()
    eligible_since: datetime | None = None
    last_check: dict[str, Any] = field(default_factory=dict)
    approvals: tuple[Approval, ...] = ()
    last_equity: Decimal | None = None
    trades_counted: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: Decimals as strings, datetimes and dates ISO 8601."""
        return {
            "status": self.status.value,
            "peak_equity": str(self.peak_equity),
            "consecutive_losses": self.consecutive_losses,
            "recent_errors": list(self.recent_errors),
            "tripped_at": _iso(self.tripped_at),
            "trip_trigger": self.trip_trigger,
            "trip_reason": self.trip_reason,
            "equity_at_trip": _str(self.equity_at_trip),
            "shadow_equity": [[d.isoformat(), str(e)] for d, e in self.shadow_equity],
            "shadow_trade_returns": list(self.shadow_trade_returns),
            "eligible_since": _iso(self.eligible_since),
            "last_check": dict(self.last_check),
            "approvals": [{"by": a.by, "at": a.at.isoformat(), "note": a.note} for a in self.approvals],
            "last_equity": _str(self.last_equity),
            "trades_counted": self.trades_counted,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BreakerState:
        """Rebuild a state written by `to_dict` (also after a JSON round trip)."""
        return cls(
            status=BreakerStatus(d["status"]),
            peak_equity=Decimal(d["peak_equity"]),
            consecutive_losses=int(d.get("consecutive_losses", 0)),
            recent_errors=tuple(bool(e) for e in d.get("recent_errors", ())),
            tripped_at=_dt(d.get("tripped_at")),
            trip_trigger=d.get("trip_trigger"),
            trip_reason=d.get("trip_reason"),
            equity_at_trip=_dec(d.get("equity_at_trip")),
            shadow_equity=tuple((date.fromisoformat(day), Decimal(e)) for day, e in d.get("shadow_equity", ())),
            shadow_trade_returns=tuple(float(r) for r in d.get("shadow_trade_returns", ())),
            eligible_since=_dt(d.get("eligible_since")),
            last_check=dict(d.get("last_check") or {}),
            approvals=tuple(
                Approval(by=a["by"], at=datetime.fromisoformat(a["at"]), note=a.get("note", ""))
                for a in d.get("approvals", ())
            ),
            last_equity=_dec(d.get("last_equity")),
            trades_counted=int(d.get("trades_counted", 0)),
        )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _pct(value: Decimal | float) -> str:
    return f"{float(value) * 100:.2f}%"


def _require_aware(as_of: datetime) -> None:
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError(f"as_of must be timezone-aware, got {as_of.isoformat()}")


def initial_state(equity: Decimal) -> BreakerState:
    """An ACTIVE breaker whose peak is the current equity."""
    return BreakerState(status=BreakerStatus.ACTIVE, peak_equity=equity, last_equity=equity)


def allows_entries(state: BreakerState) -> bool:
    """Whether new positions may be opened (only when ACTIVE; exits are always allowed)."""
    return state.status is BreakerStatus.ACTIVE


def in_shadow_mode(state: BreakerState) -> bool:
    """Whether the shadow book should trade (TRIPPED or ELIGIBLE)."""
    return state.status is not BreakerStatus.ACTIVE


def _trip(state: BreakerState, trigger: str, reason: str, as_of: datetime) -> tuple[BreakerState, Trip | None]:
    if state.status is not BreakerStatus.ACTIVE:
        return state, None
    tripped = replace(
        state,
        status=BreakerStatus.TRIPPED,
        tripped_at=as_of,
        trip_trigger=trigger,
        trip_reason=reason,
        equity_at_trip=state.last_equity,
        shadow_equity=(),
        shadow_trade_returns=(),
        eligible_since=None,
        last_check={},
    )
    return tripped, Trip(trigger=trigger, reason=reason, at=as_of)


def record_equity(
    state: BreakerState,
    *,
    equity: Decimal,
    day_start_equity: Decimal,
    as_of: datetime,
    settings: BreakerSettings,
    flow: Decimal = ZERO,
) -> tuple[BreakerState, Trip | None]:
    """Record the real equity; raise the peak while ACTIVE and trip on drawdown or daily loss.

    Args:
        state: current breaker state.
        equity: current real equity.
        day_start_equity: equity at the start of today, including any money moved in or out today.
        as_of: now (timezone-aware).
        settings: thresholds.
        flow: net deposit (withdrawal negative) since the previous call, already in `equity`. The
            peak is scaled by the same factor, so moving money is neither a gain nor a loss.

    Returns:
        The new state and the Trip, if this call tripped the breaker (drawdown is checked first).
    """
    _require_aware(as_of)
    if state.status is not BreakerStatus.ACTIVE:
        return replace(state, last_equity=equity), None
    peak = state.peak_equity
    if flow != 0 and equity - flow > 0:
        peak = peak * equity / (equity - flow)
    peak = max(peak, equity)
    state = replace(state, peak_equity=peak, last_equity=equity)
    if peak > 0:
        drawdown = (peak - equity) / peak
        if drawdown >= Decimal(str(settings.max_drawdown_pct)):
            reason = (
                f"drawdown {_pct(drawdown)} from peak {peak:.2f} to {equity:.2f} "
                f">= limit {_pct(settings.max_drawdown_pct)}"
            )
            return _trip(state, "drawdown", reason, as_of)
    if day_start_equity > 0:
        loss = (day_start_equity - equity) / day_start_equity
        if loss >= Decimal(str(settings.max_daily_loss_pct)):
            reason = (
                f"daily loss {_pct(loss)} from {day_start_equity:.2f} to {equity:.2f} "
                f">= limit {_pct(settings.max_daily_loss_pct)}"
            )
            return _trip(state, "daily_loss", reason, as_of)
    return state, None


def record_trade_result(
    state: BreakerState, *, return_pct: float, as_of: datetime, settings: BreakerSettings
) -> tuple[BreakerState, Trip | None]:
    """Count a closed real trade: a loss extends the losing run, a win resets it, a flat trade leaves it.

    Returns:
        The new state and the Trip when the run reaches max_consecutive_losses.
    """
    _require_aware(as_of)
    losses = state.consecutive_losses
    if return_pct < 0:
        losses += 1
    elif return_pct > 0:
        losses = 0
    state = replace(state, consecutive_losses=losses, trades_counted=state.trades_counted + 1)
    if return_pct < 0 and losses >= settings.max_consecutive_losses:
        reason = (
            f"{losses} consecutive losing trades >= limit {settings.max_consecutive_losses} (last {_pct(return_pct)})"
        )
        return _trip(state, "consecutive_losses", reason, as_of)
    return state, None


def record_cycle_outcome(
    state: BreakerState, *, error: bool, as_of: datetime, settings: BreakerSettings
) -> tuple[BreakerState, Trip | None]:
    """Remember whether this cycle failed with a system error; trip on too many in the window.

    Returns:
        The new state and the Trip when errors among the last system_error_window_cycles
        cycles reach max_system_errors.
    """
    _require_aware(as_of)
    window = settings.system_error_window_cycles
    recent = (*state.recent_errors, error)[-window:]
    state = replace(state, recent_errors=recent)
    errors = sum(recent)
    if error and errors >= settings.max_system_errors:
        reason = (
            f"{errors} system errors in the last {len(recent)} cycles "
            f"(window {window}) >= limit {settings.max_system_errors}"
        )
        return _trip(state, "system_errors", reason, as_of)
    return state, None


def record_shadow(
    state: BreakerState, *, day: date, shadow_equity: Decimal, closed_trade_returns: Sequence[float]
) -> BreakerState:
    """Add the shadow book's equity of `day` (replacing an earlier value of that day) and its closed trades.

    Does nothing while ACTIVE: there is no shadow book then.
    """
    if not in_shadow_mode(state):
        return state
    by_day = dict(state.shadow_equity)
    by_day[day] = shadow_equity
    return replace(
        state,
        shadow_equity=tuple(sorted(by_day.items())),
        shadow_trade_returns=(*state.shadow_trade_returns, *(float(r) for r in closed_trade_returns)),
    )


def shadow_sharpe_7d(state: BreakerState, as_of: datetime) -> tuple[float | None, int]:
    """Annualised Sharpe of the shadow book's daily returns ending in the 7 calendar days up to as_of.

    Returns:
        (sharpe, number of returns). A return belongs to the day it ends on; its base may be older.
    """
    today = as_of.date()
    series = [(d, e) for d, e in state.shadow_equity if d <= today]
    cutoff = today - timedelta(days=SHARPE_WINDOW_DAYS)
    returns = [float(e1 / e0) - 1.0 for (_, e0), (d1, e1) in itertools.pairwise(series) if d1 > cutoff and e0 > 0]
    return sharpe_ratio(returns), len(returns)


def _evaluate(state: BreakerState, as_of: datetime, settings: BreakerSettings) -> ResumeCheck:
    reasons: list[str] = []
    today = as_of.date()
    latest = [e for d, e in state.shadow_equity if d <= today]
    drawdown: float | None = None
    limit = settings.resume_max_drawdown_pct
    if not latest:
        reasons.append("no shadow equity recorded yet")
    elif state.peak_equity <= 0:
        reasons.append(f"drawdown unknown: peak equity is {state.peak_equity:.2f}")
    else:
        drawdown = max(float((state.peak_equity - latest[-1]) / state.peak_equity), 0.0)
        if drawdown >= limit:
            reasons.append(
                f"shadow drawdown {_pct(drawdown)} (peak {state.peak_equity:.2f}, shadow {latest[-1]:.2f}) "
                f">= {_pct(limit)}"
            )
    streak = trailing_win_streak(state.shadow_trade_returns)
    if streak < settings.resume_min_win_streak:
        reasons.append(f"win streak {streak} < {settings.resume_min_win_streak}")
    sharpe, n = shadow_sharpe_7d(state, as_of)
    if n < MIN_SHARPE_RETURNS:
        sharpe = None
        reasons.append(f"not enough shadow history: {n} daily returns in 7 days, need {MIN_SHARPE_RETURNS}")
    elif sharpe is None:
        reasons.append("7-day sharpe undefined: the shadow book did not move")
    elif sharpe <= settings.resume_min_sharpe_7d:
        reasons.append(f"7-day sharpe {sharpe:.2f} <= {settings.resume_min_sharpe_7d:.2f}")
    return ResumeCheck(not reasons, drawdown, streak, sharpe, tuple(reasons))


def check_auto_resume(
    state: BreakerState, *, as_of: datetime, settings: BreakerSettings
) -> tuple[BreakerState, ResumeCheck]:
    """Judge the shadow record before a cycle: TRIPPED <-> ELIGIBLE. Never resumes trading by itself.

    Eligible when all hold: (1) shadow drawdown from the pre-trip peak < resume_max_drawdown_pct;
    (2) trailing shadow win streak >= resume_min_win_streak; (3) 7-day annualised Sharpe of the
    shadow daily returns (at least 3 of them) > resume_min_sharpe_7d.

    Returns:
        The new state (last_check updated) and the check. An ACTIVE breaker is returned unchanged
        with a check that is not eligible (reason "breaker is active").
    """
    _require_aware(as_of)
    if state.status is BreakerStatus.ACTIVE:
        return state, ResumeCheck(False, None, 0, None, ("breaker is active",))
    check = _evaluate(state, as_of, settings)
    last_check = {
        "at": as_of.isoformat(),
        "eligible": check.eligible,
        "drawdown": check.drawdown,
        "win_streak": check.win_streak,
        "sharpe_7d": json_float(check.sharpe_7d),
        "reasons": list(check.reasons),
    }
    if check.eligible:
        since = state.eligible_since if state.status is BreakerStatus.ELIGIBLE else as_of
        return replace(state, status=BreakerStatus.ELIGIBLE, eligible_since=since, last_check=last_check), check
    return replace(state, status=BreakerStatus.TRIPPED, eligible_since=None, last_check=last_check), check


def approve_resume(
    state: BreakerState,
    *,
    by: str,
    as_of: datetime,
    equity: Decimal | None = None,
    note: str = "",
    settings: BreakerSettings | None = None,
) -> BreakerState:
    """A person approves resuming an ELIGIBLE breaker; trading restarts from the current equity.

    Args:
        state: current state; must be ELIGIBLE.
        by: who approves (non-empty).
        as_of: now (timezone-aware).
        equity: current real equity, the new peak; defaults to the last real equity recorded
            (then the latest shadow equity, then the old peak).
        note: free text kept with the approval.
        settings: when given, the auto-resume check is re-run at as_of first, so a shadow book that
            deteriorated since the last check cannot be approved.

    Returns:
        An ACTIVE state with the approval recorded and the counters and shadow history cleared.

    Raises:
        ValueError: `by` is empty.
        BreakerNotEligibleError: the breaker is ACTIVE, or TRIPPED and not eligible (the reasons are given).
    """
    _require_aware(as_of)
    if not by.strip():
        raise ValueError("a resume approval needs the name of who approves")
    if settings is not None:
        state, _ = check_auto_resume(state, as_of=as_of, settings=settings)
    if state.status is BreakerStatus.ACTIVE:
        raise BreakerNotEligibleError("breaker is active: there is nothing to resume")
    if state.status is BreakerStatus.TRIPPED:
        reasons = "; ".join(state.last_check.get("reasons") or ["no auto-resume check has passed yet"])
        raise BreakerNotEligibleError(f"breaker is tripped but not eligible: {reasons}")
    if equity is None:
        shadow = state.shadow_equity[-1][1] if state.shadow_equity else state.peak_equity
        equity = state.last_equity if state.last_equity is not None else shadow
    return replace(
        state,
        status=BreakerStatus.ACTIVE,
        peak_equity=equity,
        last_equity=equity,
        consecutive_losses=0,
        recent_errors=(),
        tripped_at=None,
        trip_trigger=None,
        trip_reason=None,
        equity_at_trip=None,
        shadow_equity=(),
        shadow_trade_returns=(),
        eligible_since=None,
        last_check={},
        approvals=(*state.approvals, Approval(by=by.strip(), at=as_of, note=note)),
    )
