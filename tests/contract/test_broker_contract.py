"""One behaviour suite for the `Broker` port, run on the InMemoryBroker (driven by its driver methods) and on
AlpacaBroker talking to the Alpaca-wire emulator (driven by `advance_to`): both must keep Alpaca's rules.

The venue fixture hides the difference: `advance_to(at)` replays the same daily market on both (session opens,
a print of the day's open at every advance inside a session, session closes with the day's range).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pytest

from adapters.calendar import NyseCalendar
from adapters.inmemory.broker import InMemoryBroker
from adapters.inmemory.clock import SimClock
from adapters.inmemory.exchange import ExchangeRules
from adapters.inmemory.market_data import SyntheticMarket
from domain.errors import (
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
CAL = NyseCalendar()
D = Decimal
CENT = D("0.01")
MON, TUE, WED = date(2024, 2, 5), date(2024, 2, 6), date(2024, 2, 7)
MARKET = SyntheticMarket(seed=5, n_symbols=3, start=date(2023, 10, 2), end=date(2024, 3, 29), calendar=CAL,
                         fractionable={"S0002": False})
SYM, OTHER, WHOLE = "S0000", "S0001", "S0002"
KEY, SECRET = "PKCONTRACT1234567890", "contract-secret-0987654321"


def ny(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=NY)


def open_price(day: date, symbol: str = SYM) -> Decimal:
    return MARKET.opens_on(day)[symbol]


def below(px: Decimal, pct: str) -> Decimal:
    return (px * (1 - D(pct))).quantize(CENT)


class Venue(Protocol):
    broker: Broker

    def advance_to(self, at: datetime) -> None: ...

    def deposit(self, amount: Decimal, *, journal: bool = False) -> None: ...


class InMemoryVenue:
    """InMemoryBroker fed the way a backtest feeds it."""

    def __init__(self, start: datetime, cash: Decimal, rules: ExchangeRules | None) -> None:
        self._cursor = CAL.session_open(CAL.previous_session(start)) - timedelta(minutes=1)
        self.clock = SimClock(self._cursor)
        fractionable = {s: s != WHOLE for s in MARKET.symbols}
        self.broker = InMemoryBroker(cash, FeeSettings(), self.clock, CAL, fractionable, rules=rules)
        self.advance_to(start)

    def advance_to(self, at: datetime) -> None:
        for day in CAL.sessions(self._cursor.date() - timedelta(days=1), at.date() + timedelta(days=1)):
            opens, closes = CAL.session_open(day), CAL.session_close(day)
            if self._cursor < opens <= at:
                self.clock.set(opens)
                self.broker.on_session_open(day, MARKET.opens_on(day))
            if self._cursor < closes <= at:
                self.clock.set(closes)
                self.broker.on_session_close(day, MARKET.ohlc_on(day))
        self.clock.set(at)
        day = at.astimezone(NY).date()
        if CAL.is_open(at) and at > CAL.session_open(day):
            self.broker.on_prices(at, MARKET.opens_on(day))
        self._cursor = at

    def deposit(self, amount: Decimal, *, journal: bool = False) -> None:
        self.broker.deposit(amount, journal=journal)


class EmulatedVenue:
    """AlpacaBroker over HTTP to the emulator."""

    def __init__(self, emulator: Any, broker: Broker) -> None:
        self.emulator = emulator
        self.broker = broker

    def advance_to(self, at: datetime) -> None:
        self.emulator.advance_to(at)

    def deposit(self, amount: Decimal, *, journal: bool = False) -> None:
        self.emulator.deposit(amount, journal=journal)


@pytest.fixture(params=["inmemory", pytest.param("alpaca", marks=pytest.mark.integration)])
async def venue_factory(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """Builds a venue at `start` with `cash` (and rule overrides) on the parametrized implementation."""
    closers: list[Any] = []

    async def make(start: datetime = ny(MON, 9), cash: str = "10000", rules: ExchangeRules | None = None) -> Venue:
        if request.param == "inmemory":
            return InMemoryVenue(start, D(cash), rules)
        from adapters.alpaca import AlpacaBroker, AlpacaConfig
        from adapters.inmemory.alpaca_emulator import AlpacaEmulator

        emulator = AlpacaEmulator(MARKET, CAL, start, D(cash), FeeSettings(), rules, KEY, SECRET).start()
        config = AlpacaConfig(api_key=KEY, secret_key=SECRET, trading_url=emulator.url, data_url=emulator.url,
                              timeout=5.0, max_retries=0)

        async def no_sleep(_: float) -> None:
            return None

        broker = AlpacaBroker(config, sleep=no_sleep)
        closers.append((emulator, broker))
        return EmulatedVenue(emulator, broker)

    yield make
    for emulator, broker in closers:
        await broker.aclose()
        emulator.stop()


def buy(cid: str, qty: str = "10", symbol: str = SYM, **kw: Any) -> OrderRequest:
    return OrderRequest(cid, symbol, Side.BUY, D(qty), **kw)


def sell(cid: str, qty: str = "10", symbol: str = SYM, **kw: Any) -> OrderRequest:
    return OrderRequest(cid, symbol, Side.SELL, D(qty), **kw)


async def legs(broker: Broker, parent: Order) -> list[Order]:
    return [o for o in await broker.open_orders() if o.parent_id == parent.broker_order_id]


async def test_an_order_is_accepted_and_fills_only_at_the_next_price(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 10))
    order = await venue.broker.submit(buy("c1"))
    assert order.status in (OrderStatus.NEW, OrderStatus.ACCEPTED) and order.filled_qty == 0
    assert await venue.broker.positions() == [] and await venue.broker.fills_since(ny(MON, 0)) == []
    venue.advance_to(ny(MON, 10, 5))
    (fill,) = await venue.broker.fills_since(ny(MON, 0))
    assert (fill.client_order_id, fill.qty, fill.at) == ("c1", D(10), ny(MON, 10, 5))
    assert fill.price > open_price(MON)  # the print plus slippage
    filled = await venue.broker.get_order(order.broker_order_id)
    assert filled is not None and filled.status is OrderStatus.FILLED and filled.filled_avg_price == fill.price


async def test_an_order_sent_while_closed_waits_for_the_open(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 8))
    await venue.broker.submit(buy("early", "1"))
    venue.advance_to(ny(MON, 9, 29))
    assert await venue.broker.fills_since(ny(MON, 0)) == []
    venue.advance_to(ny(MON, 9, 30))
    (fill,) = await venue.broker.fills_since(ny(MON, 0))
    assert fill.at == CAL.session_open(MON)


async def test_day_legs_expire_at_the_close_and_gtc_legs_survive(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 8))
    day = await venue.broker.submit(buy("day", "1", stop_price=below(open_price(MON), "0.5")))
    gtc = await venue.broker.submit(buy("gtc", "1", OTHER, stop_price=below(open_price(MON, OTHER), "0.5"),
                                        time_in_force=TimeInForce.GTC))
    (day_leg,) = await legs(venue.broker, day)
    (gtc_leg,) = await legs(venue.broker, gtc)
    assert day_leg.request.time_in_force is TimeInForce.DAY and gtc_leg.request.time_in_force is TimeInForce.GTC
    venue.advance_to(ny(MON, 16, 1))
    assert (await venue.broker.get_order(day_leg.broker_order_id)).status is OrderStatus.EXPIRED  # type: ignore[union-attr]
    assert [o.broker_order_id for o in await venue.broker.open_orders()] == [gtc_leg.broker_order_id]


async def test_legs_have_their_own_ids_and_name_their_parent(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 10))
    px = open_price(MON)
    parent = await venue.broker.submit(buy("entry-1", stop_price=below(px, "0.2"), take_profit_price=(px * 2).quantize(
        CENT), time_in_force=TimeInForce.GTC))
    venue.advance_to(ny(MON, 10, 1))
    found = await legs(venue.broker, parent)
    assert {o.request.type for o in found} == {OrderType.LIMIT, OrderType.STOP}
    for leg in found:
        assert leg.is_leg and leg.broker_order_id != parent.broker_order_id
        assert "entry-1" not in leg.client_order_id and leg.request.side is Side.SELL
        again = await venue.broker.get_order(leg.broker_order_id)
        assert again is not None and again.parent_id == parent.broker_order_id
    assert (await venue.broker.get_by_client_id("entry-1")).broker_order_id == parent.broker_order_id  # type: ignore[union-attr]


async def test_shares_held_by_legs_cannot_be_sold_and_are_freed_by_a_cancel(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 10))
    stop_px = below(open_price(MON), "0.2")
    parent = await venue.broker.submit(buy("e", stop_price=stop_px, time_in_force=TimeInForce.GTC))
    venue.advance_to(ny(MON, 10, 1))
    (stop,) = await legs(venue.broker, parent)
    (position,) = await venue.broker.positions()
    assert (position.qty, position.qty_available, position.opened_at, position.stop_price) == (D(10), D(0), None, None)
    with pytest.raises(InsufficientQtyError) as refused:
        await venue.broker.submit(sell("exit"))
    assert (refused.value.available, refused.value.held_for_orders) == (D(0), D(10))
    assert refused.value.related_orders == (stop.broker_order_id,)
    await venue.broker.cancel(stop.broker_order_id)
    cancelled = await venue.broker.get_order(stop.broker_order_id)
    assert cancelled is not None and cancelled.status is OrderStatus.CANCELED
    assert (await venue.broker.positions())[0].qty_available == D(10)
    await venue.broker.submit(sell("exit"))


async def test_cancel_refusals(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 10))
    order = await venue.broker.submit(buy("c", "1"))
    venue.advance_to(ny(MON, 10, 1))
    with pytest.raises(OrderRejectedError):
        await venue.broker.cancel(order.broker_order_id)  # filled
    with pytest.raises(NotFoundError):
        await venue.broker.cancel("5b8a3a0e-0000-4000-8000-000000000000")


async def test_a_potential_wash_trade_is_refused(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 10))
    await venue.broker.submit(buy("own"))
    venue.advance_to(ny(MON, 10, 1))
    await venue.broker.submit(buy("bid", "1", type=OrderType.LIMIT, limit_price=below(open_price(MON), "0.1")))
    with pytest.raises(WashTradeError):
        await venue.broker.submit(sell("out", "1"))


async def test_buying_power_values_a_market_buy_at_the_collar(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 10), cash="1000")
    px = open_price(MON)
    fits = int(D(1000) / (px * D("1.05")))
    with pytest.raises(InsufficientBuyingPowerError):
        await venue.broker.submit(buy("too-many", str(int(D(1000) / px))))  # fits at the price, not at the collar
    await venue.broker.submit(buy("fits", str(fits)))
    account = await venue.broker.account()
    assert account.cash == D(1000) and account.buying_power < D(1000) - fits * px


async def test_fractional_orders(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 10))
    with pytest.raises(OrderRejectedError):
        await venue.broker.submit(buy("w", "1.5", WHOLE))
    order = await venue.broker.submit(buy("f", "1.5", stop_price=below(open_price(MON), "0.2"),
                                          time_in_force=TimeInForce.GTC))
    assert order.request.time_in_force is TimeInForce.DAY and await legs(venue.broker, order) == []
    venue.advance_to(ny(MON, 10, 1))
    (position,) = await venue.broker.positions()
    assert position.qty == D("1.5") and position.fractional


async def test_a_reused_client_order_id_returns_the_existing_order(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 10))
    first = await venue.broker.submit(buy("same", "2"))
    again = await venue.broker.submit(buy("same", "2"))
    assert again.broker_order_id == first.broker_order_id
    assert len(await venue.broker.open_orders()) == 1


async def test_pattern_day_trader_protection(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 10))
    for n in range(3):
        await venue.broker.submit(buy(f"b{n}", "1"))
        venue.advance_to(ny(MON, 10, 2 * n + 1))
        await venue.broker.submit(sell(f"s{n}", "1"))
        venue.advance_to(ny(MON, 10, 2 * n + 2))
    assert (await venue.broker.account()).day_trade_count == 3
    await venue.broker.submit(buy("b3", "1"))
    venue.advance_to(ny(MON, 11))
    with pytest.raises(PatternDayTraderError):
        await venue.broker.submit(sell("s3", "1"))


async def test_a_stop_leg_fills_on_the_days_range_and_shows_in_fills(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 10))
    low = MARKET.ohlc_on(TUE)[SYM][2]
    stop_px = (low * D("1.001")).quantize(CENT, rounding="ROUND_UP")
    if stop_px >= open_price(TUE) or stop_px >= open_price(MON):
        pytest.skip("the synthetic day does not trade below its open")
    parent = await venue.broker.submit(buy("e", stop_price=stop_px, time_in_force=TimeInForce.GTC))
    venue.advance_to(ny(MON, 10, 1))
    (stop,) = await legs(venue.broker, parent)
    venue.advance_to(ny(TUE, 16, 1))
    fills = await venue.broker.fills_since(ny(TUE, 0))
    assert [(f.client_order_id, f.side, f.at) for f in fills] == [(stop.client_order_id, Side.SELL,
                                                                   CAL.session_close(TUE))]
    assert fills[0].price < stop_px and fills[0].reason == "protective stop"
    assert await venue.broker.positions() == []


async def test_last_equity_is_the_equity_at_the_previous_close(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 10))
    await venue.broker.submit(buy("a"))
    venue.advance_to(ny(MON, 16, 1))
    at_close = (await venue.broker.account()).equity
    venue.advance_to(ny(TUE, 10))
    account = await venue.broker.account()
    assert account.last_equity == at_close
    assert account.equity == account.cash + 10 * open_price(TUE)


async def test_deposits_withdrawals_and_journals_are_cash_transfers(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 10))
    venue.deposit(D("500"))
    venue.advance_to(ny(MON, 11))
    venue.deposit(D("-200"))
    venue.advance_to(ny(TUE, 10))
    venue.deposit(D("50.25"), journal=True)

    transfers = await venue.broker.cash_transfers_since(ny(MON, 0))

    assert [(t.kind, t.amount, t.at) for t in transfers] == [
        ("CSD", D(500), ny(MON, 10)), ("CSW", D(-200), ny(MON, 11)), ("JNLC", D("50.25"), ny(TUE, 10))]
    assert len({t.id for t in transfers}) == 3
    assert [t.kind for t in await venue.broker.cash_transfers_since(ny(MON, 10, 30))] == ["CSW", "JNLC"]
    assert (await venue.broker.account()).cash == D("10350.25")
    assert await venue.broker.fills_since(ny(MON, 0)) == []


async def test_a_withdrawal_beyond_the_free_cash_is_refused(venue_factory: Any) -> None:
    venue = await venue_factory(ny(MON, 10))
    with pytest.raises(InsufficientBuyingPowerError):
        venue.deposit(D("-10000.01"))
    assert await venue.broker.cash_transfers_since(ny(MON, 0)) == []
