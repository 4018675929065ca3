"""InMemoryBroker on the exchange model: orders are accepted and fill at the next price, shares held by open orders,
DAY expiry of orders and legs, buying power at a collared price, wash trades, pattern day trading, deposits, and
cash that replays exactly from the fills."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.calendar import NyseCalendar
from adapters.inmemory.broker import InMemoryBroker
from adapters.inmemory.clock import SimClock
from adapters.inmemory.exchange import ExchangeRules
from domain.errors import (
    BrokerError,
    InsufficientBuyingPowerError,
    InsufficientQtyError,
    NotFoundError,
    OrderRejectedError,
    PatternDayTraderError,
    WashTradeError,
)
from domain.models.trading import Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from domain.ports.broker import Broker
from domain.risk.config import FeeSettings

NY = ZoneInfo("America/New_York")
D = Decimal
FEES = FeeSettings()  # 5 bps slippage, SEC fee 27.80 per million sold, TAF 0.000166 per share sold
MON, TUE, WED, FRI, NEXT_MON = date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3), date(2024, 7, 5), date(2024, 7, 8)


@pytest.fixture(scope="module")
def cal() -> NyseCalendar:
    return NyseCalendar()


class Sim:
    """A broker plus the driver calls a backtest makes."""

    def __init__(self, cal: NyseCalendar, cash: str = "10000", **kwargs: object) -> None:
        self.cal = cal
        self.clock = SimClock(datetime(2024, 7, 1, 8, tzinfo=NY))
        self.broker = InMemoryBroker(D(cash), FEES, self.clock, cal, **kwargs)  # type: ignore[arg-type]

    def open(self, day: date, **opens: str) -> None:
        self.clock.set(self.cal.session_open(day))
        self.broker.on_session_open(day, {s: D(p) for s, p in opens.items()})

    def prices(self, day: date, hh: int, mm: int = 0, **prices: str) -> list[object]:
        self.at(day, hh, mm)
        return list(self.broker.on_prices(self.clock.now(), {s: D(p) for s, p in prices.items()}))

    def close(self, day: date, **bars: tuple[str, str, str, str]) -> None:
        self.clock.set(max(self.clock.now(), self.cal.session_close(day)))
        self.broker.on_session_close(day, {s: tuple(D(x) for x in b) for s, b in bars.items()})  # type: ignore[misc]

    def at(self, day: date, hh: int, mm: int = 0) -> None:
        self.clock.set(datetime(day.year, day.month, day.day, hh, mm, tzinfo=NY))


def buy(cid: str, qty: str, symbol: str = "AAA", **kw: object) -> OrderRequest:
    return OrderRequest(cid, symbol, Side.BUY, D(qty), **kw)  # type: ignore[arg-type]


def sell(cid: str, qty: str, symbol: str = "AAA", **kw: object) -> OrderRequest:
    return OrderRequest(cid, symbol, Side.SELL, D(qty), **kw)  # type: ignore[arg-type]


async def legs_of(broker: InMemoryBroker, parent: Order) -> list[Order]:
    return [o for o in broker.all_orders() if o.parent_id == parent.broker_order_id]


@pytest.fixture
def sim(cal: NyseCalendar) -> Sim:
    s = Sim(cal, fractionable={"WHOLE": False})
    s.close(MON, AAA=("100", "101", "99", "100"), WHOLE=("50", "51", "49", "50"))
    return s


async def test_is_a_paper_broker(sim: Sim) -> None:
    assert isinstance(sim.broker, Broker)
    assert sim.broker.is_paper


async def test_a_market_order_is_accepted_and_fills_at_the_next_price(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    sim.at(TUE, 10, 15)
    order = await sim.broker.submit(buy("c1", "10"))
    assert order.status is OrderStatus.NEW and order.filled_qty == 0
    assert sim.broker.fills == [] and sim.broker.cash == D("10000")
    sim.prices(TUE, 10, 16, AAA="101.00")
    (fill,) = await sim.broker.fills_since(sim.cal.session_open(TUE))
    assert (fill.price, fill.fee, fill.qty) == (D("101.0505"), D("0.00"), D("10"))  # 101 * (1 + 5 bps)
    assert fill.at == datetime(2024, 7, 2, 10, 16, tzinfo=NY)
    filled = await sim.broker.get_order(order.broker_order_id)
    assert filled is not None and filled.status is OrderStatus.FILLED and filled.filled_avg_price == D("101.0505")
    account = await sim.broker.account()
    assert account.cash == D("10000") - fill.notional - fill.fee
    assert account.equity == account.cash + D("1010.00")


async def test_a_price_before_the_order_does_not_fill_it(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    sim.at(TUE, 10, 15)
    await sim.broker.submit(buy("c1", "1"))
    with pytest.raises(ValueError, match="outside the session"):
        sim.broker.on_prices(datetime(2024, 7, 2, 17, tzinfo=NY), {"AAA": D("100")})
    sim.prices(TUE, 10, 15, AAA="100.00")  # same instant: the order was sent by then
    assert len(sim.broker.fills) == 1


async def test_sell_pays_slippage_sec_fee_and_taf(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("c1", "10"))
    sim.prices(TUE, 9, 31, AAA="100.00")
    sim.close(TUE, AAA=("100", "111", "99", "110"))
    sim.open(WED, AAA="110.00")
    await sim.broker.submit(sell("c2", "10"))
    sim.prices(WED, 9, 31, AAA="110.00")
    fill = sim.broker.fills[-1]
    assert fill.price == D("109.9450")
    # SEC: 1099.45 * 27.80 / 1e6 = 0.0306 -> 0.04 (rounded up); TAF: 10 * 0.000166 -> 0.01
    assert fill.fee == D("0.05")
    assert sim.broker.cash == D("10000") - D("1000.50") + D("1099.45") - D("0.05")
    assert await sim.broker.positions() == []


async def test_an_order_sent_while_closed_waits_for_the_next_open(sim: Sim) -> None:
    sim.at(MON, 18)
    order = await sim.broker.submit(buy("c1", "10"))
    assert order.status is OrderStatus.ACCEPTED
    assert [o.client_order_id for o in await sim.broker.open_orders()] == ["c1"]
    sim.open(TUE, AAA="102.00")
    filled = await sim.broker.get_by_client_id("c1")
    assert filled is not None and filled.status is OrderStatus.FILLED
    assert filled.filled_avg_price == D("102.0510")
    assert sim.broker.fills[0].at == sim.cal.session_open(TUE)
    assert await sim.broker.open_orders() == []


async def test_an_order_sent_after_the_open_fills_at_the_next_price_not_the_open(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    sim.at(TUE, 9, 45)
    await sim.broker.submit(buy("c1", "1"))
    sim.close(TUE, AAA=("100", "105", "99", "104"))
    assert sim.broker.fills[0].price == D("104.0520")  # the closing print, the first price after the order
    assert sim.broker.fills[0].at == sim.cal.session_close(TUE)


async def test_a_reused_client_order_id_returns_the_existing_order(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    first = await sim.broker.submit(buy("same", "2"))
    again = await sim.broker.submit(buy("same", "5"))
    assert again.broker_order_id == first.broker_order_id and again.request.qty == D("2")
    assert len(sim.broker.all_orders()) == 1


async def test_a_refused_buy_changes_nothing_and_buying_power_uses_the_collar(cal: NyseCalendar) -> None:
    sim = Sim(cal, cash="1000")
    sim.close(MON, AAA=("100", "101", "99", "100"))
    sim.open(TUE, AAA="100.00")
    before = (await sim.broker.account(), await sim.broker.positions(), sim.broker.fills)
    with pytest.raises(InsufficientBuyingPowerError):
        await sim.broker.submit(buy("big", "10"))  # valued at 100 * 1.05 = 1050 > 1000
    assert (await sim.broker.account(), await sim.broker.positions(), sim.broker.fills) == before
    assert await sim.broker.get_by_client_id("big") is None
    await sim.broker.submit(buy("ok", "9"))  # 945
    assert (await sim.broker.account()).buying_power == D("55.00")
    with pytest.raises(InsufficientBuyingPowerError):
        await sim.broker.submit(buy("more", "1"))
    await sim.broker.submit(buy("limit", "1", type=OrderType.LIMIT, limit_price=D("50.00")))  # valued at its limit
    assert (await sim.broker.account()).buying_power == D("5.00")


async def test_fractional_orders_follow_alpacas_rules(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00", WHOLE="50.00")
    with pytest.raises(OrderRejectedError, match="not fractionable"):
        await sim.broker.submit(buy("f", "1.5", "WHOLE"))
    order = await sim.broker.submit(buy("g", "1.5", stop_price=D("95.00"), time_in_force=TimeInForce.GTC))
    assert order.request.time_in_force is TimeInForce.DAY  # fractional orders are DAY orders
    assert await legs_of(sim.broker, order) == []  # and simple: Quorum keeps that stop itself
    with pytest.raises(OrderRejectedError, match="at least 1"):
        await sim.broker.submit(buy("tiny", "0.005"))
    sim.prices(TUE, 9, 31, AAA="100.00")
    (pos,) = await sim.broker.positions()
    assert pos.fractional and pos.qty == D("1.5") and pos.stop_price is None


async def test_other_rejections(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    with pytest.raises(OrderRejectedError, match="unknown symbol"):
        await sim.broker.submit(buy("u", "1", "ZZZ"))
    with pytest.raises(InsufficientQtyError):
        await sim.broker.submit(sell("s", "1"))
    with pytest.raises(OrderRejectedError, match="sub-penny"):
        await sim.broker.submit(buy("p", "1", stop_price=D("95.123")))
    with pytest.raises(OrderRejectedError, match="base_price"):
        await sim.broker.submit(buy("x", "1", stop_price=D("101")))
    assert sim.broker.all_orders() == [] and sim.broker.cash == D("10000")


async def test_short_selling_only_when_allowed(cal: NyseCalendar) -> None:
    sim = Sim(cal, allow_short=True)
    sim.close(MON, AAA=("100", "101", "99", "100"))
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(sell("short", "5"))
    sim.prices(TUE, 9, 31, AAA="100.00")
    (pos,) = await sim.broker.positions()
    assert pos.qty == D("-5")
    with pytest.raises(OrderRejectedError, match="short"):
        await sim.broker.submit(sell("frac", "0.5"))


async def test_a_protective_leg_has_its_own_ids_and_waits_for_the_parent(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    parent = await sim.broker.submit(buy("entry-1", "10", stop_price=D("95.00"), time_in_force=TimeInForce.GTC))
    (leg,) = await legs_of(sim.broker, parent)
    assert leg.parent_id == parent.broker_order_id and leg.is_leg
    assert leg.broker_order_id != parent.broker_order_id
    assert "entry-1" not in leg.client_order_id and uuid.UUID(leg.client_order_id)  # a UUID chosen by the broker
    assert (leg.request.side, leg.request.type, leg.request.time_in_force) == (Side.SELL, OrderType.STOP,
                                                                               TimeInForce.GTC)
    sim.close(TUE, AAA=("100", "101", "90", "97"))  # the parent filled at the close: the leg was not active
    assert (await sim.broker.positions())[0].qty == D("10")
    sim.open(WED, AAA="97.00")
    sim.close(WED, AAA=("97", "98", "93", "94"))
    stop_fill = sim.broker.fills[-1]
    assert stop_fill.client_order_id == leg.client_order_id and stop_fill.price == D("94.9525")  # 95 less 5 bps
    assert stop_fill.at == sim.cal.session_close(WED)
    assert await sim.broker.positions() == [] and await sim.broker.open_orders() == []


async def test_a_gap_below_the_stop_fills_at_the_open(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("e", "10", stop_price=D("95.00"), time_in_force=TimeInForce.GTC))
    sim.prices(TUE, 9, 31, AAA="100.00")
    sim.close(TUE, AAA=("100", "101", "96", "97"))
    sim.close(WED, AAA=("90", "92", "88", "91"))  # the driver may feed only the close
    assert sim.broker.fills[-1].price == D("89.9550")  # the open less 5 bps, not the stop
    assert await sim.broker.positions() == []


async def test_day_legs_expire_at_the_close_and_gtc_legs_survive(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00", BBB="50.00")
    day = await sim.broker.submit(buy("d", "1", stop_price=D("95.00")))
    gtc = await sim.broker.submit(buy("g", "1", "BBB", stop_price=D("45.00"), time_in_force=TimeInForce.GTC))
    sim.prices(TUE, 9, 31, AAA="100.00", BBB="50.00")
    sim.close(TUE, AAA=("100", "101", "99", "100"), BBB=("50", "51", "49", "50"))
    (day_leg,) = await legs_of(sim.broker, day)
    (gtc_leg,) = await legs_of(sim.broker, gtc)
    assert day_leg.status is OrderStatus.EXPIRED  # the position is left without its stop
    assert gtc_leg.status is OrderStatus.ACCEPTED
    assert {p.symbol: p.qty_available for p in await sim.broker.positions()} == {"AAA": D("1"), "BBB": D("0")}


async def test_take_profit_and_stop_are_one_cancels_other(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    parent = await sim.broker.submit(buy("e", "10", stop_price=D("95.00"), take_profit_price=D("110.00"),
                                         time_in_force=TimeInForce.GTC))
    sim.prices(TUE, 9, 31, AAA="100.00")
    assert len(await sim.broker.open_orders()) == 2
    sim.close(TUE, AAA=("100", "111", "99", "110"))
    assert sim.broker.fills[-1].price == D("110.00")  # the limit, not less
    assert await sim.broker.open_orders() == [] and await sim.broker.positions() == []
    statuses = {o.request.type: o.status for o in await legs_of(sim.broker, parent)}
    assert statuses == {OrderType.LIMIT: OrderStatus.FILLED, OrderType.STOP: OrderStatus.CANCELED}


async def test_when_both_legs_are_touched_the_stop_is_assumed(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("e", "10", stop_price=D("95.00"), take_profit_price=D("110.00"),
                                time_in_force=TimeInForce.GTC))
    sim.prices(TUE, 9, 31, AAA="100.00")
    sim.close(TUE, AAA=("100", "111", "94", "100"))
    assert sim.broker.fills[-1].reason == "protective stop"


async def test_shares_held_by_a_leg_cannot_be_sold_until_it_is_cancelled(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    parent = await sim.broker.submit(buy("e", "10", stop_price=D("95.00"), take_profit_price=D("120.00"),
                                         time_in_force=TimeInForce.GTC))
    sim.prices(TUE, 9, 31, AAA="100.00")
    legs = await legs_of(sim.broker, parent)
    with pytest.raises(InsufficientQtyError) as refused:
        await sim.broker.submit(sell("exit", "4"))
    err = refused.value
    assert (err.symbol, err.available, err.held_for_orders) == ("AAA", D("0"), D("10"))  # two legs hold 10 once
    assert set(err.related_orders) == {leg.broker_order_id for leg in legs}
    await sim.broker.cancel(legs[0].broker_order_id)  # the sibling goes with it
    assert await sim.broker.open_orders() == []
    (pos,) = await sim.broker.positions()
    assert pos.qty_available == D("10")
    await sim.broker.submit(sell("exit", "4"))


async def test_cancel(sim: Sim) -> None:
    sim.at(MON, 18)
    order = await sim.broker.submit(buy("q", "1"))
    await sim.broker.cancel(order.broker_order_id)
    assert (await sim.broker.get_order(order.broker_order_id)).status is OrderStatus.CANCELED  # type: ignore[union-attr]
    sim.open(TUE, AAA="100.00")
    assert sim.broker.fills == []
    with pytest.raises(OrderRejectedError):
        await sim.broker.cancel(order.broker_order_id)
    with pytest.raises(NotFoundError):
        await sim.broker.cancel("nope")


async def test_a_potential_wash_trade_is_refused(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("own", "10"))
    sim.prices(TUE, 9, 31, AAA="100.00")
    await sim.broker.submit(buy("bid", "1", type=OrderType.LIMIT, limit_price=D("90.00")))
    with pytest.raises(WashTradeError):
        await sim.broker.submit(sell("mkt", "1"))
    with pytest.raises(WashTradeError):
        await sim.broker.submit(sell("low", "1", type=OrderType.LIMIT, limit_price=D("89.00")))
    await sim.broker.submit(sell("high", "1", type=OrderType.LIMIT, limit_price=D("95.00")))  # cannot meet the bid


async def test_pattern_day_trader_protection(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    for n in range(3):
        await sim.broker.submit(buy(f"b{n}", "1"))
        sim.prices(TUE, 10, 2 * n, AAA="100.00")
        await sim.broker.submit(sell(f"s{n}", "1"))
        sim.prices(TUE, 10, 2 * n + 1, AAA="100.00")
    assert (await sim.broker.account()).day_trade_count == 3
    await sim.broker.submit(buy("b3", "1"))
    sim.prices(TUE, 11, AAA="100.00")
    with pytest.raises(PatternDayTraderError):
        await sim.broker.submit(sell("s3", "1"))  # a fourth day trade under 25,000 USD


async def test_pdt_protection_can_be_turned_off(cal: NyseCalendar) -> None:
    sim = Sim(cal, rules=ExchangeRules(pdt_protection=False))
    sim.close(MON, AAA=("100", "101", "99", "100"))
    sim.open(TUE, AAA="100.00")
    for n in range(4):
        await sim.broker.submit(buy(f"b{n}", "1"))
        sim.prices(TUE, 10, 2 * n, AAA="100.00")
        await sim.broker.submit(sell(f"s{n}", "1"))
        sim.prices(TUE, 10, 2 * n + 1, AAA="100.00")
    assert (await sim.broker.account()).day_trade_count == 4


async def test_day_trades_are_counted_over_five_sessions(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("b1", "1"))
    sim.prices(TUE, 10, AAA="100.00")
    await sim.broker.submit(sell("s1", "1"))
    sim.prices(TUE, 10, 1, AAA="100.00")
    await sim.broker.submit(buy("b2", "1"))
    sim.prices(TUE, 10, 2, AAA="100.00")
    assert (await sim.broker.account()).day_trade_count == 1
    sim.close(TUE, AAA=("100", "101", "99", "100"))
    sim.open(WED, AAA="100.00")
    await sim.broker.submit(sell("s2", "1"))  # opened yesterday: not a day trade
    sim.prices(WED, 10, AAA="100.00")
    assert (await sim.broker.account()).day_trade_count == 1
    for day in (WED, FRI, NEXT_MON, date(2024, 7, 9), date(2024, 7, 10)):
        sim.close(day, AAA=("100", "101", "99", "100"))
    assert (await sim.broker.account()).day_trade_count == 0  # Tuesday is more than 5 sessions ago


async def test_positions_report_what_is_available_and_no_opening_time(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("a", "10"))
    sim.prices(TUE, 9, 31, AAA="100.00")
    await sim.broker.submit(sell("part", "3", type=OrderType.LIMIT, limit_price=D("120.00")))
    (pos,) = await sim.broker.positions()
    assert (pos.qty, pos.qty_available, pos.opened_at, pos.stop_price) == (D("10"), D("7"), None, None)


async def test_last_equity_is_the_equity_at_the_previous_close(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("a", "10"))
    sim.prices(TUE, 9, 31, AAA="100.00")
    sim.close(TUE, AAA=("100", "101", "99", "104"))
    closing_equity = (await sim.broker.account()).equity
    sim.open(WED, AAA="90.00")
    account = await sim.broker.account()
    assert account.last_equity == closing_equity and account.equity == closing_equity - D("140.00")


async def test_deposits_and_withdrawals_are_recorded_and_not_profit(sim: Sim) -> None:
    sim.broker.deposit(D("500.00"))
    sim.broker.deposit(D("-200.00"), datetime(2024, 7, 1, 20, tzinfo=NY))
    assert sim.broker.cash == D("10300.00")
    assert sim.broker.portfolio.net_deposits == D("300.00")
    assert [m.amount for m in sim.broker.cash_movements] == [D("500.00"), D("-200.00")]
    with pytest.raises(InsufficientBuyingPowerError):
        sim.broker.deposit(D("-20000.00"))
    with pytest.raises(ValueError, match="whole cents"):
        sim.broker.deposit(D("0.001"))


async def test_replaying_fills_reproduces_cash_to_the_cent(cal: NyseCalendar) -> None:
    sim = Sim(cal, cash="650")
    sim.close(MON, AAA=("33.33", "34", "33", "33.71"), BBB=("7.77", "8", "7.5", "7.91"))
    sim.open(TUE, AAA="33.71", BBB="7.93")
    await sim.broker.submit(buy("1", "3.333333333"))
    await sim.broker.submit(buy("2", "17", "BBB", stop_price=D("7.41"), time_in_force=TimeInForce.GTC))
    sim.prices(TUE, 9, 31, AAA="33.71", BBB="7.93")
    sim.broker.deposit(D("123.45"))
    sim.close(TUE, AAA=("33.71", "35", "33", "34.87"), BBB=("7.93", "8.1", "7.8", "8.02"))
    sim.open(WED, AAA="35.13", BBB="7.61")
    await sim.broker.submit(sell("3", "1.111111111"))
    sim.prices(WED, 9, 31, AAA="35.13", BBB="7.61")
    sim.close(WED, AAA=("35.13", "36", "35", "35.5"), BBB=("7.61", "7.7", "7.2", "7.3"))  # stop hit
    sim.broker.deposit(D("-50.00"))
    sim.open(FRI, AAA="36.07", BBB="7.29")
    await sim.broker.submit(sell("4", "2.222222222"))
    sim.prices(FRI, 9, 31, AAA="36.07", BBB="7.29")
    fills = sim.broker.fills
    assert len(fills) == 5 and {f.reason for f in fills} >= {"protective stop"}
    replayed = (
        D("650") + sum((m.amount for m in sim.broker.cash_movements), D(0)) + sum((f.cash_delta for f in fills), D(0))
    )
    assert replayed == sim.broker.cash == (await sim.broker.account()).cash
    assert sim.broker.cash == sim.broker.cash.quantize(D("0.01"))
    assert await sim.broker.positions() == []
    assert (await sim.broker.account()).equity == sim.broker.cash


async def test_prices_fed_as_floats_are_refused(sim: Sim) -> None:
    with pytest.raises(TypeError, match="Decimal"):
        sim.broker.on_session_open(TUE, {"AAA": 100.0})  # type: ignore[dict-item]


async def test_time_comes_only_from_the_clock(cal: NyseCalendar) -> None:
    sim = Sim(cal)
    old = date(2010, 3, 2)
    sim.clock.reset(cal.session_open(old))
    sim.broker.on_session_open(old, {"AAA": D("20")})
    sim.at(old, 11)
    order = await sim.broker.submit(buy("old", "1"))
    assert order.submitted_at == datetime(2010, 3, 2, 11, tzinfo=NY)
    sim.prices(old, 11, 5, AAA="20")
    assert sim.broker.fills[0].at == datetime(2010, 3, 2, 11, 5, tzinfo=NY)


async def test_a_session_cannot_be_closed_twice_or_fed_out_of_order(sim: Sim) -> None:
    sim.close(TUE, AAA=("100", "101", "99", "100"))
    with pytest.raises(ValueError, match="already closed"):
        sim.broker.on_session_close(TUE, {"AAA": (D("100"), D("101"), D("99"), D("100"))})
    with pytest.raises(ValueError, match="not after the last session"):
        sim.broker.on_session_open(MON, {"AAA": D("100")})
    with pytest.raises(ValueError, match="not an NYSE trading day"):
        sim.broker.on_session_open(date(2024, 7, 4), {"AAA": D("100")})


# One random step: (kind, symbol, amount, flag, gtc); see `_trade` and `_random_session` for their meaning.
Action = tuple[str, str, int, bool, bool]
ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.sampled_from(["AAA", "WHOLE"]), st.integers(1, 40), st.booleans(), st.booleans()),
        st.tuples(
            st.just("sell"), st.sampled_from(["AAA", "WHOLE"]), st.integers(1, 100), st.booleans(), st.booleans()
        ),
        st.tuples(st.just("cancel"), st.just(""), st.integers(0, 30), st.booleans(), st.booleans()),
        st.tuples(st.just("deposit"), st.just(""), st.integers(-50_000, 50_000), st.booleans(), st.booleans()),
        st.tuples(st.just("tick"), st.just(""), st.integers(-300, 300), st.booleans(), st.booleans()),
        st.tuples(st.just("day"), st.just(""), st.integers(-900, 900), st.booleans(), st.booleans()),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_random_trading_keeps_cash_exact_and_never_negative(
    cal: NyseCalendar, actions: list[Action]
) -> None:
    asyncio.run(_random_session(cal, actions))


async def _random_session(cal: NyseCalendar, actions: list[Action]) -> None:
    sim = Sim(cal, cash="650", fractionable={"WHOLE": False})
    days = cal.sessions(date(2024, 7, 1), date(2024, 9, 30))
    prices = {"AAA": D("33.71"), "WHOLE": D("7.93")}
    sim.close(days[0], **{s: (str(p), str(p), str(p), str(p)) for s, p in prices.items()})
    i, minute = 1, 0
    sim.open(days[i], **{s: str(p) for s, p in prices.items()})
    for n, action in enumerate(actions):
        kind, amount = action[0], action[2]
        with contextlib.suppress(BrokerError):
            await _trade(sim, n, action, prices)
        if kind == "tick" and minute < 300:
            minute += 1
            prices = _moved(prices, amount)
            sim.prices(days[i], 9 + (30 + minute) // 60, (30 + minute) % 60, **{s: str(p) for s, p in prices.items()})
        if kind == "day" and i + 1 < len(days):
            old, prices = prices, _moved(prices, amount)
            sim.close(days[i], **_day_bars(old, prices))  # type: ignore[arg-type]
            i, minute = i + 1, 0
            sim.open(days[i], **{s: str(p) for s, p in prices.items()})
        await _check_books(sim.broker)


async def _trade(sim: Sim, n: int, action: Action, prices: dict[str, Decimal]) -> None:
    """Buy, sell, cancel or move cash as `action` says; market moves ("tick", "day") do nothing here."""
    kind, symbol, amount, flag, gtc = action
    if kind == "buy":
        qty = D(amount) / (D(7) if flag and symbol == "AAA" else D(1))
        stop = (prices[symbol] * D("0.95")).quantize(D("0.01"))
        tif = TimeInForce.GTC if gtc else TimeInForce.DAY
        await sim.broker.submit(buy(f"b{n}", str(qty.quantize(D("0.000000001"))), symbol, stop_price=stop,
                                    time_in_force=tif))
    elif kind == "sell":
        held = sim.broker.portfolio.qty(symbol)
        qty = (held * amount / 100).quantize(D("0.000000001") if symbol == "AAA" else D(1))
        if qty > 0:
            await sim.broker.submit(sell(f"s{n}", str(qty), symbol))
    elif kind == "cancel":
        open_now = await sim.broker.open_orders()
        if open_now:
            await sim.broker.cancel(open_now[amount % len(open_now)].broker_order_id)
    elif kind == "deposit" and amount:
        sim.broker.deposit(D(amount) / 100)


def _moved(prices: dict[str, Decimal], bps: int) -> dict[str, Decimal]:
    """Every price moved by `bps` basis points, in cents, never below one dollar."""
    return {s: max(D("1.00"), (p * (1 + D(bps) / 10_000)).quantize(D("0.01"))) for s, p in prices.items()}


def _day_bars(old: dict[str, Decimal], new: dict[str, Decimal]) -> dict[str, tuple[str, str, str, str]]:
    """Daily (open, high, low, close) bars of a day that opened at `old` and closed at `new`."""
    return {
        s: (str(old[s]), str(max(old[s], new[s]) + 1), str(min(old[s], new[s]) - D("0.5")), str(new[s]))
        for s in old
    }


async def _check_books(broker: InMemoryBroker) -> None:
    """Cash replays from the movements and fills and is never negative; holds and buying power stay within bounds."""
    replayed = D("650") + sum((m.amount for m in broker.cash_movements), D(0))
    replayed += sum((f.cash_delta for f in broker.fills), D(0))
    assert broker.cash == replayed >= 0
    for pos in await broker.positions():
        assert pos.qty > 0 and pos.opened_at is None
        assert pos.qty_available is not None and 0 <= pos.qty_available <= pos.qty
        view = broker.exchange.position(pos.symbol)
        assert view is not None and view.held_for_orders <= pos.qty  # never more held than owned
    account = await broker.account()
    assert account.equity == broker.cash + sum(
        (p.market_value(broker.last_prices[p.symbol]) for p in await broker.positions()), D(0)
    )
    assert 0 <= account.buying_power <= account.cash
