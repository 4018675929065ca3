"""The JSON shapes of the API and the CLI, on typed values built by hand: what a client reads when a field is
missing, a breaker never ran, a run was skipped or retried, a position has no quote."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from application.queries import MarketClock, Page, Portfolio, PositionView, SystemStatus
from domain import breaker as brk
from domain.models.account import Account
from domain.models.trading import Position
from domain.ports.discovery import DiscoveryRun, Suggestion, WatchlistChange, WatchlistEntry
from domain.ports.discovery_api import DiscoveryDisabled, DiscoveryOutcome
from domain.ports.repositories import CycleRecord
from domain.risk.config import BreakerSettings
from domain.trading_state import ControlState, StopKeeper
from entrypoints.api.shapes import (
    breaker_json,
    control_json,
    discovery_run_json,
    page_json,
    portfolio_json,
    suggestion_json,
    system_status_json,
)

AT = datetime(2024, 6, 12, 15, 0, tzinfo=UTC)
CLOSE = datetime(2024, 6, 12, 20, 0, tzinfo=UTC)


def tripped() -> brk.BreakerState:
    state, trip = brk.record_equity(brk.initial_state(Decimal(650)), equity=Decimal(500),
                                    day_start_equity=Decimal(500), as_of=AT, settings=BreakerSettings())
    assert trip is not None
    return state


def status(control: ControlState, breaker: brk.BreakerState | None, last: CycleRecord | None = None) -> SystemStatus:
    return SystemStatus(AT, "live", True, control, breaker, last, MarketClock(True, closes_at=CLOSE))


def test_system_status_names_the_trading_mode_and_hides_an_empty_pause_record() -> None:
    active = system_status_json(status(ControlState(), None))
    assert active["trading"] == {"state": "active", "paused": False, "by": None, "reason": None, "at": None}
    assert active["breaker"] == {"status": "active", "entries_allowed": True, "can_resume": False,
                                 "note": "no cycle has run yet"}
    assert active["market"] == {"open": True, "closes_at": CLOSE.isoformat()} and active["last_cycle"] is None
    exits_only = system_status_json(status(ControlState(), tripped()))
    assert exits_only["trading"]["state"] == "exits_only"
    assert list(exits_only["breaker"]) == ["status", "tripped_at", "trip_trigger", "trip_reason", "eligible_since",
                                           "entries_allowed", "can_resume"]  # the main fields, not the history
    paused = system_status_json(status(ControlState(True, "ops", "earnings", AT), tripped(),
                                       CycleRecord("c-1", "live", "scheduled", AT, "completed", None, {"orders": 2})))
    assert paused["trading"] == {"state": "paused", "paused": True, "by": "ops", "reason": "earnings",
                                 "at": AT.isoformat()}
    assert paused["last_cycle"] == {"id": "c-1", "kind": "scheduled", "as_of": AT.isoformat(), "status": "completed",
                                    "symbol": None, "summary": {"orders": 2}, "error": None}
    assert json.loads(json.dumps(paused)) == paused


def test_the_breaker_state_says_whether_entries_are_allowed_and_whether_it_can_be_resumed() -> None:
    state = tripped()
    assert breaker_json(state) == {**state.to_dict(), "entries_allowed": False, "can_resume": False}
    eligible = breaker_json(replace(state, status=brk.BreakerStatus.ELIGIBLE))
    assert eligible["status"] == "eligible" and eligible["can_resume"] is True and not eligible["entries_allowed"]


def test_a_pause_or_resume_answers_with_the_switch_as_stored() -> None:
    assert control_json(ControlState(True, "alice", "", AT)) == {"trading": "paused", "paused": True, "by": "alice",
                                                                 "reason": "", "at": AT.isoformat()}
    assert control_json(ControlState(False, "api", "back", AT))["trading"] == "resumed"


def test_positions_without_a_quote_or_a_trade_record_have_null_values_and_money_is_a_string() -> None:
    quoted = PositionView(Position("AAA", Decimal("1.5"), Decimal("10"), Decimal("9.5"), AT, True),
                          Decimal("11"), Decimal("16.50"), Decimal("1.50"), StopKeeper.QUORUM, Decimal("12"))
    bare = PositionView(Position("BBB", Decimal(2), Decimal("5")), None, None, None, None, None)
    shaped = portfolio_json(Portfolio(AT, False, Account(Decimal("100"), Decimal("126.50"), Decimal("200"), 1),
                                      Decimal("16.50"), [quoted, bare]))
    assert {k: shaped[k] for k in ("cash", "equity", "buying_power", "gross_exposure", "day_trade_count", "paper")} \
        == {"cash": "100", "equity": "126.50", "buying_power": "200", "gross_exposure": "16.50",
            "day_trade_count": 1, "paper": False}
    assert shaped["positions"] == [
        {"symbol": "AAA", "qty": "1.5", "avg_entry_price": "10", "last_price": "11", "market_value": "16.50",
         "unrealized_pl": "1.50", "stop_price": "9.5", "stop_kept_by": "quorum", "take_profit_price": "12",
         "opened_at": AT.isoformat(), "fractional": True},
        {"symbol": "BBB", "qty": "2", "avg_entry_price": "5", "last_price": None, "market_value": None,
         "unrealized_pl": None, "stop_price": None, "stop_kept_by": None, "take_profit_price": None,
         "opened_at": None, "fractional": False}]


def test_a_page_keeps_its_paging_fields() -> None:
    assert page_json(Page([1, 2], 7, 2, 4), lambda i: {"n": i}) == {"items": [{"n": 1}, {"n": 2}], "total": 7,
                                                                   "limit": 2, "offset": 4}


def _suggestion(picker: str, symbol: str, rank: int) -> Suggestion:
    return Suggestion("d-1", "live", picker, symbol, 0.123456789, rank, AT, ("why",),
                      {"agreed": ["metric"], "components": {"metric": 0.5}}, Decimal("101.25"),
                      {20: 0.03, 1: 0.01}, {1: 0.0})


def test_a_suggestion_spreads_its_details_and_names_horizons_in_days() -> None:
    assert suggestion_json(_suggestion("ensemble", "AAA", 1)) == {
        "run_id": "d-1", "picker": "ensemble", "symbol": "AAA", "score": 0.123457, "rank": 1, "as_of": AT.isoformat(),
        "reasons": ["why"], "agreed": ["metric"], "components": {"metric": 0.5}, "entry_price": "101.25",
        "forward_returns": {"1d": 0.01, "20d": 0.03}, "universe_returns": {"1d": 0.0}}


def test_a_run_reports_its_figures_without_the_universe_and_only_the_ensemble_suggestions() -> None:
    run = DiscoveryRun("d-1", "live", AT, ("metric", "fuzzy"), 2, {"universe": ["AAA", "BBB"], "passed_metric": 1,
                                                                   "skipped_filters": {}})
    outcome = DiscoveryOutcome(run, [_suggestion("metric", "AAA", 1), _suggestion("ensemble", "BBB", 1)],
                               [WatchlistChange("live", "BBB", "add", "discovered", "score 0.9", AT)],
                               [WatchlistEntry("BBB", "discovered", "score 0.9", AT, 0.9)], existing=True)
    shaped = discovery_run_json(outcome)
    assert list(shaped)[:7] == ["status", "run_id", "as_of", "pickers", "universe_size", "passed_metric",
                                "skipped_filters"]
    assert shaped["status"] == "existing" and "universe" not in shaped
    assert [s["symbol"] for s in shaped["suggestions"]] == ["BBB"]
    assert shaped["changes"] == [{"symbol": "BBB", "change": "add", "source": "discovered", "reason": "score 0.9",
                                  "at": AT.isoformat()}]
    assert shaped["watchlist"] == [{"symbol": "BBB", "source": "discovered", "score": 0.9, "reason": "score 0.9",
                                    "added_at": AT.isoformat()}]


def test_a_skipped_run_keeps_the_reason_where_the_stats_put_it_and_a_disabled_one_says_why() -> None:
    run = DiscoveryRun("d-2", "live", AT, ("metric",), 0, {"skipped": "no SPY bars"})
    shaped = discovery_run_json(DiscoveryOutcome(run, [], skipped="no SPY bars"))
    assert shaped["status"] == "skipped" and shaped["skipped"] == "no SPY bars"
    assert list(shaped).index("skipped") == 5  # from the stats, before llm_error
    assert discovery_run_json(DiscoveryDisabled("switched off")) == {"status": "disabled", "reason": "switched off"}
