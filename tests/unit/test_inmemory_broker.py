"""InMemoryBroker: fills at the open with slippage and fees, queued orders, idempotency, rejections that change
nothing, protective stops and take-profits, deposits, and cash that replays exactly from the fills."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.calendar import NyseCalendar
from adapters.inmemory.broker import InMemoryBroker
from adapters.inmemory.clock import SimClock
from domain.errors import InsufficientBuyingPowerError, NotFoundError, OrderRejectedError
from domain.models.trading import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
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

    def close(self, day: date, **bars: tuple[str, str, str, str]) -> None:
        self.clock.set(max(self.clock.now(), self.cal.session_close(day)))
        self.broker.on_session_close(day, {s: tuple(D(x) for x in b) for s, b in bars.items()})  # type: ignore[misc]

    def at(self, day: date, hh: int, mm: int = 0) -> None:
        self.clock.set(datetime(day.year, day.month, day.day, hh, mm, tzinfo=NY))


def buy(cid: str, qty: str, symbol: str = "AAA", **kw: object) -> OrderRequest:
    return OrderRequest(cid, symbol, Side.BUY, D(qty), **kw)  # type: ignore[arg-type]


def sell(cid: str, qty: str, symbol: str = "AAA", **kw: object) -> OrderRequest:
    return OrderRequest(cid, symbol, Side.SELL, D(qty), **kw)  # type: ignore[arg-type]


@pytest.fixture
def sim(cal: NyseCalendar) -> Sim:
    s = Sim(cal, fractionable={"WHOLE": False})
    s.close(MON, AAA=("100", "101", "99", "100"), WHOLE=("50", "51", "49", "50"))
    return s


async def test_is_a_paper_broker(sim: Sim) -> None:
    assert isinstance(sim.broker, Broker)
    assert sim.broker.is_paper


async def test_market_buy_during_session_fills_at_open_plus_slippage(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    sim.at(TUE, 10, 15)
    order = await sim.broker.submit(buy("c1", "10"))
    assert order.status is OrderStatus.FILLED
    assert order.filled_avg_price == D("100.0500")  # 100 * (1 + 5 bps)
    (fill,) = await sim.broker.fills_since(sim.cal.session_open(TUE))
    assert (fill.price, fill.fee, fill.qty) == (D("100.0500"), D("0.00"), D("10"))
    assert fill.at == datetime(2024, 7, 2, 10, 15, tzinfo=NY)
    account = await sim.broker.account()
    assert account.cash == D("8999.50")
    assert account.equity == D("8999.50") + D("1000.00")  # marked at the last known price, the open


async def test_sell_pays_slippage_sec_fee_and_taf(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("c1", "10"))
    sim.close(TUE, AAA=("100", "111", "99", "110"))
    sim.open(WED, AAA="110.00")
    order = await sim.broker.submit(sell("c2", "10"))
    assert order.filled_avg_price == D("109.9450")
    # SEC: 1099.45 * 27.80 / 1e6 = 0.0306 -> 0.04 (rounded up); TAF: 10 * 0.000166 -> 0.01
    fill = (await sim.broker.fills_since(sim.cal.session_open(WED)))[0]
    assert fill.fee == D("0.05")
    assert sim.broker.cash == D("10000") - D("1000.50") + D("1099.45") - D("0.05")
    assert await sim.broker.positions() == []


async def test_order_sent_while_closed_waits_for_the_next_open(sim: Sim) -> None:
    sim.at(MON, 18)
    order = await sim.broker.submit(buy("c1", "10"))
    assert order.status is OrderStatus.ACCEPTED
    assert [o.client_order_id for o in await sim.broker.open_orders()] == ["c1"]
    assert sim.broker.cash == D("10000")
    sim.open(TUE, AAA="102.00")
    filled = await sim.broker.get_by_client_id("c1")
    assert filled is not None and filled.status is OrderStatus.FILLED
    assert filled.filled_avg_price == D("102.0510")
    (fill,) = sim.broker.fills
    assert fill.at == sim.cal.session_open(TUE)
    assert await sim.broker.open_orders() == []


async def test_order_before_the_open_is_fed_fills_when_it_is(sim: Sim) -> None:
    sim.at(TUE, 9, 45)  # session open, but the driver has not fed today's open yet
    assert (await sim.broker.submit(buy("c1", "1"))).status is OrderStatus.ACCEPTED
    sim.broker.on_session_open(TUE, {"AAA": D("101")})
    assert (await sim.broker.get_by_client_id("c1")).status is OrderStatus.FILLED  # type: ignore[union-attr]


async def test_submit_is_idempotent_on_client_order_id(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    first = await sim.broker.submit(buy("same", "10"))
    again = await sim.broker.submit(buy("same", "10"))
    assert again == first
    assert len(sim.broker.fills) == 1
    assert sim.broker.cash == D("8999.50")
    sim.at(TUE, 18)
    queued = await sim.broker.submit(buy("q", "1"))
    assert await sim.broker.submit(buy("q", "1")) == queued
    assert len(await sim.broker.open_orders()) == 1


async def test_insufficient_buying_power_changes_nothing(cal: NyseCalendar) -> None:
    sim = Sim(cal, cash="1000")
    sim.close(MON, AAA=("100", "101", "99", "100"))
    sim.open(TUE, AAA="100.00")
    before = (await sim.broker.account(), await sim.broker.positions(), sim.broker.fills)
    with pytest.raises(InsufficientBuyingPowerError):
        await sim.broker.submit(buy("big", "10"))  # 10 * 100.05 > 1000
    assert (await sim.broker.account(), await sim.broker.positions(), sim.broker.fills) == before
    assert await sim.broker.get_by_client_id("big") is None
    assert (await sim.broker.submit(buy("ok", "9"))).status is OrderStatus.FILLED


async def test_queued_buys_reserve_buying_power(cal: NyseCalendar) -> None:
    sim = Sim(cal, cash="1000")
    sim.close(MON, AAA=("100", "101", "99", "100"))
    sim.at(MON, 18)
    await sim.broker.submit(buy("a", "6"))
    assert (await sim.broker.account()).buying_power == D("1000") - D("600.30")
    with pytest.raises(InsufficientBuyingPowerError):
        await sim.broker.submit(buy("b", "4"))
    sim.open(TUE, AAA="100.00")
    account = await sim.broker.account()
    assert account.buying_power == account.cash == D("399.70")


async def test_fractional_qty_of_a_non_fractionable_symbol_is_rejected(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00", WHOLE="50.00")
    with pytest.raises(OrderRejectedError, match="not fractionable"):
        await sim.broker.submit(buy("f", "1.5", "WHOLE"))
    assert await sim.broker.get_by_client_id("f") is None
    assert sim.broker.fills == [] and sim.broker.cash == D("10000")
    order = await sim.broker.submit(buy("g", "1.5"))  # AAA is fractionable by default
    assert order.status is OrderStatus.FILLED and order.filled_qty == D("1.5")


async def test_other_rejections(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    with pytest.raises(OrderRejectedError, match="unknown symbol"):
        await sim.broker.submit(buy("u", "1", "ZZZ"))
    with pytest.raises(OrderRejectedError, match="insufficient qty"):
        await sim.broker.submit(sell("s", "1"))
    with pytest.raises(OrderRejectedError, match="sub-penny"):
        await sim.broker.submit(buy("p", "1", stop_price=D("95.123")))
    with pytest.raises(OrderRejectedError, match="below the entry"):
        await sim.broker.submit(buy("x", "1", stop_price=D("101")))
    with pytest.raises(OrderRejectedError, match="DAY"):
        await sim.broker.submit(buy("g", "0.5", time_in_force=TimeInForce.GTC))
    assert sim.broker.all_orders() == [] and sim.broker.cash == D("10000")


async def test_short_selling_only_when_allowed(cal: NyseCalendar) -> None:
    sim = Sim(cal, allow_short=True)
    sim.close(MON, AAA=("100", "101", "99", "100"))
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(sell("short", "5"))
    (pos,) = await sim.broker.positions()
    assert pos.qty == D("-5")
    with pytest.raises(OrderRejectedError, match="fractional short"):
        await sim.broker.submit(sell("frac", "0.5"))


async def test_protective_stop_leg_triggers_at_the_stop(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("e", "10", stop_price=D("95.00")))
    (leg,) = await sim.broker.open_orders()
    assert (leg.request.side, leg.request.type, leg.request.time_in_force) == (
        Side.SELL,
        OrderType.STOP,
        TimeInForce.GTC,
    )
    assert (leg.request.qty, leg.request.stop_price) == (D("10"), D("95.00"))
    assert (await sim.broker.positions())[0].stop_price == D("95.00")
    sim.close(TUE, AAA=("100", "101", "96", "97"))  # low above the stop: nothing happens
    assert len(await sim.broker.open_orders()) == 1
    sim.open(WED, AAA="97.00")
    sim.close(WED, AAA=("97", "98", "93", "94"))
    stop_fill = sim.broker.fills[-1]
    assert stop_fill.price == D("94.9525")  # 95 less 5 bps
    assert stop_fill.at == sim.cal.session_close(WED)
    assert await sim.broker.positions() == [] and await sim.broker.open_orders() == []


async def test_gap_below_the_stop_fills_at_the_open(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("e", "10", stop_price=D("95.00")))
    sim.close(TUE, AAA=("100", "101", "96", "97"))
    sim.close(WED, AAA=("90", "92", "88", "91"))  # the driver may feed only the close
    assert sim.broker.fills[-1].price == D("89.9550")  # the open less 5 bps, not the stop
    assert await sim.broker.positions() == []


async def test_fractional_entries_get_no_broker_stop(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("frac", "2.5", stop_price=D("95.00")))
    assert await sim.broker.open_orders() == []
    (pos,) = await sim.broker.positions()
    assert pos.fractional and pos.stop_price is None
    sim.close(TUE, AAA=("100", "101", "80", "85"))
    assert (await sim.broker.positions())[0].qty == D("2.5")


async def test_take_profit_and_stop_are_one_cancels_other(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("e", "10", stop_price=D("95.00"), take_profit_price=D("110.00")))
    assert len(await sim.broker.open_orders()) == 2
    sim.close(TUE, AAA=("100", "111", "99", "110"))
    assert sim.broker.fills[-1].price == D("110.00")  # the limit, not less
    assert await sim.broker.open_orders() == [] and await sim.broker.positions() == []
    statuses = {o.client_order_id: o.status for o in sim.broker.all_orders()}
    assert statuses == {"e": OrderStatus.FILLED, "e-tp": OrderStatus.FILLED, "e-sl": OrderStatus.CANCELED}


async def test_when_both_legs_are_touched_the_stop_is_assumed(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("e", "10", stop_price=D("95.00"), take_profit_price=D("110.00")))
    sim.close(TUE, AAA=("100", "111", "94", "100"))
    assert sim.broker.fills[-1].client_order_id == "e-sl"


async def test_closing_the_position_cancels_its_stop(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("e", "10", stop_price=D("95.00")))
    await sim.broker.submit(sell("half", "4"))
    (leg,) = await sim.broker.open_orders()
    assert leg.request.qty == D("6")  # the stop never sells more than is held
    await sim.broker.submit(sell("rest", "6"))
    assert await sim.broker.open_orders() == []
    assert (await sim.broker.get_by_client_id("e-sl")).status is OrderStatus.CANCELED  # type: ignore[union-attr]


async def test_limit_orders_and_day_expiry(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    low = await sim.broker.submit(buy("low", "1", type=OrderType.LIMIT, limit_price=D("98.00")))
    never = await sim.broker.submit(buy("never", "1", type=OrderType.LIMIT, limit_price=D("90.00")))
    assert low.status is never.status is OrderStatus.ACCEPTED
    sim.close(TUE, AAA=("100", "101", "97", "99"))
    assert (await sim.broker.get_by_client_id("low")).filled_avg_price == D("98.00")  # type: ignore[union-attr]
    assert (await sim.broker.get_by_client_id("never")).status is OrderStatus.EXPIRED  # type: ignore[union-attr]


async def test_cancel(sim: Sim) -> None:
    sim.at(MON, 18)
    order = await sim.broker.submit(buy("q", "1"))
    await sim.broker.cancel(order.broker_order_id)
    sim.open(TUE, AAA="100.00")
    assert (await sim.broker.get_by_client_id("q")).status is OrderStatus.CANCELED  # type: ignore[union-attr]
    assert sim.broker.fills == []
    with pytest.raises(OrderRejectedError):
        await sim.broker.cancel(order.broker_order_id)
    with pytest.raises(NotFoundError):
        await sim.broker.cancel("nope")


async def test_day_trades_are_counted_over_five_sessions(sim: Sim) -> None:
    sim.open(TUE, AAA="100.00")
    await sim.broker.submit(buy("b1", "1"))
    await sim.broker.submit(sell("s1", "1"))
    await sim.broker.submit(buy("b2", "1"))
    assert (await sim.broker.account()).day_trade_count == 1
    sim.close(TUE, AAA=("100", "101", "99", "100"))
    sim.open(WED, AAA="100.00")
    await sim.broker.submit(sell("s2", "1"))  # opened yesterday: not a day trade
    assert (await sim.broker.account()).day_trade_count == 1
    for day in (WED, FRI, NEXT_MON, date(2024, 7, 9), date(2024, 7, 10)):
        sim.close(day, AAA=("100", "101", "99", "100"))
    assert (await sim.broker.account()).day_trade_count == 0  # Tuesday is more than 5 sessions ago


async def test_deposits_and_withdrawals_are_recorded_and_not_profit(sim: Sim) -> None:
    sim.broker.deposit(D("500.00"))
    sim.broker.deposit(D("-200.00"), datetime(2024, 7, 1, 20, tzinfo=NY))
    assert sim.broker.cash == D("10300.00")
    assert sim.broker.portfolio.net_deposits == D("300.00")
    assert [m.amount for m in sim.broker.cash_movements] == [D("500.00"), D("-200.00")]
    with pytest.raises(InsufficientBuyingPowerError):
        sim.broker.deposit(D("-20000.00"))
    with pytest.raises(ValueError):
        sim.broker.deposit(D("0.001"))


async def test_replaying_fills_reproduces_cash_to_the_cent(cal: NyseCalendar) -> None:
    sim = Sim(cal, cash="650")
    sim.close(MON, AAA=("33.33", "34", "33", "33.71"), BBB=("7.77", "8", "7.5", "7.91"))
    sim.open(TUE, AAA="33.71", BBB="7.93")
    await sim.broker.submit(buy("1", "3.333333333"))
    await sim.broker.submit(buy("2", "17", "BBB", stop_price=D("7.41")))
    sim.broker.deposit(D("123.45"))
    sim.close(TUE, AAA=("33.71", "35", "33", "34.87"), BBB=("7.93", "8.1", "7.8", "8.02"))
    sim.open(WED, AAA="35.13", BBB="7.61")
    await sim.broker.submit(sell("3", "1.111111111"))
    sim.close(WED, AAA=("35.13", "36", "35", "35.5"), BBB=("7.61", "7.7", "7.2", "7.3"))  # stop hit
    sim.broker.deposit(D("-50.00"))
    sim.open(FRI, AAA="36.07", BBB="7.29")
    await sim.broker.submit(sell("4", "2.222222222"))
    fills = sim.broker.fills
    assert {f.client_order_id for f in fills} == {"1", "2", "2-sl", "3", "4"}
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
    assert sim.broker.fills[0].at == datetime(2010, 3, 2, 11, tzinfo=NY)


async def test_a_session_cannot_be_closed_twice_or_fed_out_of_order(sim: Sim) -> None:
    sim.close(TUE, AAA=("100", "101", "99", "100"))
    with pytest.raises(ValueError, match="already closed"):
        sim.broker.on_session_close(TUE, {"AAA": (D("100"), D("101"), D("99"), D("100"))})
    with pytest.raises(ValueError, match="before the last session"):
        sim.broker.on_session_open(MON, {"AAA": D("100")})
    with pytest.raises(ValueError, match="not an NYSE trading day"):
        sim.broker.on_session_open(date(2024, 7, 4), {"AAA": D("100")})


ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.sampled_from(["AAA", "WHOLE"]), st.integers(1, 40), st.booleans(), st.booleans()),
        st.tuples(
            st.just("sell"), st.sampled_from(["AAA", "WHOLE"]), st.integers(1, 100), st.booleans(), st.booleans()
        ),
        st.tuples(st.just("deposit"), st.just(""), st.integers(-50_000, 50_000), st.booleans(), st.booleans()),
        st.tuples(st.just("day"), st.just(""), st.integers(-900, 900), st.booleans(), st.booleans()),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_random_trading_keeps_cash_exact_and_never_negative(
    cal: NyseCalendar, actions: list[tuple[str, str, int, bool, bool]]
) -> None:
    asyncio.run(_random_session(cal, actions))


async def _random_session(cal: NyseCalendar, actions: list[tuple[str, str, int, bool, bool]]) -> None:
    sim = Sim(cal, cash="650", fractionable={"WHOLE": False})
    days = cal.sessions(date(2024, 7, 1), date(2024, 9, 30))
    prices = {"AAA": D("33.71"), "WHOLE": D("7.93")}
    sim.close(days[0], **{s: (str(p), str(p), str(p), str(p)) for s, p in prices.items()})
    i = 1
    sim.open(days[i], **{s: str(p) for s, p in prices.items()})
    for n, (kind, symbol, amount, flag, after_hours) in enumerate(actions):
        if after_hours:
            sim.clock.set(max(sim.clock.now(), sim.cal.session_close(days[i])))
        try:
            if kind == "buy":
                qty = D(amount) / (D(7) if flag and symbol == "AAA" else D(1))
                stop = (prices[symbol] * D("0.95")).quantize(D("0.01"))
                await sim.broker.submit(buy(f"b{n}", str(qty.quantize(D("0.000000001"))), symbol, stop_price=stop))
            elif kind == "sell":
                held = sim.broker.portfolio.qty(symbol)
                qty = (held * amount / 100).quantize(D("0.000000001") if symbol == "AAA" else D(1))
                if qty > 0:
                    await sim.broker.submit(sell(f"s{n}", str(qty), symbol))
            elif kind == "deposit" and amount:
                sim.broker.deposit(D(amount) / 100)
        except (InsufficientBuyingPowerError, OrderRejectedError):
            pass
        if kind == "day" and i + 1 < len(days):
            old = dict(prices)
            prices = {s: max(D("1.00"), (p * (1 + D(amount) / 10_000)).quantize(D("0.01"))) for s, p in old.items()}
            bars = {
                s: (
                    str(old[s]),
                    str(max(old[s], prices[s]) + 1),
                    str(min(old[s], prices[s]) - D("0.5")),
                    str(prices[s]),
                )
                for s in old
            }
            sim.close(days[i], **bars)  # type: ignore[arg-type]
            i += 1
            sim.open(days[i], **{s: str(p) for s, p in prices.items()})
        broker = sim.broker
        replayed = D("650") + sum((m.amount for m in broker.cash_movements), D(0))
        replayed += sum((f.cash_delta for f in broker.fills), D(0))
        assert broker.cash == replayed >= 0
        for pos in await broker.positions():
            assert pos.qty > 0
            legs = [
                o for o in await broker.open_orders() if o.symbol == pos.symbol and o.request.type is OrderType.STOP
            ]
            assert sum((o.request.qty for o in legs), D(0)) <= pos.qty
        account = await broker.account()
        assert account.equity == broker.cash + sum(
            (p.market_value(broker.last_prices[p.symbol]) for p in await broker.positions()), D(0)
        )
        assert 0 <= account.buying_power <= account.cash
