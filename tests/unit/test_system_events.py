"""The keyword event factories around the cycle write the messages, severities and payloads the event log, the
alert templates and the API have always shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.alerts import is_alert_worthy
from domain.discovery.events import discovery_divergence, picker_failed, watchlist_change, watchlist_changed
from domain.events import EventType, Severity
from domain.system_events import (
    alert_undeliverable,
    breaker_resumed,
    cycle_stale,
    job_failed,
    kill_switch,
    startup_reconcile_failed,
    trading_switched,
)

AT = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)


def test_job_and_start_up_failures() -> None:
    failed = job_failed(at=AT, scope="live", job="discovery", tries=3, error="DataError: no bars")
    assert (failed.type, failed.severity, failed.message) == (
        EventType.SYSTEM_ERROR, Severity.CRITICAL, "job discovery failed after 3 tries: DataError: no bars")
    assert failed.payload == {"job": "discovery", "tries": 3, "error": "DataError: no bars"} and is_alert_worthy(failed)
    later = startup_reconcile_failed(at=AT, scope="live", what="the broker could not be read", error="E: down",
                                     retryable=True)
    assert later.severity is Severity.WARNING and later.message == (
        "start-up reconciliation failed, the broker could not be read: E: down; the next trading cycle reconciles "
        "again")
    assert startup_reconcile_failed(at=AT, scope="live", what="x", error="y", retryable=False).severity \
        is Severity.CRITICAL


def test_a_stale_cycle_says_how_late_it_was() -> None:
    e = cycle_stale(at=AT, scope="live", cycle_id="c1", kind="scheduled", requested_at=AT - timedelta(minutes=20),
                    late=timedelta(minutes=20), symbol=None)
    assert e.message == "scheduled cycle requested at 2024-03-05T14:40:00+00:00 is 0:20:00 late: skipped"
    assert (e.type, e.severity, e.cycle_id, e.payload) == (
        EventType.CYCLE_SKIPPED, Severity.WARNING, "c1", {"reason": "stale", "late_s": 1200.0})


def test_the_operators_switches() -> None:
    paused = trading_switched(at=AT, scope="live", paused=True, by="alice", reason="earnings")
    assert (paused.type, paused.message) == (EventType.TRADING_PAUSED, "trading paused by alice: earnings")
    assert paused.payload == {"paused": True, "by": "alice", "reason": "earnings", "at": AT.isoformat()}
    resumed = trading_switched(at=AT, scope="live", paused=False, by="bob", reason="")
    assert (resumed.type, resumed.message) == (EventType.TRADING_RESUMED, "trading resumed by bob")
    assert breaker_resumed(at=AT, scope="live", by="alice", note="").message == "trading resumed, approved by alice"
    kill = kill_switch(at=AT, scope="live", summary="cancelled 2 orders, sold 1 position", by="alice", reason="",
                       payload={"sells": []})
    assert (kill.severity, kill.message) == (Severity.CRITICAL, "cancelled 2 orders, sold 1 position (by alice)")


def test_an_undeliverable_alert_is_as_severe_as_the_alert_when_critical() -> None:
    def lost(severity: Severity) -> Severity:
        return alert_undeliverable(at=AT, scope="live", alert_id=7, channel="discord", attempts=4, error="HTTP 500",
                                   alert_type="breaker_tripped", alert_severity=severity, title="Breaker",
                                   event_id=3).severity

    assert (lost(Severity.CRITICAL), lost(Severity.WARNING), lost(Severity.INFO)) == (
        Severity.CRITICAL, Severity.WARNING, Severity.WARNING)


def test_discovery_and_watchlist_events() -> None:
    one = discovery_divergence(at=AT, scope="live", symbols=["MSFT"], text="MSFT: metric only", payload={})
    assert (one.symbol, one.message) == ("MSFT", "pickers disagree on 1 suggested symbol(s): MSFT: metric only")
    assert discovery_divergence(at=AT, scope="live", symbols=["A", "B"], text="t", payload={}).symbol is None
    assert picker_failed(at=AT, scope="live", reason="E: x").payload == {"agent": "picker", "error": "E: x"}
    added = watchlist_change(at=AT, scope="live", symbol="MSFT", change="add", source="manual", reason="r", score=None)
    assert (added.severity, added.message) == (Severity.DEBUG, "MSFT added to the watchlist by hand: r")
    removed = watchlist_change(at=AT, scope="live", symbol="X", change="remove", source="discovered", reason="r",
                               score=0.2)
    assert removed.message == "X removed from the watchlist by discovery: r"
    summary = watchlist_changed(at=AT, scope="live", who="by discovery", added=["A"], removed=[], reasons={"A": "r"},
                                lines="+A (r)", size=5, symbol="A")
    assert summary.message == "watchlist changed by discovery (+1 -0, now 5 symbols): +A (r)"
    assert summary.payload["source"] == "discovered"
