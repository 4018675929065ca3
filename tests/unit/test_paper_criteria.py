"""Each success criterion of a paper campaign, on constructed records: it passes, it fails, or it cannot be measured
yet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from application.paper import criteria as crit
from application.round_trips import RoundTrip
from domain.events import Event, EventType, Severity
from domain.ports.repositories import EvalRunRecord

AT = datetime(2024, 3, 5, 15, tzinfo=UTC)
D = Decimal


def event(kind: EventType, *, cycle_id: str | None = None, at: datetime = AT, **payload: object) -> Event:
    return Event(type=kind, at=at, message=kind.value, severity=Severity.INFO, cycle_id=cycle_id, payload=payload,
                 scope="live")


def trip(cost: str, proceeds: str, symbol: str = "AAA") -> RoundTrip:
    return RoundTrip(symbol, AT, AT + timedelta(days=1), 2, D(1), D(cost), D(proceeds))


def run(verdict: str, at: datetime = AT) -> EvalRunRecord:
    return EvalRunRecord(id=f"ev-{verdict}-{at.isoformat()}", scope="live", at=at, kind="nightly", baseline_key="k",
                         llm="offline", document={}, verdict=verdict)


def test_no_crash_passes_when_every_due_cycle_ran_and_nothing_failed() -> None:
    events = [event(EventType.CYCLE_STARTED, cycle_id="c1"),
              event(EventType.CYCLE_SKIPPED, cycle_id="c2", reason="trading paused")]
    got = crit.no_crash(["c1", "c2"], events)
    assert got.passed is True and "100.0%" in got.detail and "0 restarts" in got.detail


@pytest.mark.parametrize(("events", "words"), [
    ([event(EventType.CYCLE_STARTED, cycle_id="c1")], "1 missed"),
    ([event(EventType.CYCLE_STARTED, cycle_id="c1"), event(EventType.CYCLE_SKIPPED, cycle_id="c2", reason="stale")],
     "1 missed"),
    ([event(EventType.CYCLE_STARTED, cycle_id="c1"), event(EventType.SYSTEM_ERROR, cycle_id="c2")],
     "1 failed cycles"),
    ([event(EventType.CYCLE_STARTED, cycle_id="c1"), event(EventType.CYCLE_STARTED, cycle_id="c2"),
      event(EventType.SYSTEM_ERROR, job="alerts")], "1 job errors"),
])
def test_no_crash_fails_on_a_missed_a_late_or_a_failed_cycle_or_a_failed_job(events: list[Event],
                                                                               words: str) -> None:
    got = crit.no_crash(["c1", "c2"], events)
    assert got.passed is False and words in got.detail


def test_no_crash_counts_restarts_and_waits_for_the_first_due_cycle() -> None:
    got = crit.no_crash([], [event(EventType.PROCESS_STARTED, process="quorum serve")])
    assert got.passed is None and "1 restarts" in got.detail


def test_daily_returns_leave_deposits_out() -> None:
    returns = crit.daily_returns(D(1000), D(0), [(D(1010), D(0)), (D(1520), D(500))])
    assert returns == pytest.approx([0.01, 0.01 / 1.01])


def test_sharpe_both_ways_and_not_yet() -> None:
    assert crit.sharpe([0.01, 0.02, -0.005]).passed is True
    assert crit.sharpe([-0.01, -0.02, 0.005]).passed is False
    assert crit.sharpe([0.01]).passed is None
    assert crit.sharpe([0.0, 0.0]).passed is None


def test_win_rate_needs_more_than_half_won() -> None:
    assert crit.win_rate([trip("100", "110"), trip("100", "101"), trip("100", "90")]).passed is True
    half = crit.win_rate([trip("100", "110"), trip("100", "90")])
    assert half.passed is False and "50.0%" in half.detail
    assert crit.win_rate([]).passed is None


def test_no_trade_may_lose_more_than_twenty_percent() -> None:
    ok = crit.worst_trade([trip("100", "80.00"), trip("100", "130")])
    assert ok.passed is True and "-20.00%" in ok.detail
    bad = crit.worst_trade([trip("100", "79.99", "BBB"), trip("100", "130")])
    assert bad.passed is False and "BBB" in bad.detail
    assert crit.worst_trade([]).passed is None


def test_every_breaker_rule_by_the_market_or_a_drill() -> None:
    market = [event(EventType.BREAKER_TRIPPED, trigger="daily_loss")]
    drills = [event(EventType.BREAKER_TRIPPED, trigger=r, drill=True) for r in ("drawdown", "consecutive_losses",
                                                                               "system_errors", "daily_loss")]
    got = crit.breaker_rules(market, drills)
    assert got.passed is True and "daily_loss (market" in got.detail and "drawdown (drill" in got.detail
    missing = crit.breaker_rules(market, drills[:2])
    assert missing.passed is False and "never: system_errors" in missing.detail and "quorum paper drill" in \
        missing.detail


def test_chat_answering_needs_every_probe_answered() -> None:
    ok = event(EventType.CHAT_PROBE, ok=True, model="router")
    failed = event(EventType.CHAT_PROBE, at=AT + timedelta(days=1), ok=False, model="router",
                   detail="tools failed: portfolio")
    assert crit.chat_answering([ok]).passed is True
    got = crit.chat_answering([ok, failed])
    assert got.passed is False and "1 of 2" in got.detail and "portfolio" in got.detail
    assert crit.chat_answering([]).passed is None


def test_evals_passing_reads_the_latest_verdict() -> None:
    later = AT + timedelta(days=1)
    assert crit.evals_passing([run("regression"), run("ok", later)]).passed is True
    assert crit.evals_passing([run("noise", later)]).passed is True
    assert crit.evals_passing([run("ok"), run("regression", later)]).passed is False
    assert crit.evals_passing([run("refused")]).passed is False
    assert crit.evals_passing([run("no_baseline")]).passed is None
    assert crit.evals_passing([]).passed is None
