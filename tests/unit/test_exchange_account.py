"""The exchange model's account: buying power, shares held by open orders, pattern day trading and position views."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from adapters.calendar import NyseCalendar
from adapters.inmemory.clock import SimClock
from adapters.inmemory.exchange import Exchange, ExchangeRules, Kind, OrderClass, OrderSpec, Rejection, RejectionKind
from domain.models.trading import Side
from domain.risk.config import FeeSettings

NY = ZoneInfo("America/New_York")
D = Decimal
CAL = NyseCalendar()
MON, TUE, WED = date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3)


def market(cash: str = "10000", **rules: object) -> tuple[Exchange, SimClock]:
    clock = SimClock(CAL.session_open(MON))
    ex = Exchange(D(cash), FeeSettings(slippage_bps=D(0)), clock, CAL, rules=ExchangeRules(**rules),  # type: ignore[arg-type]
                  id_seed=3)
    ex.open_session(MON, {"AAA": D(100), "BBB": D(20)})
    return ex, clock


def at(clock: SimClock, hh: int, mm: int = 0, day: date = MON) -> datetime:
    clock.set(datetime(day.year, day.month, day.day, hh, mm, tzinfo=NY))
    return clock.now()


def refusal(ex: Exchange, spec: OrderSpec) -> Rejection:
    with pytest.raises(Rejection) as caught:
        ex.submit(spec)
    return caught.value


def test_buying_power_is_cash_less_open_buys_and_comes_back_when_they_end() -> None:
    ex, clock = market(cash="1000")
    limit = ex.submit(OrderSpec("AAA", Side.BUY, qty=D(5), kind=Kind.LIMIT, limit_price=D(90)))
    assert ex.account().buying_power == D(550)
    r = refusal(ex, OrderSpec("AAA", Side.BUY, qty=D(6)))  # 6 * 105 = 630
    assert r.body == {"code": 40310000, "message": "insufficient buying power", "buying_power": "550",
                      "cost_basis": "630"}
    assert r.kind is RejectionKind.INSUFFICIENT_BUYING_POWER
    ex.cancel(limit.id)
    assert ex.account().buying_power == D(1000)
    ex.submit(OrderSpec("AAA", Side.BUY, qty=D(5)))
    ex.price_update(at(clock, 10), {"AAA": D(100)})
    account = ex.account()
    assert (account.cash, account.buying_power, account.equity) == (D(500), D(500), D(1000))


def test_a_sell_beyond_what_is_available_names_the_orders_holding_the_shares() -> None:
    ex, clock = market()
    ex.submit(OrderSpec("AAA", Side.BUY, qty=D(10)))
    ex.price_update(at(clock, 10), {"AAA": D(100)})
    first = ex.submit(OrderSpec("AAA", Side.SELL, qty=D(6), kind=Kind.LIMIT, limit_price=D(120)))
    r = refusal(ex, OrderSpec("AAA", Side.SELL, qty=D(5)))
    assert r.status == 403 and r.body == {
        "code": 40310000, "message": "insufficient qty available for order (requested: 5, available: 4)",
        "available": "4", "existing_qty": "10", "held_for_orders": "6", "related_orders": [first.id], "symbol": "AAA",
    }
    ex.submit(OrderSpec("AAA", Side.SELL, qty=D(4), kind=Kind.LIMIT, limit_price=D(125)))


def test_a_bracket_cannot_exit_a_position() -> None:
    ex, clock = market()
    ex.submit(OrderSpec("AAA", Side.BUY, qty=D(10)))
    ex.price_update(at(clock, 10), {"AAA": D(100)})
    r = refusal(ex, OrderSpec("AAA", Side.SELL, qty=D(5), order_class=OrderClass.OTO, stop_loss_stop=D(110)))
    assert r.message == "bracket orders must be entry orders"


def day_trade(ex: Exchange, clock: SimClock, minute: int, day: date = MON) -> None:
    ex.submit(OrderSpec("AAA", Side.BUY, qty=D(1)))
    ex.price_update(at(clock, 10, minute, day), {"AAA": D(100)})
    ex.submit(OrderSpec("AAA", Side.SELL, qty=D(1)))
    ex.price_update(at(clock, 10, minute + 1, day), {"AAA": D(100)})


def test_pdt_protection_refuses_the_fourth_day_trade_and_pending_pairs() -> None:
    ex, clock = market()
    ex.submit(OrderSpec("BBB", Side.BUY, qty=D(5)))
    ex.price_update(at(clock, 10), {"BBB": D(20)})
    clock.set(CAL.session_close(MON))
    ex.close_session(MON, {"AAA": D(100), "BBB": D(20)})
    clock.set(CAL.session_open(TUE))
    ex.open_session(TUE, {"AAA": D(100), "BBB": D(20)})
    for n in range(3):
        day_trade(ex, clock, 2 * n, TUE)
    assert ex.account().daytrade_count == 3
    ex.submit(OrderSpec("AAA", Side.BUY, qty=D(1)))  # an entry is no day trade yet
    ex.price_update(at(clock, 11, 0, TUE), {"AAA": D(100)})
    assert refusal(ex, OrderSpec("AAA", Side.SELL, qty=D(1))).kind is RejectionKind.PATTERN_DAY_TRADER
    bid = ex.submit(OrderSpec("BBB", Side.BUY, qty=D(1), kind=Kind.LIMIT, limit_price=D(15)))
    r = refusal(ex, OrderSpec("BBB", Side.SELL, qty=D(1), kind=Kind.LIMIT, limit_price=D(30)))
    # the sell could not wash against the bid (30 > 15), but the two could complete a day trade
    assert r.status == 403 and r.body == {"code": 40310100,
                                          "message": "trade denied due to pattern day trading protection"}
    ex.cancel(bid.id)
    ex.submit(OrderSpec("BBB", Side.SELL, qty=D(1), kind=Kind.LIMIT, limit_price=D(30)))  # bought yesterday


def test_pdt_protection_applies_only_under_the_threshold_of_the_previous_close() -> None:
    ex, clock = market(cash="30000")
    for n in range(3):
        day_trade(ex, clock, 2 * n)
    ex.submit(OrderSpec("AAA", Side.BUY, qty=D(1)))
    ex.price_update(at(clock, 11), {"AAA": D(100)})
    ex.submit(OrderSpec("AAA", Side.SELL, qty=D(1)))  # last equity 30,000: no protection
    ex.price_update(at(clock, 11, 1), {"AAA": D(100)})
    assert ex.account().daytrade_count == 4 and not ex.account().pattern_day_trader


def test_a_position_reports_its_prices_and_what_is_available_but_no_opening_time() -> None:
    ex, clock = market()
    ex.submit(OrderSpec("AAA", Side.BUY, qty=D(3)))
    ex.price_update(at(clock, 10), {"AAA": D(100)})
    ex.submit(OrderSpec("AAA", Side.BUY, qty=D(1)))
    ex.price_update(at(clock, 10, 1), {"AAA": D(104)})
    clock.set(CAL.session_close(MON))
    ex.close_session(MON, {"AAA": D(103)})
    clock.set(CAL.session_open(TUE))
    ex.open_session(TUE, {"AAA": D(99)})
    view = ex.position("AAA")
    assert view is not None
    assert (view.qty, view.qty_available, view.avg_entry_price, view.cost_basis) == (D(4), D(4), D(101), D(404))
    assert (view.current_price, view.lastday_price, view.market_value, view.unrealized_pl) == (
        D(99), D(103), D(396), D(-8))
    assert not hasattr(view, "opened_at") and ex.account().last_equity == D(10000) - D(404) + D(412)


def test_a_withdrawal_cannot_take_cash_reserved_by_open_buys() -> None:
    ex, _ = market(cash="1000")
    ex.submit(OrderSpec("AAA", Side.BUY, qty=D(9)))  # reserves 945
    with pytest.raises(Exception, match="cannot withdraw"):
        ex.deposit(D("-100.00"))
    ex.deposit(D("-55.00"))
    assert ex.account().buying_power == D(0)
