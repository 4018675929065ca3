"""The exchange model's order lifecycle: statuses, legs, pending cancels, expiry, OCO, notional orders and fills."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from adapters.calendar import NyseCalendar
from adapters.inmemory.clock import SimClock
from adapters.inmemory.exchange import (
    CashActivity,
    Exchange,
    FillActivity,
    Kind,
    OrderClass,
    OrderSpec,
    Rejection,
    RejectionKind,
    Role,
    Status,
    Tif,
)
from domain.models.trading import Side
from domain.risk.config import FeeSettings

NY = ZoneInfo("America/New_York")
D = Decimal
CAL = NyseCalendar()
MON, TUE, WED = date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3)


class Market:
    def __init__(self, cash: str = "10000", seed: int | None = 1) -> None:
        self.clock = SimClock(datetime(2024, 7, 1, 9, tzinfo=NY))
        self.ex = Exchange(D(cash), FeeSettings(), self.clock, CAL, id_seed=seed)
        self.open(MON, AAA="100")
        self.close(MON, AAA=("100", "101", "99", "100"))

    def at(self, day: date, hh: int, mm: int = 0) -> datetime:
        self.clock.set(datetime(day.year, day.month, day.day, hh, mm, tzinfo=NY))
        return self.clock.now()

    def open(self, day: date, **opens: str) -> None:
        self.clock.set(CAL.session_open(day))
        self.ex.open_session(day, {s: D(p) for s, p in opens.items()})

    def tick(self, day: date, hh: int, mm: int, **prices: str) -> None:
        self.ex.price_update(self.at(day, hh, mm), {s: D(p) for s, p in prices.items()})

    def close(self, day: date, **bars: tuple[str, str, str, str]) -> None:
        self.clock.set(CAL.session_close(day))
        ohlc = {s: tuple(D(x) for x in b) for s, b in bars.items()}
        self.ex.close_session(day, {s: b[3] for s, b in ohlc.items()}, ohlc)  # type: ignore[misc]


def buy(qty: str = "10", **kw: object) -> OrderSpec:
    return OrderSpec("AAA", Side.BUY, qty=D(qty), **kw)  # type: ignore[arg-type]


def sell(qty: str = "10", **kw: object) -> OrderSpec:
    return OrderSpec("AAA", Side.SELL, qty=D(qty), **kw)  # type: ignore[arg-type]


def bracket(**kw: object) -> OrderSpec:
    return buy(order_class=OrderClass.BRACKET, take_profit_limit=D(110), stop_loss_stop=D(95), tif=Tif.GTC, **kw)


def test_statuses_are_accepted_outside_the_session_and_new_during_it() -> None:
    m = Market()
    m.at(MON, 18)
    assert m.ex.submit(buy("1")).status is Status.ACCEPTED
    m.open(TUE, AAA="100")
    assert m.ex.submit(buy("1")).status is Status.NEW


def test_bracket_legs_are_held_until_the_parent_fills_then_take_profit_is_new_and_stop_held() -> None:
    m = Market()
    m.open(TUE, AAA="100")
    parent = m.ex.submit(bracket(client_order_id="mine"))
    take, stop = m.ex.legs(parent)
    assert (take.role, stop.role) == (Role.TAKE_PROFIT, Role.STOP_LOSS)
    assert take.status is stop.status is Status.HELD and take.active_since is None
    assert take.tif is stop.tif is Tif.GTC and take.side is stop.side is Side.SELL
    assert {take.client_order_id, stop.client_order_id}.isdisjoint({"mine", parent.id})
    m.tick(TUE, 9, 31, AAA="100")
    assert (parent.status, take.status, stop.status) == (Status.FILLED, Status.NEW, Status.HELD)
    assert take.active_since == stop.active_since == CAL.session_open(TUE) + timedelta(minutes=1)


def test_a_pending_cancel_keeps_holding_until_the_next_processing_step() -> None:
    m = Market()
    m.open(TUE, AAA="100")
    m.ex.submit(buy(order_class=OrderClass.OTO, stop_loss_stop=D(95), tif=Tif.GTC))
    m.tick(TUE, 9, 31, AAA="100")
    (stop,) = m.ex.open_orders()
    assert m.ex.request_cancel(stop.id).status is Status.PENDING_CANCEL
    with pytest.raises(Rejection) as caught:
        m.ex.submit(sell("10"))
    assert caught.value.kind is RejectionKind.INSUFFICIENT_QTY and caught.value.body["related_orders"] == [stop.id]
    m.tick(TUE, 9, 32, AAA="100")  # a market event completes the cancellation
    assert stop.status is Status.CANCELED and stop.canceled_at == CAL.session_open(TUE) + timedelta(minutes=2)
    m.ex.submit(sell("10"))


def test_cancelling_a_filled_order_is_refused_and_cancelling_a_leg_takes_the_other_leg() -> None:
    m = Market()
    m.open(TUE, AAA="100")
    parent = m.ex.submit(bracket())
    m.tick(TUE, 9, 31, AAA="100")
    with pytest.raises(Rejection) as caught:
        m.ex.cancel(parent.id)
    assert (caught.value.status, caught.value.message) == (422, 'order is already in "filled" state')
    take, stop = m.ex.legs(parent)
    m.ex.cancel(stop.id)
    assert take.status is stop.status is Status.CANCELED
    with pytest.raises(Rejection) as missing:
        m.ex.cancel("no-such-order")
    assert missing.value.status == 404


def test_cancelling_an_unfilled_parent_cancels_its_held_legs_and_releases_buying_power() -> None:
    m = Market(cash="2000")
    m.at(MON, 18)
    parent = m.ex.submit(bracket())
    assert m.ex.account().buying_power == D("2000") - D("1050.00")
    m.ex.cancel(parent.id)
    assert all(o.status is Status.CANCELED for o in [parent, *m.ex.legs(parent)])
    assert m.ex.account().buying_power == D("2000")


def test_day_orders_left_over_from_a_session_never_closed_expire_at_the_next_open() -> None:
    m = Market()
    m.open(TUE, AAA="100")
    waiting = m.ex.submit(buy("1", kind=Kind.LIMIT, limit_price=D(50)))
    m.open(WED, AAA="100")  # Tuesday's close was never fed
    assert waiting.status is Status.EXPIRED and waiting.expired_at == CAL.session_close(TUE)


def test_an_oco_exit_holds_the_shares_once_and_one_fill_cancels_the_other() -> None:
    m = Market()
    m.open(TUE, AAA="100")
    m.ex.submit(buy("10"))
    m.tick(TUE, 9, 31, AAA="100")
    parent = m.ex.submit(sell("10", kind=Kind.LIMIT, order_class=OrderClass.OCO, take_profit_limit=D(110),
                              stop_loss_stop=D(95)))
    (stop,) = m.ex.legs(parent)
    assert (parent.role, parent.limit_price, stop.kind, stop.status) == (Role.TAKE_PROFIT, D(110), Kind.STOP,
                                                                         Status.HELD)
    position = m.ex.position("AAA")
    assert position is not None and (position.held_for_orders, position.qty_available) == (D(10), D(0))
    m.tick(TUE, 10, 0, AAA="94")
    assert (stop.status, parent.status) == (Status.FILLED, Status.CANCELED)


def test_a_notional_buy_gets_its_quantity_at_the_fill() -> None:
    m = Market()
    m.open(TUE, AAA="100")
    order = m.ex.submit(OrderSpec("AAA", Side.BUY, notional=D("250")))
    m.tick(TUE, 9, 31, AAA="125")
    (fill,) = m.ex.fills
    assert (order.qty, order.filled_qty, fill.qty) == (None, D("1.999000499"), D("1.999000499"))


def test_a_buy_that_gapped_past_what_cash_can_pay_is_rejected_at_the_fill() -> None:
    m = Market(cash="1100")
    m.at(MON, 18)
    order = m.ex.submit(buy("10"))  # valued at 1050 with the collar
    m.open(TUE, AAA="115")
    assert order.status is Status.REJECTED and "insufficient cash" in order.reject_reason
    assert m.ex.fills == [] and m.ex.account().buying_power == D("1100")


def test_fills_and_activities_are_recorded_in_order_with_alpaca_ids() -> None:
    m = Market()
    m.ex.deposit(D("100.00"))
    m.open(TUE, AAA="100")
    m.ex.submit(buy("10"))
    m.tick(TUE, 9, 31, AAA="100")
    m.ex.submit(sell("10"))
    m.tick(TUE, 9, 32, AAA="101")
    kinds = [a.activity_type if isinstance(a, CashActivity) else "FILL" for a in m.ex.activities()]
    assert kinds == ["CSD", "FILL", "FILL", "FEE"]
    fill_activity = m.ex.activities()[1]
    assert isinstance(fill_activity, FillActivity)
    stamp, suffix = fill_activity.id.split("::")
    assert stamp == "20240702133100000" and uuid.UUID(suffix)
    assert m.ex.fills_since(CAL.session_open(TUE) + timedelta(minutes=2)) == m.ex.fills[1:]


def test_ids_are_reproducible_with_a_seed() -> None:
    first, second, random = Market(seed=7), Market(seed=7), Market(seed=None)
    for m in (first, second, random):
        m.open(TUE, AAA="100")
    a, b, c = (m.ex.submit(bracket()) for m in (first, second, random))
    assert (a.id, a.leg_ids) == (b.id, b.leg_ids) and a.id != c.id


def test_events_must_come_in_order() -> None:
    m = Market()
    with pytest.raises(ValueError, match="no session is open"):
        m.ex.price_update(datetime(2024, 7, 2, 10, tzinfo=NY), {"AAA": D(100)})
    m.open(TUE, AAA="100")
    with pytest.raises(ValueError, match="not open"):
        m.ex.close_session(WED, {"AAA": D(100)})
    with pytest.raises(ValueError, match="not after"):
        m.ex.open_session(TUE, {"AAA": D(100)})
