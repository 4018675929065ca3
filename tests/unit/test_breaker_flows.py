"""The circuit breaker measures drawdown on flow-adjusted equity: money moved is neither a gain nor a loss."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from domain.breaker import BreakerStatus, initial_state, record_equity
from domain.risk.config import BreakerSettings

SETTINGS = BreakerSettings(max_drawdown_pct=0.20, max_daily_loss_pct=0.05)
T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
D = Decimal


def test_a_30pct_withdrawal_does_not_trip() -> None:
    state, trip = record_equity(initial_state(D(1000)), equity=D(700), day_start_equity=D(700), as_of=T0,
                                settings=SETTINGS, flow=D(-300))
    assert trip is None and state.status is BreakerStatus.ACTIVE


def test_a_30pct_loss_trips() -> None:
    state, trip = record_equity(initial_state(D(1000)), equity=D(700), day_start_equity=D(1000), as_of=T0,
                                settings=SETTINGS)
    assert trip is not None and trip.trigger == "drawdown" and state.status is BreakerStatus.TRIPPED


def test_a_deposit_does_not_hide_a_loss() -> None:
    state, trip = record_equity(initial_state(D(1000)), equity=D(850), day_start_equity=D(850), as_of=T0,
                                settings=SETTINGS)
    assert trip is None
    state, trip = record_equity(state, equity=D(1850), day_start_equity=D(1850), as_of=T0, settings=SETTINGS,
                                flow=D(1000))
    assert trip is None and state.peak_equity > D(1850), "the peak grows with the deposit: the 15% loss remains"
    state, trip = record_equity(state, equity=D(1740), day_start_equity=D(1790), as_of=T0, settings=SETTINGS)
    assert trip is not None and trip.trigger == "drawdown", "15% lost before the deposit + 6% after is > 20%"


@given(share=st.decimals(min_value=D("0.01"), max_value=D("0.99"), places=2))
def test_no_withdrawal_of_any_size_trips(share: Decimal) -> None:
    amount = D(1000) * share
    state, trip = record_equity(initial_state(D(1000)), equity=D(1000) - amount, day_start_equity=D(1000) - amount,
                                as_of=T0, settings=SETTINGS, flow=-amount)
    assert trip is None and state.status is BreakerStatus.ACTIVE
