"""Go-live gates judged from measurements (account, campaign, evals), the safety self-tests on the configured
thresholds, and the go-live record live trading requires: each passes when it should and fails with a fix."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import application.golive_selftests as selftests
from application.golive import (
    GateOutcome,
    GoLiveRecord,
    account_gate,
    campaign_gate,
    evals_gate,
    record_refusal,
)
from application.golive_selftests import breaker_selftest, hard_limits_selftest
from domain import breaker as brk
from domain.models.account import Account
from domain.models.trading import OrderRequest, Side
from domain.paper import CampaignStatus, Criterion, PaperCampaign
from domain.ports.repositories import EvalRunRecord
from domain.risk.config import RiskSettings
from domain.risk.limits import LimitDecision

NOW = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
NY = ZoneInfo("America/New_York")
RISK = RiskSettings()
ACCOUNT = Account(cash=Decimal("651.20"), equity=Decimal("651.20"), buying_power=Decimal("651.20"))


def test_an_account_that_fits_the_caps_passes() -> None:
    result = account_gate(RISK, ACCOUNT)
    assert result.ok and result.hint is None
    assert "equity 651.20 USD" in result.detail and "one position at most 162.80 USD" in result.detail


@pytest.mark.parametrize(("risk", "account", "problem", "fix"), [
    (RISK.model_copy(update={"starting_capital": Decimal(5000)}), ACCOUNT, "STARTING_CAPITAL=5000 is not",
     "set QUORUM_RISK__STARTING_CAPITAL=651"),
    (RISK.model_copy(update={"max_position_pct": 1.0}), replace(ACCOUNT, cash=Decimal(300)),
     "more than the 285.00 USD of cash", "set QUORUM_RISK__MAX_POSITION_PCT to at most 0.44"),
    (RISK.model_copy(update={"max_gross_exposure_pct": 1.5}), ACCOUNT, "needs margin",
     "set QUORUM_RISK__MAX_GROSS_EXPOSURE_PCT=1.0"),
    (RISK, replace(ACCOUNT, trading_blocked=True), "cannot trade", "Alpaca dashboard"),
    (RISK.model_copy(update={"min_order_notional": Decimal(200)}), ACCOUNT, "below the minimum order",
     "raise QUORUM_RISK__MAX_POSITION_PCT"),
])
def test_caps_the_account_cannot_carry_are_refused_with_the_setting_to_change(
        risk: RiskSettings, account: Account, problem: str, fix: str) -> None:
    result = account_gate(risk, account)
    assert not result.ok
    assert problem in result.detail
    assert result.hint is not None and fix in result.hint


def _status(sessions: int = 10, target: int = 10, *passed: bool | None) -> CampaignStatus:
    campaign = PaperCampaign("two-weeks", "live", NOW - timedelta(days=14), target, "PA1", Decimal(650))
    verdicts = passed or (True, True)
    criteria = tuple(Criterion(f"c{i}", v, f"measured {i}") for i, v in enumerate(verdicts))
    return CampaignStatus(campaign, NOW, sessions, criteria)


def test_a_finished_campaign_that_met_every_criterion_passes() -> None:
    result = campaign_gate(_status())
    assert result.ok and "10/10 sessions" in result.detail and "c0, c1" in result.detail


@pytest.mark.parametrize(("status", "problem", "fix"), [
    (None, "no paper campaign recorded", "quorum paper start --days 10"),
    (_status(6), "6/10 sessions, not finished", "let it run 4 more sessions"),
    (_status(10, 10, True, False), "criteria not met: c1 (measured 1)", "run a new campaign"),
    (_status(10, 10, True, None), "criteria not met: c1", "run a new campaign"),
    (_status(5, 5), "too short", "quorum paper start --days 10"),
])
def test_a_missing_short_unfinished_or_failing_campaign_fails(status: CampaignStatus | None, problem: str,
                                                              fix: str) -> None:
    result = campaign_gate(status)
    assert not result.ok and problem in result.detail
    assert result.hint is not None and fix in result.hint


def _run(verdict: str = "ok", at: datetime = NOW - timedelta(hours=10), kind: str = "nightly") -> EvalRunRecord:
    return EvalRunRecord("e-1", "live", at, kind, "key", "offline", {}, verdict)


def test_a_recent_passing_eval_run_passes() -> None:
    assert evals_gate(_run(), now=NOW).ok
    assert evals_gate(_run("noise"), now=NOW).ok


@pytest.mark.parametrize(("run", "problem", "fix"), [
    (None, "no eval run recorded", "/api/evals/run"),
    (_run("regression"), ": regression", "quorum evals history"),
    (_run(at=NOW - timedelta(days=5)), "older than 3 days", "/api/evals/run"),
])
def test_no_failing_or_stale_eval_run_fails(run: EvalRunRecord | None, problem: str, fix: str) -> None:
    result = evals_gate(run, now=NOW)
    assert not result.ok and problem in result.detail
    assert result.hint is not None and fix in result.hint


def test_the_breaker_self_test_passes_on_the_configured_thresholds() -> None:
    result = breaker_selftest(RISK.breaker, equity=Decimal(650), as_of=NOW)
    assert result.ok and "drawdown 20%" in result.detail and "refuses an early resume" in result.detail


def test_a_breaker_that_does_not_trip_fails_the_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    def never_trips(state: brk.BreakerState, **_: Any) -> tuple[brk.BreakerState, None]:
        return state, None

    monkeypatch.setattr(brk, "record_trade_result", never_trips)
    result = breaker_selftest(RISK.breaker, equity=Decimal(650), as_of=NOW)
    assert not result.ok and "consecutive_losses did not trip the breaker" in result.detail
    assert result.hint is not None and "tests/unit/test_breaker.py" in result.hint


def test_the_hard_limits_self_test_holds_an_oversized_proposal_to_the_cap() -> None:
    result = hard_limits_selftest(RISK, as_of=NOW, tz=NY)
    assert result.ok and "held to 162.50 USD (cap 162.50 USD)" in result.detail


def test_hard_limits_that_let_everything_through_fail_the_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    def approve_all(trade: Any, ctx: Any, settings: Any, *, client_order_id: str) -> LimitDecision:
        order = OrderRequest(client_order_id, trade.symbol, Side.BUY, Decimal(50), stop_price=Decimal(10))
        return LimitDecision(order, (), None, "yes")

    monkeypatch.setattr(selftests, "apply_hard_limits", approve_all)
    result = hard_limits_selftest(RISK, as_of=NOW, tz=NY)
    assert not result.ok
    assert "a 500% proposal became 5000.00 USD" in result.detail and "NaN confidence was approved" in result.detail
    assert result.hint is not None and "test_limits.py" in result.hint


def _record(**changes: Any) -> GoLiveRecord:
    values: dict[str, Any] = dict(account="alpaca-live:abc", equity=Decimal(650), cash=Decimal(650), currency="USD",
                                  at=NOW, by="me", gates=(GateOutcome("breaker", True, "ok"),))
    values.update(changes)
    return GoLiveRecord(**values)


def test_a_record_for_these_keys_allows_live_trading_and_survives_json() -> None:
    record = _record()
    assert GoLiveRecord.from_json(record.to_json()) == record
    assert record_refusal(record, account="alpaca-live:abc", now=NOW + timedelta(days=2)) is None
    old_but_used = record.activated(NOW + timedelta(days=1))
    assert record_refusal(old_but_used, account="alpaca-live:abc", now=NOW + timedelta(days=90)) is None


@pytest.mark.parametrize(("record", "account", "now", "why"), [
    (None, "alpaca-live:abc", NOW, "no go-live record"),
    (_record(), "alpaca-live:other", NOW, "for another account"),
    (_record(), "alpaca-live:abc", NOW + timedelta(days=8), "older than 7 days and was never used"),
    (_record(gates=(GateOutcome("alerts", False, "none"),)), "alpaca-live:abc", NOW, "failed gates"),
])
def test_live_trading_is_refused_without_a_fresh_record_for_these_keys(
        record: GoLiveRecord | None, account: str, now: datetime, why: str) -> None:
    refusal = record_refusal(record, account=account, now=now)
    assert refusal is not None and why in refusal
