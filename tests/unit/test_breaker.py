"""The circuit breaker: trips, shadow mode, auto-resume eligibility and human approval."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.breaker import (
    Approval,
    BreakerNotEligibleError,
    BreakerState,
    BreakerStatus,
    allows_entries,
    approve_resume,
    check_auto_resume,
    in_shadow_mode,
    initial_state,
    record_cycle_outcome,
    record_equity,
    record_shadow,
    record_trade_result,
)
from domain.errors import QuorumError
from domain.risk.config import BreakerSettings

SETTINGS = BreakerSettings()  # drawdown 20%, daily loss 5%, 5 losses, 3 errors in 10, resume 15% / 3 wins / 0.3
T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


def tripped_by_drawdown() -> BreakerState:
    """Peak 1000, tripped at 790 on 2024-03-04."""
    state = initial_state(Decimal("1000"))
    state, trip = record_equity(
        state, equity=Decimal("790"), day_start_equity=Decimal("800"), as_of=T0, settings=SETTINGS
    )
    assert trip is not None
    return state


def with_shadow(
    state: BreakerState, equities: list[str], trades: list[float], start: date = date(2024, 3, 5)
) -> BreakerState:
    for i, e in enumerate(equities):
        state = record_shadow(state, day=start + timedelta(days=i), shadow_equity=Decimal(e), closed_trade_returns=())
    return record_shadow(state, day=start, shadow_equity=Decimal(equities[0]), closed_trade_returns=trades)


GOOD_EQUITY = ["880", "884", "883", "889", "893", "897"]  # 2024-03-05 .. 2024-03-10, drawdown 10.3%
GOOD_TRADES = [-0.02, 0.01, 0.02, 0.015]
CHECK_AT = datetime(2024, 3, 10, 13, 0, tzinfo=UTC)


def good_shadow() -> BreakerState:
    return with_shadow(tripped_by_drawdown(), GOOD_EQUITY, GOOD_TRADES)


# ---- trips -------------------------------------------------------------------------------------------------------


def test_trips_on_drawdown_from_peak_with_the_numbers() -> None:
    state = initial_state(Decimal("1000"))
    state, trip = record_equity(
        state, equity=Decimal("1100"), day_start_equity=Decimal("1000"), as_of=T0, settings=SETTINGS
    )
    assert trip is None and state.peak_equity == Decimal("1100")
    state, trip = record_equity(
        state, equity=Decimal("881"), day_start_equity=Decimal("900"), as_of=T0, settings=SETTINGS
    )
    assert trip is None
    state, trip = record_equity(
        state, equity=Decimal("880"), day_start_equity=Decimal("900"), as_of=T0, settings=SETTINGS
    )
    assert trip is not None and trip.trigger == "drawdown" and trip.at == T0
    for figure in ("20.00%", "1100.00", "880.00", "limit 20.00%"):
        assert figure in trip.reason
    assert state.status is BreakerStatus.TRIPPED
    assert (state.trip_trigger, state.trip_reason, state.tripped_at) == ("drawdown", trip.reason, T0)
    assert state.equity_at_trip == Decimal("880")
    assert not allows_entries(state) and in_shadow_mode(state)


def test_trips_on_daily_loss_with_the_numbers() -> None:
    state = initial_state(Decimal("1000"))
    state, trip = record_equity(
        state, equity=Decimal("951"), day_start_equity=Decimal("1000"), as_of=T0, settings=SETTINGS
    )
    assert trip is None and allows_entries(state)
    state, trip = record_equity(
        state, equity=Decimal("945"), day_start_equity=Decimal("1000"), as_of=T0, settings=SETTINGS
    )
    assert trip is not None and trip.trigger == "daily_loss"
    for figure in ("5.50%", "1000.00", "945.00", "limit 5.00%"):
        assert figure in trip.reason
    assert not allows_entries(state)


def test_trips_on_consecutive_losses_and_a_win_resets_the_run() -> None:
    state = initial_state(Decimal("1000"))
    for r in (-0.01, -0.02, -0.01, -0.03, 0.0):
        state, trip = record_trade_result(state, return_pct=r, as_of=T0, settings=SETTINGS)
        assert trip is None
    assert state.consecutive_losses == 4
    state, _ = record_trade_result(state, return_pct=0.01, as_of=T0, settings=SETTINGS)
    assert state.consecutive_losses == 0
    for _ in range(4):
        state, trip = record_trade_result(state, return_pct=-0.01, as_of=T0, settings=SETTINGS)
        assert trip is None
    state, trip = record_trade_result(state, return_pct=-0.021, as_of=T0, settings=SETTINGS)
    assert trip is not None and trip.trigger == "consecutive_losses"
    assert "5 consecutive losing trades >= limit 5" in trip.reason and "-2.10%" in trip.reason
    assert state.status is BreakerStatus.TRIPPED


def test_trips_on_system_errors_within_the_window_only() -> None:
    state = initial_state(Decimal("1000"))
    outcomes = [True] + [False] * 9 + [True, True]  # 3 errors so far, but the first has left the window
    for error in outcomes:
        state, trip = record_cycle_outcome(state, error=error, as_of=T0, settings=SETTINGS)
        assert trip is None
    assert len(state.recent_errors) == 10 and sum(state.recent_errors) == 2
    state, trip = record_cycle_outcome(state, error=True, as_of=T0, settings=SETTINGS)
    assert trip is not None and trip.trigger == "system_errors"
    assert "3 system errors in the last 10 cycles" in trip.reason and "limit 3" in trip.reason


def test_a_tripped_breaker_does_not_trip_again_or_move_its_peak() -> None:
    state = tripped_by_drawdown()
    before = (
        state.status,
        state.tripped_at,
        state.trip_trigger,
        state.trip_reason,
        state.equity_at_trip,
        state.peak_equity,
    )
    later = T0 + timedelta(hours=1)
    state, trip = record_equity(
        state, equity=Decimal("500"), day_start_equity=Decimal("790"), as_of=later, settings=SETTINGS
    )
    assert trip is None
    state, trip = record_equity(
        state, equity=Decimal("2000"), day_start_equity=Decimal("500"), as_of=later, settings=SETTINGS
    )
    assert trip is None
    for _ in range(5):
        state, trip = record_trade_result(state, return_pct=-0.05, as_of=later, settings=SETTINGS)
        assert trip is None
    for _ in range(3):
        state, trip = record_cycle_outcome(state, error=True, as_of=later, settings=SETTINGS)
        assert trip is None
    after = (
        state.status,
        state.tripped_at,
        state.trip_trigger,
        state.trip_reason,
        state.equity_at_trip,
        state.peak_equity,
    )
    assert after == before


def test_moving_money_out_is_not_a_drawdown() -> None:
    state = initial_state(Decimal("1000"))
    state, trip = record_equity(
        state, equity=Decimal("700"), day_start_equity=Decimal("700"), as_of=T0, settings=SETTINGS, flow=Decimal("-300")
    )
    assert trip is None and state.peak_equity == Decimal("700")
    state, trip = record_equity(
        state, equity=Decimal("560"), day_start_equity=Decimal("590"), as_of=T0, settings=SETTINGS
    )
    assert trip is not None and trip.trigger == "drawdown"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        record_cycle_outcome(initial_state(Decimal("1")), error=False,
                             as_of=datetime(2024, 1, 1), settings=SETTINGS)  # noqa: DTZ001 - naive on purpose: refused


# ---- shadow book and auto-resume ---------------------------------------------------------------------------------


def test_shadow_record_keeps_one_value_per_day_in_order_and_only_while_tripped() -> None:
    state = tripped_by_drawdown()
    state = record_shadow(state, day=date(2024, 3, 6), shadow_equity=Decimal("800"), closed_trade_returns=[0.01])
    state = record_shadow(state, day=date(2024, 3, 5), shadow_equity=Decimal("795"), closed_trade_returns=[])
    state = record_shadow(state, day=date(2024, 3, 6), shadow_equity=Decimal("805"), closed_trade_returns=[-0.02, 0.03])
    assert state.shadow_equity == ((date(2024, 3, 5), Decimal("795")), (date(2024, 3, 6), Decimal("805")))
    assert state.shadow_trade_returns == (0.01, -0.02, 0.03)
    active = initial_state(Decimal("1000"))
    assert record_shadow(active, day=date(2024, 3, 5), shadow_equity=Decimal("1"), closed_trade_returns=[0.1]) == active


def test_all_three_conditions_make_it_eligible_but_entries_stay_blocked() -> None:
    state, check = check_auto_resume(good_shadow(), as_of=CHECK_AT, settings=SETTINGS)
    assert check.eligible and check.reasons == ()
    assert check.drawdown == pytest.approx(0.103)
    assert check.win_streak == 3
    e = np.array([float(x) for x in GOOD_EQUITY])
    r = e[1:] / e[:-1] - 1
    assert check.sharpe_7d == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert state.status is BreakerStatus.ELIGIBLE and state.eligible_since == CHECK_AT
    assert state.last_check["eligible"] is True and state.last_check["at"] == CHECK_AT.isoformat()
    assert not allows_entries(state) and in_shadow_mode(state)
    again, _ = check_auto_resume(state, as_of=CHECK_AT + timedelta(hours=1), settings=SETTINGS)
    assert again.status is BreakerStatus.ELIGIBLE and again.eligible_since == CHECK_AT


def test_shadow_drawdown_not_recovered_keeps_it_tripped() -> None:
    state = with_shadow(tripped_by_drawdown(), ["830", "834", "833", "839", "843", "849"], GOOD_TRADES)
    state, check = check_auto_resume(state, as_of=CHECK_AT, settings=SETTINGS)
    assert not check.eligible and state.status is BreakerStatus.TRIPPED
    assert check.reasons == ("shadow drawdown 15.10% (peak 1000.00, shadow 849.00) >= 15.00%",)
    assert state.last_check["reasons"] == list(check.reasons)


def test_short_win_streak_keeps_it_tripped() -> None:
    state = with_shadow(tripped_by_drawdown(), GOOD_EQUITY, [0.02, 0.01, -0.01, 0.03])
    state, check = check_auto_resume(state, as_of=CHECK_AT, settings=SETTINGS)
    assert state.status is BreakerStatus.TRIPPED
    assert check.win_streak == 1 and check.reasons == ("win streak 1 < 3",)


def test_weak_sharpe_keeps_it_tripped() -> None:
    state = with_shadow(tripped_by_drawdown(), ["900", "898", "899", "896", "897", "895"], GOOD_TRADES)
    state, check = check_auto_resume(state, as_of=CHECK_AT, settings=SETTINGS)
    assert state.status is BreakerStatus.TRIPPED
    assert check.sharpe_7d is not None and check.sharpe_7d < 0
    assert len(check.reasons) == 1 and check.reasons[0].startswith("7-day sharpe -") and "<= 0.30" in check.reasons[0]


def test_too_little_shadow_history_is_not_eligible() -> None:
    state = with_shadow(tripped_by_drawdown(), ["880", "890", "900"], GOOD_TRADES)
    state, check = check_auto_resume(state, as_of=CHECK_AT, settings=SETTINGS)
    assert state.status is BreakerStatus.TRIPPED and check.sharpe_7d is None
    assert check.reasons == ("not enough shadow history: 2 daily returns in 7 days, need 3",)
    _, empty = check_auto_resume(tripped_by_drawdown(), as_of=CHECK_AT, settings=SETTINGS)
    assert "no shadow equity recorded yet" in empty.reasons


def test_sharpe_uses_only_the_last_seven_days_and_nothing_after_as_of() -> None:
    bad_then_good = ["1000", "850", "880", "884", "883", "889", "893", "897"]
    state = with_shadow(tripped_by_drawdown(), bad_then_good, GOOD_TRADES, start=date(2024, 3, 1))
    as_of = datetime(2024, 3, 8, 20, 0, tzinfo=UTC)  # window: returns ending 2024-03-02 .. 2024-03-08
    _, check = check_auto_resume(state, as_of=as_of, settings=SETTINGS)
    assert check.sharpe_7d is not None and check.sharpe_7d < 0
    _, check = check_auto_resume(state, as_of=as_of + timedelta(days=1), settings=SETTINGS)
    assert check.eligible
    future = record_shadow(state, day=date(2024, 3, 20), shadow_equity=Decimal("100"), closed_trade_returns=())
    _, check = check_auto_resume(future, as_of=as_of + timedelta(days=1), settings=SETTINGS)
    assert check.eligible


def test_eligible_falls_back_to_tripped_when_the_shadow_book_deteriorates() -> None:
    state, _ = check_auto_resume(good_shadow(), as_of=CHECK_AT, settings=SETTINGS)
    assert state.status is BreakerStatus.ELIGIBLE
    state = record_shadow(state, day=date(2024, 3, 11), shadow_equity=Decimal("890"), closed_trade_returns=[-0.01])
    state, check = check_auto_resume(state, as_of=CHECK_AT + timedelta(days=1), settings=SETTINGS)
    assert state.status is BreakerStatus.TRIPPED and state.eligible_since is None
    assert "win streak 0 < 3" in check.reasons


def test_an_active_breaker_is_left_alone_by_the_resume_check() -> None:
    active = initial_state(Decimal("1000"))
    state, check = check_auto_resume(active, as_of=CHECK_AT, settings=SETTINGS)
    assert state == active and not check.eligible


# ---- approval ----------------------------------------------------------------------------------------------------


def test_approval_resumes_an_eligible_breaker_and_is_recorded() -> None:
    state, _ = check_auto_resume(good_shadow(), as_of=CHECK_AT, settings=SETTINGS)
    state, _ = record_trade_result(state, return_pct=-0.01, as_of=CHECK_AT, settings=SETTINGS)
    at = CHECK_AT + timedelta(minutes=5)
    resumed = approve_resume(state, by="alice", as_of=at, note="shadow book looks fine", equity=Decimal("805"))
    assert resumed.status is BreakerStatus.ACTIVE and allows_entries(resumed) and not in_shadow_mode(resumed)
    assert resumed.approvals == (Approval(by="alice", at=at, note="shadow book looks fine"),)
    assert resumed.peak_equity == Decimal("805")
    assert resumed.consecutive_losses == 0 and resumed.recent_errors == ()
    assert resumed.shadow_equity == () and resumed.shadow_trade_returns == ()
    assert resumed.tripped_at is None and resumed.trip_trigger is None
    _, trip = record_equity(
        resumed, equity=Decimal("780"), day_start_equity=Decimal("790"), as_of=at, settings=SETTINGS
    )
    assert trip is None


def test_approval_is_refused_unless_eligible() -> None:
    state, _ = check_auto_resume(
        with_shadow(tripped_by_drawdown(), GOOD_EQUITY, [0.02, 0.01, -0.01, 0.03]), as_of=CHECK_AT, settings=SETTINGS
    )
    with pytest.raises(BreakerNotEligibleError, match="breaker is tripped but not eligible: win streak 1 < 3"):
        approve_resume(state, by="alice", as_of=CHECK_AT, equity=Decimal("800"))
    with pytest.raises(BreakerNotEligibleError, match="active"):
        approve_resume(initial_state(Decimal("1")), by="alice", as_of=CHECK_AT, equity=Decimal("1"))
    assert issubclass(BreakerNotEligibleError, QuorumError)
    eligible, _ = check_auto_resume(good_shadow(), as_of=CHECK_AT, settings=SETTINGS)
    with pytest.raises(ValueError, match="who approves"):
        approve_resume(eligible, by="  ", as_of=CHECK_AT, equity=Decimal("800"))


def test_approval_with_settings_rechecks_a_stale_eligibility() -> None:
    eligible, _ = check_auto_resume(good_shadow(), as_of=CHECK_AT, settings=SETTINGS)
    worse = record_shadow(eligible, day=date(2024, 3, 11), shadow_equity=Decimal("840"), closed_trade_returns=[])
    later = CHECK_AT + timedelta(days=1)
    assert approve_resume(worse, by="bob", as_of=later, equity=Decimal("800")).status is BreakerStatus.ACTIVE
    with pytest.raises(BreakerNotEligibleError, match=r"shadow drawdown 16\.00%"):
        approve_resume(worse, by="bob", as_of=later, equity=Decimal("800"), settings=SETTINGS)


# ---- persistence -------------------------------------------------------------------------------------------------


def roundtrip(state: BreakerState) -> BreakerState:
    return BreakerState.from_dict(json.loads(json.dumps(state.to_dict(), allow_nan=False)))


def test_round_trip_through_json_at_every_stage() -> None:
    eligible, _ = check_auto_resume(good_shadow(), as_of=CHECK_AT, settings=SETTINGS)
    resumed = approve_resume(eligible, by="alice", as_of=CHECK_AT, equity=Decimal("800.10"), note="ok")
    for state in (initial_state(Decimal("650.00")), tripped_by_drawdown(), good_shadow(), eligible, resumed):
        assert roundtrip(state) == state
    assert eligible.to_dict()["peak_equity"] == "1000"
    assert resumed.to_dict()["approvals"] == [{"by": "alice", "at": CHECK_AT.isoformat(), "note": "ok"}]


money = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)
# Hypothesis takes naive bounds only; `timezones` makes every drawn moment aware (UTC).
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),  # noqa: DTZ001 - see above
                       timezones=st.just(UTC))
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()
)

states = st.builds(
    BreakerState,
    status=st.sampled_from(BreakerStatus),
    peak_equity=money,
    consecutive_losses=st.integers(0, 50),
    recent_errors=st.lists(st.booleans(), max_size=10).map(tuple),
    tripped_at=st.none() | moments,
    trip_trigger=st.none() | st.sampled_from(["drawdown", "daily_loss", "consecutive_losses", "system_errors"]),
    trip_reason=st.none() | st.text(),
    equity_at_trip=st.none() | money,
    shadow_equity=st.dictionaries(st.dates(), money, max_size=8).map(lambda d: tuple(sorted(d.items()))),
    shadow_trade_returns=st.lists(st.floats(-1, 10), max_size=8).map(tuple),
    eligible_since=st.none() | moments,
    last_check=st.dictionaries(st.text(), json_scalars | st.lists(st.text()), max_size=5),
    approvals=st.lists(st.builds(Approval, by=st.text(min_size=1), at=moments, note=st.text()), max_size=3).map(tuple),
    last_equity=st.none() | money,
)


@given(states)
def test_any_state_survives_a_json_round_trip(state: BreakerState) -> None:
    assert roundtrip(state) == state


def test_from_dict_rejects_an_unknown_status() -> None:
    d = initial_state(Decimal("1")).to_dict() | {"status": "paused"}
    with pytest.raises(ValueError, match="'paused' is not a valid BreakerStatus"):
        BreakerState.from_dict(d)
