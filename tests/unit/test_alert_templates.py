"""Alert templates (event -> human-readable alert) and routing rules (alert -> channels)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.alert_templates import TEMPLATES, render_alert
from domain.alerts import AlertRoutes, is_alert_worthy, large_position_change_event
from domain.events import Event, EventType, Severity
from domain.ports.alerts import Alert

AT = datetime(2024, 3, 4, 21, 0, tzinfo=UTC)


def event(t: EventType, payload: dict[str, Any] | None = None, *, message: str = "", severity: Severity = Severity.INFO,
          symbol: str | None = None, cycle_id: str | None = None, event_id: int | None = 42) -> Event:
    return Event(t, AT, message, severity, cycle_id, symbol, payload or {}, "live", event_id)


def text(alert: Alert) -> str:
    return "\n".join([alert.title, alert.body, *alert.fields.keys(), *alert.fields.values()])


def test_every_listed_event_type_has_its_own_template() -> None:
    assert set(TEMPLATES) == {
        EventType.BREAKER_TRIPPED, EventType.BREAKER_ELIGIBLE, EventType.LARGE_POSITION_CHANGE,
        EventType.DAILY_SUMMARY, EventType.SYSTEM_ERROR, EventType.DISCOVERY_DIVERGENCE,
        EventType.WATCHLIST_CHANGED, EventType.RECONCILIATION_DIFF, EventType.PAPER_REPORT,
    }


def test_breaker_tripped_names_the_trigger_and_reason_and_how_to_resume() -> None:
    a = render_alert(event(EventType.BREAKER_TRIPPED, {"trigger": "daily_loss", "reason": "day P&L -3.20% < -3.00%",
                                                        "equity": "612.40"}, severity=Severity.CRITICAL,
                           cycle_id="c-9"))
    assert a.title == "Circuit breaker tripped: daily loss"
    assert "day P&L -3.20% < -3.00%" in a.body and "quorum breaker resume --approve" in a.body
    assert a.fields["Trigger"] == "daily loss" and a.fields["Equity"] == "612.40" and a.fields["Cycle"] == "c-9"
    assert a.severity is Severity.CRITICAL
    assert (a.type, a.event_id, a.dedupe_key, a.at) == ("breaker_tripped", 42, "event:42", AT)


def test_breaker_eligible_shows_the_resume_numbers() -> None:
    a = render_alert(event(EventType.BREAKER_ELIGIBLE, {"drawdown": 0.0412, "win_streak": 3, "sharpe_7d": 1.2345678},
                           severity=Severity.WARNING))
    assert a.title == "Circuit breaker eligible to resume"
    assert "drawdown 4.12%" in a.body and "win streak 3" in a.body and "7-day Sharpe 1.2346" in a.body
    assert a.fields == {"Drawdown": "4.12%", "Win streak": "3", "7-day Sharpe": "1.2346"}
    assert a.severity is Severity.WARNING


def test_large_position_change_shows_size_price_and_share_of_equity() -> None:
    e = large_position_change_event(symbol="NVDA", side="buy", qty=Decimal("1.5"), price=Decimal("140.00"),
                                    equity=Decimal("650.00"), at=AT, scope="live", threshold_pct=0.2,
                                    qty_before=Decimal("0"), qty_after=Decimal("1.5"), cycle_id="c-1")
    assert e is not None
    a = render_alert(e)
    assert a.title == "Large position change: BUY NVDA"
    assert "BUY 1.5 NVDA at 140.00 = 210.000 (32.31% of equity 650.00)" in a.body
    assert "Position: 0 -> 1.5 shares." in a.body
    assert a.severity is Severity.WARNING


def test_large_position_change_event_respects_the_threshold() -> None:
    kw: dict[str, Any] = {"symbol": "AAPL", "side": "sell", "price": Decimal("100"), "equity": Decimal("1000"),
                          "at": AT, "scope": "live", "threshold_pct": 0.2}
    assert large_position_change_event(qty=Decimal("1.99"), **kw) is None
    at_threshold = large_position_change_event(qty=Decimal("2"), **kw)
    assert at_threshold is not None and at_threshold.payload["pct_of_equity"] == 0.2
    assert large_position_change_event(qty=Decimal("5"), **{**kw, "equity": Decimal("0")}) is None


def test_daily_summary_has_equity_pnl_trades_and_costs() -> None:
    a = render_alert(event(EventType.DAILY_SUMMARY, {"date": "2024-03-04", "equity": "655.12", "pnl": "5.12",
                                                      "pnl_pct": 0.00788, "trades": 4, "wins": 3, "losses": 1,
                                                      "fees": "0.12", "llm_cost_usd": 0.0311}))
    assert a.title == "Daily summary 2024-03-04: P&L 5.12 (+0.79%)"
    assert "Equity 655.12, P&L 5.12 (+0.79%), 4 trades." in a.body
    assert "fees 0.12, LLM 0.0311 USD" in a.body
    assert a.fields["Wins / losses"] == "3 / 1"
    assert a.severity is Severity.INFO


def test_system_error_shows_the_error_and_the_rollback() -> None:
    a = render_alert(event(EventType.SYSTEM_ERROR, {"error": "TimeoutError: broker", "kind": "scheduled"},
                           message="cycle c-3 failed and was rolled back: TimeoutError: broker",
                           severity=Severity.CRITICAL, cycle_id="c-3"))
    assert a.title.startswith("System error: cycle c-3 failed")
    assert "Cycle c-3 was rolled back" in a.body
    assert a.fields["Error"] == "TimeoutError: broker" and a.fields["Kind"] == "scheduled"
    assert a.severity is Severity.CRITICAL


def test_discovery_divergence_lists_the_overlap_and_the_symbols_only_one_picker_has() -> None:
    a = render_alert(event(EventType.DISCOVERY_DIVERGENCE, {"overlap": 0.25, "only_in": {"rules": ["AAPL", "MSFT"],
                                                                                      "llm": ["TSLA"]}},
                           message="pickers agree on 1 of 4 symbols"))
    assert a.title == "Discovery pickers diverge"
    assert a.fields == {"Overlap": "25.00%", "Only rules": "AAPL, MSFT", "Only llm": "TSLA"}
    assert a.body == "pickers agree on 1 of 4 symbols"


def test_watchlist_changed_lists_additions_removals_and_reasons() -> None:
    a = render_alert(event(EventType.WATCHLIST_CHANGED, {"added": ["NVDA", {"symbol": "AMD"}], "removed": ["PARA"],
                                                          "reasons": {"NVDA": "momentum score 0.91"}}))
    assert a.title == "Watchlist changed: +2 / -1"
    assert "Added: NVDA, AMD" in a.body and "Removed: PARA" in a.body and "- NVDA: momentum score 0.91" in a.body


def test_reconciliation_diff_lists_each_difference() -> None:
    a = render_alert(event(EventType.RECONCILIATION_DIFF, {"differences": [
        {"symbol": "AAPL", "field": "qty", "ours": "3", "broker": "2.5"},
        {"symbol": "MSFT", "field": "position", "ours": None, "broker": "1"}]}, severity=Severity.WARNING))
    assert a.title == "Reconciliation: 2 difference(s) with the broker"
    assert "- AAPL qty: ours 3, broker 2.5" in a.body and "- MSFT position: ours —, broker 1" in a.body


def test_generic_fallback_keeps_message_and_payload() -> None:
    a = render_alert(event(EventType.STOP_TRIGGERED, {"price": "98.10"}, message="stop filled: sold 2 AAPL at 98.10",
                           severity=Severity.WARNING, symbol="AAPL"))
    assert a.title == "Stop triggered: AAPL"
    assert a.body == "stop filled: sold 2 AAPL at 98.10"
    assert a.fields == {"Price": "98.10"}
    assert a.severity is Severity.WARNING


@pytest.mark.parametrize("t", [*TEMPLATES, EventType.STOP_TRIGGERED])
def test_secret_looking_payload_keys_never_reach_an_alert(t: EventType) -> None:
    a = render_alert(event(t, {"api_key": "sk-live-123456", "webhook_url": "https://discord.com/api/webhooks/9/xyz",
                               "Authorization": "Bearer abcdef", "reason": "ok"}, message="m"))
    assert "sk-live-123456" not in text(a) and "webhooks/9/xyz" not in text(a) and "abcdef" not in text(a)


def test_severity_floors_raise_but_never_lower() -> None:
    assert render_alert(event(EventType.BREAKER_TRIPPED, severity=Severity.INFO)).severity is Severity.CRITICAL
    assert render_alert(event(EventType.RECONCILIATION_DIFF, severity=Severity.INFO)).severity is Severity.WARNING
    assert render_alert(event(EventType.DAILY_SUMMARY, severity=Severity.CRITICAL)).severity is Severity.CRITICAL


def test_long_texts_are_clipped() -> None:
    a = render_alert(event(EventType.SYSTEM_ERROR, {"error": "x" * 10_000}, message="y" * 10_000))
    assert len(a.title) <= 200 and len(a.body) <= 3500 and all(len(v) <= 300 for v in a.fields.values())


def alert(t: EventType, severity: Severity) -> Alert:
    return Alert(t.value, severity, "t", "b", AT)


ROUTES = AlertRoutes.default()


@pytest.mark.parametrize(("t", "severity", "channels"), [
    (EventType.BREAKER_TRIPPED, Severity.CRITICAL, ("discord", "email", "log")),
    (EventType.SYSTEM_ERROR, Severity.CRITICAL, ("discord", "email", "log")),
    (EventType.BREAKER_ELIGIBLE, Severity.WARNING, ("discord", "log")),
    (EventType.STOP_TRIGGERED, Severity.WARNING, ("discord", "log")),
    (EventType.DAILY_SUMMARY, Severity.INFO, ("discord", "log")),
    (EventType.WATCHLIST_CHANGED, Severity.INFO, ("discord", "log")),
    (EventType.DISCOVERY_DIVERGENCE, Severity.INFO, ("discord", "log")),
    (EventType.ORDER_FILLED, Severity.INFO, ()),
    (EventType.SIGNAL, Severity.DEBUG, ()),
    (EventType.ALERT_UNDELIVERABLE, Severity.CRITICAL, ()),
])
def test_default_routes(t: EventType, severity: Severity, channels: tuple[str, ...]) -> None:
    assert ROUTES.channels_for(alert(t, severity)) == channels


def test_routes_follow_per_channel_minimum_severity_and_type_overrides() -> None:
    routes = AlertRoutes({"discord": Severity.WARNING, "email": Severity.WARNING},
                         overrides={EventType.DAILY_SUMMARY.value: ("email",), EventType.STOP_TRIGGERED.value: ()})
    assert routes.channels_for(alert(EventType.DAILY_SUMMARY, Severity.INFO)) == ("email",)
    assert routes.channels_for(alert(EventType.WATCHLIST_CHANGED, Severity.INFO)) == ()
    assert routes.channels_for(alert(EventType.STOP_TRIGGERED, Severity.CRITICAL)) == ()
    assert routes.channels_for(alert(EventType.RECONCILIATION_DIFF, Severity.WARNING)) == ("discord", "email")


@pytest.mark.parametrize(("t", "severity", "worthy"), [
    (EventType.DAILY_SUMMARY, Severity.INFO, True),
    (EventType.WATCHLIST_CHANGED, Severity.DEBUG, True),
    (EventType.STOP_TRIGGERED, Severity.WARNING, True),
    (EventType.ORDER_FILLED, Severity.INFO, False),
    (EventType.ALERT_UNDELIVERABLE, Severity.CRITICAL, False),
])
def test_which_events_are_forwarded(t: EventType, severity: Severity, worthy: bool) -> None:
    assert is_alert_worthy(event(t, severity=severity)) is worthy


def test_a_template_that_fails_falls_back_to_the_event_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from domain import alert_templates
    from domain.events import Event, EventType, Severity

    def broken(event: Event) -> Alert:
        raise KeyError("pct_of_equity")

    monkeypatch.setitem(alert_templates.TEMPLATES, EventType.LARGE_POSITION_CHANGE, broken)  # type: ignore[index]
    odd = Event(EventType.LARGE_POSITION_CHANGE, datetime(2024, 3, 4, tzinfo=UTC), "bought 3 TSLA", Severity.WARNING)
    alert = alert_templates.render_alert(odd)
    assert alert.body == "bought 3 TSLA" and "unformatted" in alert.title
    assert alert.severity is Severity.WARNING
