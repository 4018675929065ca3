"""Hard limits on a 650 USD account: every rule, every clamp, hand-computed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.models.market import Asset
from domain.models.trading import OrderType, Position, Side, TimeInForce
from domain.risk.config import RiskSettings
from domain.risk.limits import LimitContext, LimitDecision, ProposedTrade, apply_hard_limits

D = Decimal
NY = ZoneInfo("America/New_York")
TODAY = date(2025, 3, 4)
SETTINGS = RiskSettings()
BIG_ADV = D("1000000000")


def make_ctx(**overrides: Any) -> LimitContext:
    """A 650 USD all-cash account at 10:00 ET on a Tuesday, market open."""
    prices = {"AAPL": D("200.00"), "F": D("11.50"), "BRK": D("512.30"), "XYZ": D("10.06"), "PENNY": D("2.00")}
    base: dict[str, Any] = {
        "as_of": datetime(2025, 3, 4, 15, 0, tzinfo=UTC),
        "market_open": True,
        "equity": D("650"),
        "cash": D("650"),
        "day_start_equity": D("650"),
        "positions": {},
        "prices": prices,
        "avg_dollar_volume": dict.fromkeys(prices, BIG_ADV),
        "assets": {
            "AAPL": Asset("AAPL", shortable=True),
            "F": Asset("F", fractionable=False),
            "BRK": Asset("BRK", fractionable=False),
            "XYZ": Asset("XYZ"),
            "PENNY": Asset("PENNY"),
        },
        "orders_this_cycle": 0,
        "pending_exposure": D("0"),
        "day_trades_used": 0,
        "today": TODAY,
        "tz": NY,
        "entries_allowed": True,
    }
    base.update(overrides)
    return LimitContext(**base)


def make_trade(symbol: str = "AAPL", action: str = "BUY", **overrides: Any) -> ProposedTrade:
    base: dict[str, Any] = {
        "confidence": 0.7,
        "position_pct": 0.2,
        "stop_loss_pct": 0.05,
        "take_profit_pct": None,
        "reasoning": "uptrend with momentum",
    }
    base.update(overrides)
    return ProposedTrade(symbol=symbol, action=action, **base)


def decide(trade: ProposedTrade, ctx: LimitContext | None = None, settings: RiskSettings = SETTINGS) -> LimitDecision:
    return apply_hard_limits(trade, ctx or make_ctx(), settings, client_order_id="cyc1-AAPL")


def limits_of(decision: LimitDecision) -> list[str]:
    return [a.limit for a in decision.adjustments]


def rejected(decision: LimitDecision, by: str) -> None:
    assert decision.order is None, decision
    assert decision.rejected_by == by, decision


# --- entries: sizing and clamps -------------------------------------------------------------


def test_plain_fractional_entry() -> None:
    d = decide(make_trade())
    o = d.order
    assert o is not None and d.rejected_by is None
    # 20% of 650 = 130.00 at $200 -> 0.65 shares; stop 5% below -> 190.00
    assert (o.symbol, o.side, o.qty, o.fractional) == ("AAPL", Side.BUY, D("0.65"), True)
    assert (o.type, o.time_in_force, o.client_order_id) == (OrderType.MARKET, TimeInForce.DAY, "cyc1-AAPL")
    assert o.stop_price == D("190.00")
    assert o.take_profit_price is None
    assert d.adjustments == ()
    assert "0.65 AAPL" in o.reason and "stop $190.00" in o.reason


def test_action_and_symbol_are_normalised() -> None:
    d = decide(make_trade(symbol=" aapl ", action=" buy\n"))
    assert d.order is not None and d.order.symbol == "AAPL" and d.order.side is Side.BUY


def test_position_pct_is_clamped_to_max_position_pct() -> None:
    d = decide(make_trade(position_pct=0.5))
    assert d.order is not None
    # 50% = 325.00 -> 25% = 162.50 -> 0.8125 shares
    assert d.order.qty == D("0.8125")
    assert limits_of(d) == ["max_position_pct"]
    assert "$325.00 -> $162.50" in d.adjustments[0].detail


def test_absurd_position_pct_is_clamped_not_trusted() -> None:
    d = decide(make_trade(position_pct=1e9))
    assert d.order is not None and d.order.qty == D("0.8125")


def test_existing_position_counts_against_max_position_pct() -> None:
    held = {"AAPL": Position("AAPL", D("0.5"), D("190"))}  # worth 100.00
    d = decide(make_trade(position_pct=0.25), make_ctx(positions=held, cash=D("550")))
    assert d.order is not None
    # 162.50 - 100.00 = 62.50 at $200 -> 0.3125
    assert d.order.qty == D("0.3125")
    assert limits_of(d) == ["max_position_pct"]


def test_full_position_rejects_further_buys() -> None:
    held = {"AAPL": Position("AAPL", D("0.8125"), D("190"))}  # worth 162.50: at the cap
    rejected(decide(make_trade(), make_ctx(positions=held, cash=D("487.50"))), "max_position_pct")


def test_gross_exposure_clamp_includes_positions_and_pending_orders() -> None:
    settings = SETTINGS.model_copy(update={"max_gross_exposure_pct": 0.5})  # 325.00
    held = {"F": Position("F", D("20"), D("11"))}  # 20 * 11.50 = 230.00
    ctx = make_ctx(positions=held, cash=D("420"), pending_exposure=D("50"))
    d = decide(make_trade(position_pct=0.2), ctx, settings)
    assert d.order is not None
    # room 325 - 230 - 50 = 45.00 at $200 -> 0.225
    assert d.order.qty == D("0.225")
    assert limits_of(d) == ["max_gross_exposure"]
    assert "$130.00 -> $45.00" in d.adjustments[0].detail


def test_cash_clamp_leaves_room_for_slippage() -> None:
    settings = SETTINGS.model_copy(update={"max_gross_exposure_pct": 2.0})
    held = {"F": Position("F", D("50"), D("11"))}  # 575.00; cash 75.00
    d = decide(make_trade(position_pct=0.2), make_ctx(positions=held, cash=D("75")), settings)
    o = d.order
    assert o is not None
    # checked by the broker at 200 * 1.05 = 210 (price collar); 75 / 210 = 0.357142857... shares
    assert o.qty == D("0.357142857")
    assert o.qty * D("210") <= D("75")
    assert limits_of(d) == ["cash"]


def test_pending_orders_use_cash_and_exposure() -> None:
    d = decide(make_trade(position_pct=0.25), make_ctx(pending_exposure=D("500")))
    assert d.order is not None
    # gross room 650 - 500 = 150.00; spendable 650 - 500 * 1.05 = 125 -> 125 / 210 shares (5% collar)
    assert d.order.qty == D("0.595238095")
    assert limits_of(d) == ["max_gross_exposure", "cash"]


def test_no_cash_rejects_entry() -> None:
    held = {"F": Position("F", D("10"), D("11"))}
    ctx = make_ctx(positions=held, cash=D("0"), equity=D("115"), day_start_equity=D("115"))
    rejected(decide(make_trade(), ctx, SETTINGS.model_copy(update={"max_gross_exposure_pct": 2.0})), "cash")


def test_whole_shares_for_non_fractionable_asset() -> None:
    d = decide(make_trade(symbol="F", position_pct=0.25))
    assert d.order is not None
    # 162.50 / 11.50 = 14.13 -> 14 whole shares; 11.50 * 0.95 = 10.925 -> stop 10.92 (5.04%, cents)
    assert (d.order.qty, d.order.fractional, d.order.stop_price) == (D("14"), False, D("10.92"))


def test_too_small_for_a_whole_share_on_a_650_account() -> None:
    d = decide(make_trade(symbol="BRK", position_pct=0.25))
    rejected(d, "too_small")
    assert "$162.50 buys 0 whole shares of a $512.30 stock" in d.reason


def test_fractional_order_under_one_dollar_is_too_small() -> None:
    d = decide(make_trade(position_pct=0.001))  # 0.65
    rejected(d, "too_small")
    assert "$1.00 minimum" in d.reason


def test_zero_or_negative_position_pct_is_too_small() -> None:
    rejected(decide(make_trade(position_pct=0.0)), "too_small")
    rejected(decide(make_trade(position_pct=-0.3)), "too_small")


# --- stops and take profit ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop", "expected_price", "expected_limits"),
    [
        (None, D("190"), ["stop_required"]),
        (float("nan"), D("190"), ["stop_required"]),
        (-0.1, D("190"), ["stop_required"]),
        (0.002, D("198"), ["min_stop_pct"]),
        (0.4, D("170"), ["max_stop_pct"]),
        (float("inf"), D("190"), ["stop_required"]),
        (1e9, D("170"), ["max_stop_pct"]),
        (0.08, D("184"), []),
    ],
)
def test_every_entry_carries_a_stop_within_bounds(
    stop: float | None, expected_price: Decimal, expected_limits: list[str]
) -> None:
    d = decide(make_trade(stop_loss_pct=stop))
    assert d.order is not None
    assert d.order.stop_price == expected_price
    assert limits_of(d) == expected_limits


def test_stop_rounding_stays_within_max_distance() -> None:
    d = decide(make_trade(symbol="XYZ", stop_loss_pct=0.15))
    assert d.order is not None and d.order.stop_price == D("8.56")  # 8.551 -> 8.56, not 8.55 (15.01%)


def test_take_profit() -> None:
    d = decide(make_trade(take_profit_pct=0.1))
    assert d.order is not None and d.order.take_profit_price == D("220")
    for bad in (float("nan"), -0.2, 0.0, 50.0):
        d = decide(make_trade(take_profit_pct=bad))
        assert d.order is not None and d.order.take_profit_price is None
        assert limits_of(d) == ["take_profit_ignored"]


# --- entry rules ----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["buy it", "", "LONG", "SELL!!", "hold on"])
def test_unknown_action_is_rejected(action: str) -> None:
    rejected(decide(make_trade(action=action)), "invalid_action")


@pytest.mark.parametrize(
    ("symbol", "by"), [("", "invalid_symbol"), ("   ", "invalid_symbol"), ("ZZZZ", "unknown_symbol")]
)
def test_bad_symbols_are_rejected(symbol: str, by: str) -> None:
    rejected(decide(make_trade(symbol=symbol)), by)


def test_symbol_without_asset_record_is_rejected() -> None:
    ctx = make_ctx(prices={"AAPL": D("200"), "NEW": D("20")})
    rejected(decide(make_trade(symbol="NEW"), ctx), "unknown_symbol")


@pytest.mark.parametrize("price", [D("NaN"), D("0"), D("-1"), D("Infinity")])
def test_unusable_price_is_rejected(price: Decimal) -> None:
    rejected(decide(make_trade(), make_ctx(prices={"AAPL": price})), "invalid_price")


@pytest.mark.parametrize(
    "fields", [{"confidence": float("nan")}, {"position_pct": float("inf")}, {"confidence": float("-inf")}]
)
def test_non_finite_numbers_are_rejected(fields: dict[str, float]) -> None:
    rejected(decide(make_trade(**fields)), "invalid_number")


def test_hold_makes_no_order() -> None:
    d = decide(make_trade(action="hold", confidence=float("nan"), symbol=""))
    assert (d.order, d.rejected_by, d.reason) == (None, None, "hold")


def test_market_closed_rejects_entries_and_exits() -> None:
    closed = make_ctx(market_open=False, positions={"AAPL": Position("AAPL", D("1"), D("150"))})
    rejected(decide(make_trade(symbol="F"), closed), "market_closed")
    rejected(decide(make_trade(action="SELL"), closed), "market_closed")


def test_breaker_blocks_entries_with_its_reason() -> None:
    d = decide(make_trade(), make_ctx(entries_allowed=False, entry_block_reason="circuit breaker: drawdown 21%"))
    rejected(d, "entries_blocked")
    assert "circuit breaker: drawdown 21%" in d.reason


def test_short_entries() -> None:
    rejected(decide(make_trade(action="SELL")), "short_not_allowed")
    shorting = SETTINGS.model_copy(update={"allow_short": True})
    rejected(decide(make_trade(symbol="XYZ", action="SELL"), settings=shorting), "not_shortable")
    # shorts are whole shares only: 130.00 / 200 = 0.65 -> 0 shares
    d = decide(make_trade(action="SELL", position_pct=0.2), settings=shorting)
    rejected(d, "too_small")
    assert "0 whole shares" in d.reason
    d = decide(
        make_trade(symbol="F", action="SELL", position_pct=0.2),
        make_ctx(assets={"F": Asset("F", shortable=True)}),
        shorting,
    )
    assert d.order is not None
    # 130.00 / 11.50 = 11.3 -> 11 shares short, stop 5% above: 12.075 -> 12.08
    assert (d.order.side, d.order.qty, d.order.fractional, d.order.stop_price) == (
        Side.SELL,
        D("11"),
        False,
        D("12.08"),
    )


def test_untradable_asset_is_rejected() -> None:
    rejected(decide(make_trade(), make_ctx(assets={"AAPL": Asset("AAPL", tradable=False)})), "not_tradable")
    rejected(decide(make_trade(), make_ctx(assets={"AAPL": Asset("AAPL", status="inactive")})), "not_tradable")


def test_min_confidence() -> None:
    rejected(decide(make_trade(confidence=0.54)), "min_confidence")
    rejected(decide(make_trade(confidence=-0.2)), "invalid_number")
    rejected(decide(make_trade(confidence=1e9)), "invalid_number")
    assert decide(make_trade(confidence=0.55)).order is not None


def test_min_price() -> None:
    d = decide(make_trade(symbol="PENNY"))
    rejected(d, "min_price")
    assert "$2.00 is below the $5.00 minimum" in d.reason


def test_min_average_dollar_volume_and_missing_volume() -> None:
    rejected(decide(make_trade(), make_ctx(avg_dollar_volume={})), "min_avg_dollar_volume")
    rejected(decide(make_trade(), make_ctx(avg_dollar_volume={"AAPL": D("4999999")})), "min_avg_dollar_volume")
    assert decide(make_trade(), make_ctx(avg_dollar_volume={"AAPL": D("5000000")})).order is not None


def test_daily_loss_limit_blocks_entries() -> None:
    # (630.50 - 650) / 650 = -3.0% exactly: limit reached
    held = {"F": Position("F", D("10"), D("11"))}
    at_limit = make_ctx(positions=held, equity=D("630.50"), cash=D("515.50"))
    d = decide(make_trade(), at_limit)
    rejected(d, "max_daily_loss")
    assert decide(make_trade(), replace(at_limit, equity=D("630.51"))).order is not None


def test_max_new_orders_per_cycle() -> None:
    rejected(decide(make_trade(), make_ctx(orders_this_cycle=3)), "max_new_orders_per_cycle")
    assert decide(make_trade(), make_ctx(orders_this_cycle=2)).order is not None


def test_pdt_guard_blocks_entries_under_25k() -> None:
    rejected(decide(make_trade(), make_ctx(day_trades_used=3)), "pdt")
    assert decide(make_trade(), make_ctx(day_trades_used=2)).order is not None
    rich = make_ctx(day_trades_used=3, equity=D("30000"), cash=D("30000"), day_start_equity=D("30000"))
    assert decide(make_trade(), rich).order is not None


# --- exits ----------------------------------------------------------------------------------

OPENED_TODAY = datetime(2025, 3, 4, 14, 35, tzinfo=UTC)  # 09:35 ET
OPENED_YESTERDAY_EVENING = datetime(2025, 3, 4, 1, 0, tzinfo=UTC)  # 20:00 ET on the 3rd


def held_ctx(qty: str = "0.8125", opened: datetime | None = OPENED_YESTERDAY_EVENING, **kw: Any) -> LimitContext:
    pos = Position("AAPL", D(qty), D("190"), stop_price=D("180"), opened_at=opened, fractional=True)
    return make_ctx(positions={"AAPL": pos}, cash=D("650") - D(qty) * D("200"), **kw)


def test_sell_exits_the_whole_position() -> None:
    d = decide(make_trade(action="SELL", position_pct=0.3), held_ctx())
    o = d.order
    assert o is not None
    assert (o.side, o.qty, o.fractional, o.stop_price) == (Side.SELL, D("0.8125"), True, None)


def test_exits_are_allowed_when_entries_are_not() -> None:
    blocked = held_ctx(entries_allowed=False, orders_this_cycle=3, equity=D("600"), entry_block_reason="breaker")
    d = decide(make_trade(action="SELL", confidence=0.1), blocked)
    assert d.order is not None and d.order.qty == D("0.8125")


def test_pdt_blocks_discretionary_same_day_exit_but_not_a_stop_exit() -> None:
    ctx = held_ctx(opened=OPENED_TODAY, day_trades_used=3)
    d = decide(make_trade(action="SELL"), ctx)
    rejected(d, "pdt")
    assert "day trade" in d.reason
    stop = decide(make_trade(action="SELL", is_stop_exit=True), ctx)
    assert stop.order is not None and stop.order.qty == D("0.8125")
    assert limits_of(stop) == ["pdt_stop_exit"]


def test_pdt_does_not_block_exit_of_a_position_opened_yesterday_in_new_york() -> None:
    d = decide(make_trade(action="SELL"), held_ctx(day_trades_used=3))
    assert d.order is not None and d.adjustments == ()


def test_stop_exit_goes_through_even_with_garbage_numbers() -> None:
    d = decide(
        make_trade(action="SELL", confidence=float("nan"), position_pct=float("nan"), is_stop_exit=True), held_ctx()
    )
    assert d.order is not None and "stop exit" in d.order.reason


def test_stop_exit_without_a_position_is_rejected() -> None:
    rejected(decide(make_trade(action="SELL", is_stop_exit=True)), "invalid_stop_exit")


def test_buy_covers_a_short_in_full() -> None:
    short = {"F": Position("F", D("-3"), D("12"))}
    d = decide(make_trade(symbol="F", action="BUY", position_pct=0.01), make_ctx(positions=short, cash=D("684.50")))
    assert d.order is not None
    assert (d.order.side, d.order.qty, d.order.fractional, d.order.stop_price) == (Side.BUY, D("3"), False, None)


# --- what the broker already holds: open entries, cooldowns, buying power, time in force ----------------------


def test_an_open_entry_order_blocks_a_second_entry_in_the_same_symbol() -> None:
    d = decide(make_trade(symbol="AAPL"), make_ctx(open_entries={"AAPL": D("150")}))
    rejected(d, "entry_pending")
    assert "still open at the broker" in d.reason


def test_open_entry_orders_count_against_cash_and_gross_exposure() -> None:
    free = decide(make_trade(symbol="XYZ", position_pct=0.25), make_ctx())
    assert free.order is not None
    # 600 of buy orders still open elsewhere: 650 - 600 * 1.05 = 20 spendable at 10.06 * 1.05 = 10.563
    held_back = decide(make_trade(symbol="XYZ", position_pct=0.25), make_ctx(open_entries={"AAPL": D("600")}))
    assert held_back.order is not None
    assert held_back.order.qty * D("10.563") <= D("20") < free.order.qty * D("10.563")
    assert "cash" in limits_of(held_back)


def test_buying_power_below_cash_caps_an_entry() -> None:
    d = decide(make_trade(symbol="XYZ", position_pct=0.25), make_ctx(buying_power=D("21")))
    assert d.order is not None and d.order.qty * D("10.563") <= D("21")


def test_a_stop_exit_starts_a_reentry_cooldown() -> None:
    now = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
    rejected(decide(make_trade(symbol="AAPL"), make_ctx(cooldowns={"AAPL": now + timedelta(hours=3)})),
             "reentry_cooldown")
    assert decide(make_trade(symbol="AAPL"), make_ctx(cooldowns={"AAPL": now - timedelta(minutes=1)})).order


def test_whole_share_entries_are_good_till_cancelled_so_their_stop_leg_survives_the_close() -> None:
    whole = decide(make_trade(symbol="F", position_pct=0.25)).order
    fractional = decide(make_trade(symbol="AAPL", position_pct=0.25)).order
    assert whole is not None and fractional is not None
    assert (whole.fractional, whole.time_in_force) == (False, TimeInForce.GTC)
    assert (fractional.fractional, fractional.time_in_force) == (True, TimeInForce.DAY)
