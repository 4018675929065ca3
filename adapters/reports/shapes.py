"""JSON shapes of the typed results a backtest or rehearsal report carries: the breaker's history, picker
performance, the paper-trade A/B report and the survivorship statement. The HTTP API uses picker performance
and the paper-trade report for /api/discovery/performance, so summary.json and the API say the same thing the
same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from application.breaker_history import BreakerHistory, ShadowPeriod
from application.membership import Survivorship
from domain.discovery.evaluation import ABReport, HorizonPerformance


def shadow_period_json(p: ShadowPeriod) -> dict[str, Any]:
    """{"from", "to", "sessions"} and "open": true for a period still running at the end of the run."""
    out: dict[str, Any] = {"from": p.first.isoformat(), "to": p.last.isoformat(), "sessions": p.sessions}
    if p.open:
        out["open"] = True
    return out


def breaker_history_json(b: BreakerHistory) -> dict[str, Any]:
    """{"resume_policy", "trips": [{at, trigger, reason}], "eligible": [at...], "resumes": [{at, by, note}],
    "shadow_periods": [{from, to, sessions}], "shadow_sessions", "halted_share"}."""
    return {"resume_policy": b.resume_policy,
            "trips": [{"at": t.at.isoformat(), "trigger": t.trigger, "reason": t.reason} for t in b.trips],
            "eligible": [at.isoformat() for at in b.eligible],
            "resumes": [{"at": r.at.isoformat(), "by": r.by, "note": r.note} for r in b.resumes],
            "shadow_periods": [shadow_period_json(p) for p in b.shadow_periods],
            "shadow_sessions": b.shadow_sessions, "halted_share": b.halted_share}


def horizon_json(hp: HorizonPerformance) -> dict[str, Any]:
    """{"n", "hit_rate", "avg_return", "avg_universe_return", "avg_excess"}."""
    return {"n": hp.n, "hit_rate": hp.hit_rate, "avg_return": hp.avg_return,
            "avg_universe_return": hp.avg_universe_return, "avg_excess": hp.avg_excess}


def picker_performance_json(perf: Mapping[str, Mapping[int, HorizonPerformance]]) -> dict[str, Any]:
    """{"metric": {"1d": {...}, "5d": {...}, "20d": {...}}, ...}"""
    return {p: {f"{h}d": horizon_json(hp) for h, hp in by_h.items()} for p, by_h in perf.items()}


def paper_trades_json(ab: ABReport) -> dict[str, Any]:
    """Counts and mean returns of the actual and hypothetical trades, their difference and Welch's test."""
    test = ab.test
    return {"picker": ab.picker, "horizon_days": ab.horizon, "actual_trades": len(ab.actual),
            "hypothetical_trades": len(ab.hypothetical), "mean_actual": ab.mean_actual,
            "mean_hypothetical": ab.mean_hypothetical, "difference": ab.difference,
            "t": None if test is None else test.t, "df": None if test is None else test.df,
            "p_value": None if test is None else test.p_value}


def survivorship_json(s: Survivorship) -> dict[str, Any]:
    """{"membership", "biased", "statement", "sources"}."""
    return s.to_json()
