"""Position sizing and protective price levels on a ~650 USD account."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.risk.config import RiskSettings
from domain.risk.sizing import (
    entry_caps,
    order_tick,
    protective_levels,
    protective_stop_price,
    size_position,
    take_profit_price,
)

D = Decimal
MIN = D("1")


def test_fractionable_asset_gets_a_fractional_quantity() -> None:
    # 25% of 650 = 162.50 at $200 buys 0.8125 shares
    r = size_position(D("162.50"), D("200"), fractionable=True, min_notional=MIN)
    assert r.qty == D("0.8125")
    assert r.notional == D("162.50")
    assert r.fractional is True
    assert r.skipped_reason is None


def test_fractional_quantity_is_rounded_down_to_nine_decimals() -> None:
    # 100 / 3 = 33.3333333333... -> 33.333333333, costing 99.999999999 (never above the target)
    r = size_position(D("100"), D("3"), fractionable=True, min_notional=MIN)
    assert r.qty == D("33.333333333")
    assert r.notional == D("99.999999999")
    assert r.notional <= D("100")


def test_whole_result_of_a_fractionable_asset_is_a_whole_share_order() -> None:
    r = size_position(D("400"), D("200"), fractionable=True, min_notional=MIN)
    assert r.qty == D("2")
    assert r.fractional is False


def test_non_fractionable_asset_gets_whole_shares_rounded_down() -> None:
    # 162.50 / 11.50 = 14.13 -> 14 shares = 161.00
    r = size_position(D("162.50"), D("11.50"), fractionable=False, min_notional=MIN)
    assert r.qty == D("14")
    assert r.notional == D("161.00")
    assert r.fractional is False


def test_too_small_for_one_whole_share_says_why_with_the_numbers() -> None:
    r = size_position(D("40"), D("512.30"), fractionable=False, min_notional=MIN)
    assert r.qty is None
    assert r.skipped_reason == "position too small to size: $40.00 buys 0 whole shares of a $512.30 stock"


def test_fractional_order_below_the_broker_minimum_is_skipped() -> None:
    # 0.65 (0.1% of a 650 account) at $200 is 0.00325 shares = $0.65 < $1.00
    r = size_position(D("0.65"), D("200"), fractionable=True, min_notional=MIN)
    assert r.qty is None
    assert r.skipped_reason is not None
    assert "$0.65" in r.skipped_reason
    assert "$1.00 minimum" in r.skipped_reason


@pytest.mark.parametrize(
    ("target", "price"),
    [(D("0"), D("10")), (D("-5"), D("10")), (D("NaN"), D("10")), (D("100"), D("0")), (D("100"), D("Infinity"))],
)
def test_unusable_inputs_are_skipped_not_raised(target: Decimal, price: Decimal) -> None:
    r = size_position(target, price, fractionable=True, min_notional=MIN)
    assert r.qty is None
    assert r.skipped_reason


def test_order_tick_is_a_cent_at_one_dollar_and_above() -> None:
    assert order_tick(D("1.00")) == D("0.01")
    assert order_tick(D("0.99")) == D("0.0001")


def test_stop_price_of_a_long_is_below_on_the_cent_grid() -> None:
    # 48.13 * 0.95 = 45.7235 -> 45.72 (sub-penny stops are refused above $1)
    assert protective_stop_price(D("48.13"), D("0.05"), long=True, min_pct=D("0.01"), max_pct=D("0.15")) == D("45.72")


def test_stop_rounding_never_leaves_the_allowed_distance() -> None:
    # 10.06 * 0.85 = 8.551 would round to 8.55, a 15.01% stop: it is moved up to 8.56 (14.91%)
    stop = protective_stop_price(D("10.06"), D("0.15"), long=True, min_pct=D("0.01"), max_pct=D("0.15"))
    assert stop == D("8.56")


def test_stop_price_of_a_short_is_above() -> None:
    assert protective_stop_price(D("200"), D("0.05"), long=False, min_pct=D("0.01"), max_pct=D("0.15")) == D("210")


def test_sub_dollar_stop_uses_the_fine_tick_and_none_when_no_tick_fits() -> None:
    assert protective_stop_price(D("0.50"), D("0.05"), long=True, min_pct=D("0.01"), max_pct=D("0.15")) == D("0.475")
    assert protective_stop_price(D("0.0001"), D("0.05"), long=True, min_pct=D("0.01"), max_pct=D("0.15")) is None


def test_take_profit_price() -> None:
    assert take_profit_price(D("200"), D("0.10"), long=True) == D("220")
    assert take_profit_price(D("200"), D("0.10"), long=False) == D("180")
    assert take_profit_price(D("200"), D("0.00001"), long=True) is None  # rounds onto the price
    assert take_profit_price(D("200"), D("1.5"), long=False) is None  # below zero


def test_protective_levels_default_and_clamps() -> None:
    s = RiskSettings()
    missing = protective_levels(D("200"), None, None, long=True, settings=s)
    assert missing.stop_price == D("190")
    assert [c[0] for c in missing.changes] == ["stop_required"]
    nan = protective_levels(D("200"), float("nan"), float("inf"), long=True, settings=s)
    assert nan.stop_price == D("190")
    assert nan.take_profit_price is None
    assert [c[0] for c in nan.changes] == ["stop_required", "take_profit_ignored"]
    tight = protective_levels(D("200"), 0.002, 0.1, long=True, settings=s)
    assert (tight.stop_price, tight.take_profit_price) == (D("198"), D("220"))
    assert [c[0] for c in tight.changes] == ["min_stop_pct"]
    wide = protective_levels(D("200"), 1e9, 50.0, long=True, settings=s)
    assert wide.stop_price == D("170")
    assert [c[0] for c in wide.changes] == ["max_stop_pct", "take_profit_ignored"]


def test_entry_caps_on_a_650_account() -> None:
    caps = entry_caps(
        price=D("200"),
        equity=D("650"),
        cash=D("650"),
        pending_exposure=D("500"),
        held_value=D("0"),
        gross_value=D("0"),
        settings=RiskSettings(),
    )
    by_name = {c.limit: c.cap for c in caps}
    assert by_name["max_position_pct"] == D("162.50")
    assert by_name["max_gross_exposure"] == D("150")
    # the broker checks market buys at the price plus a 5% collar: spendable 650 - 500 * 1.05 = 125,
    # checked at 210 -> 119.0476... at $200 (a buy sized to the last cent would be refused)
    assert D("119.0476") < by_name["cash"] < D("119.0477")
    no_collar = entry_caps(price=D("200"), equity=D("650"), cash=D("650"), pending_exposure=D("500"),
                           held_value=D("0"), gross_value=D("0"),
                           settings=RiskSettings(buying_power_collar_pct=0))
    # without a collar only slippage is left: 650 - 500 * 1.0005 = 149.75 at 200.10 -> 149.6751...
    assert D("149.6751") < {c.limit: c.cap for c in no_collar}["cash"] < D("149.6752")
