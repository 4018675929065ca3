"""Cash dividends in the simulated venues: read from a Dividends column or derived from Adj Close, credited at the
ex-date's open to the shares held at the previous close, by the one replay driver the in-memory venue and the
emulator share."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from adapters.calendar import NyseCalendar
from adapters.inmemory.broker import InMemoryBroker
from adapters.inmemory.clock import SimClock
from adapters.inmemory.csv_bars import load_bars
from adapters.inmemory.dividends import DIVIDEND_NOISE, DividendSchedule, dividends_from_adjusted
from adapters.inmemory.exchange import CashActivity, Exchange, OrderSpec
from adapters.inmemory.market_data import DailyBarMarketData
from adapters.inmemory.venue import InMemoryVenue
from application.dividends import DividendVenue
from domain.models.market import BarSeries
from domain.models.trading import OrderRequest, Side
from domain.money import money
from domain.risk.config import FeeSettings

D = Decimal
CAL = NyseCalendar()
MON, TUE, WED = date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3)
REPO = Path(__file__).resolve().parents[2]
NO_COSTS = FeeSettings(slippage_bps=D(0), sec_fee_per_million=D(0), taf_per_share=D(0))


def test_a_known_dividend_is_recovered_from_the_adjusted_close() -> None:
    close = np.array([100.0, 99.0, 99.5])
    # a 0.50 dividend going ex on the second day: earlier closes are adjusted by 1 - 0.50 / 100
    adjusted = np.array([100.0 * (1 - 0.5 / 100), 99.0, 99.5])
    assert dividends_from_adjusted([MON, TUE, WED], close, adjusted) == {TUE: D("0.5000")}


def test_rounding_noise_of_the_adjusted_close_is_not_a_dividend() -> None:
    rng = np.random.default_rng(1)
    close = 50 + rng.random(300)
    adjusted = np.round(close * 0.97, 6)  # constant ratio, only the 6-decimal rounding moves it
    days = CAL.sessions(date(2023, 1, 3), date(2024, 6, 1))[:300]
    ratio = adjusted / close
    assert np.abs(1 - ratio[:-1] / ratio[1:]).max() < DIVIDEND_NOISE
    assert dividends_from_adjusted(days, close, adjusted) == {}


def test_spy_dividends_of_2016_come_out_of_the_shipped_context_data() -> None:
    loaded = load_bars([REPO / "data" / "daily" / "context"], trading_days=CAL.sessions)
    spy = {d: v for d, v in loaded.dividends.of("SPY").items() if d.year == 2016}
    paid = {date(2016, 3, 18): D("1.0496"), date(2016, 6, 17): D("1.0785"), date(2016, 9, 16): D("1.0824"),
            date(2016, 12, 16): D("1.3250")}  # SPDR's published distributions
    assert spy.keys() == paid.keys()
    assert all(abs(spy[d] - paid[d]) < D("0.005") for d in paid)
    assert {"SPY", "XLK", "VIX"} <= loaded.dividends.known and loaded.dividends.of("VIX") == {}


def test_the_loader_knows_dividends_only_where_every_row_has_an_adjusted_close(tmp_path: Path) -> None:
    (tmp_path / "AAA.csv").write_text("Date,Open,High,Low,Close,Adj Close,Volume\n"
                                      "2024-07-01,10,11,9,10,9.9,100\n2024-07-02,10,11,9,10,10,100\n")
    (tmp_path / "BBB.csv").write_text("Date,Open,High,Low,Close,Adj Close,Volume\n"
                                      "2024-07-01,10,11,9,10,null,100\n2024-07-02,10,11,9,10,10,100\n")
    (tmp_path / "CCC_data.csv").write_text("date,open,high,low,close,volume,Name\n2024-07-01,10,11,9,10,100,CCC\n")
    loaded = load_bars([tmp_path])
    assert loaded.dividends.known == {"AAA"}
    assert loaded.dividends.of("AAA") == {TUE: D("0.1000")}
    assert loaded.daily["AAA"].close.tolist() == [10.0, 10.0], "Adj Close is never a price"
    assert loaded.daily["BBB"].close.tolist() == [10.0, 10.0], "a blank Adj Close does not drop the row"


def test_a_dividends_column_gives_the_dividends_and_wins_over_the_adjusted_close(tmp_path: Path) -> None:
    (tmp_path / "AAA.csv").write_text("Date,Open,High,Low,Close,Adj Close,Volume,Dividends,Stock Splits\n"
                                      "2024-07-01,10,11,9,10,9.9,100,0,0\n2024-07-02,10,11,9,10,10,100,0.25,0\n"
                                      "2024-07-03,10,11,9,10,10,100,0.0,0\n")
    (tmp_path / "BBB.csv").write_text("Date,Open,High,Low,Close,Volume,Dividends\n"
                                      "2024-07-01,10,11,9,10,100,0\n2024-07-02,10,11,9,10,100,\n")
    loaded = load_bars([tmp_path])
    assert loaded.dividends.known == {"AAA"}, "a blank dividend is not 'none paid'"
    assert loaded.dividends.of("AAA") == {TUE: D("0.2500")}
    assert len(loaded.daily["BBB"]) == 2, "a blank dividend does not drop the row"


def exchange() -> tuple[Exchange, SimClock]:
    clock = SimClock(CAL.session_open(MON))
    ex = Exchange(D(1000), NO_COSTS, clock, CAL, id_seed=1)
    ex.open_session(MON, {"AAA": D(40), "BBB": D(10)})
    ex.submit(OrderSpec("AAA", Side.BUY, qty=D("2.5")))
    ex.price_update(CAL.session_open(MON) + timedelta(minutes=1), {"AAA": D(40)})
    ex.close_session(MON, {"AAA": D(40), "BBB": D(10)})
    return ex, clock


def test_a_dividend_credits_exactly_qty_times_the_amount_as_a_div_activity() -> None:
    ex, _ = exchange()
    cash = ex.ledger.cash
    (paid,) = ex.pay_dividends(TUE, {"AAA": D("0.3333"), "BBB": D("1.00")})  # BBB is not held: nothing
    assert ex.ledger.cash - cash == money(D("2.5") * D("0.3333")) == D("0.83")
    assert (paid.activity_type, paid.symbol, paid.qty, paid.per_share_amount, paid.net_amount) == (
        "DIV", "AAA", D("2.5"), D("0.3333"), D("0.83"))
    assert paid.at == CAL.session_open(TUE) and ex.activities()[-1] == paid
    assert ex.account().equity == cash + D("0.83") + D(100)


def test_dividends_come_before_the_session_opens_and_amounts_are_decimals() -> None:
    ex, _ = exchange()
    ex.open_session(TUE, {"AAA": D(40)})
    with pytest.raises(ValueError, match="before its session opens"):
        ex.pay_dividends(TUE, {"AAA": D("0.1")})
    with pytest.raises(TypeError):
        ex.pay_dividends(WED, {"AAA": 0.1})  # type: ignore[dict-item]


def _venue(known: set[str]) -> tuple[InMemoryVenue, InMemoryBroker]:
    days = CAL.sessions(MON, date(2024, 7, 9))
    n = len(days)
    flat = np.full(n, 40.0)
    market = DailyBarMarketData({"AAA": BarSeries("AAA", tuple(days), flat, flat + 1, flat - 1, flat, np.full(n, 1e6))},
                                CAL, dividends=DividendSchedule({"AAA": {WED: D("0.25")}}, known))
    clock = SimClock(CAL.session_open(MON) - timedelta(minutes=1))
    broker = InMemoryBroker(D(1000), NO_COSTS, clock, CAL)
    return InMemoryVenue(broker, market, CAL, clock), broker


async def _hold_three(venue: InMemoryVenue, broker: InMemoryBroker) -> None:
    venue.advance_to(CAL.session_open(MON))
    await broker.submit(OrderRequest(client_order_id="buy-1", symbol="AAA", side=Side.BUY, qty=D(3)))
    venue.advance_to(CAL.session_open(MON) + timedelta(minutes=1))


def test_the_venue_credits_the_shares_held_at_the_previous_close_on_the_ex_date() -> None:
    venue, broker = _venue({"AAA"})
    assert isinstance(venue, DividendVenue) and venue.dividend_symbols() == {"AAA"}
    asyncio.run(_hold_three(venue, broker))
    cash = broker.cash
    venue.advance_to(CAL.session_close(TUE))
    assert broker.cash == cash, "no dividend before the ex-date"
    venue.advance_to(CAL.session_open(WED))
    assert broker.cash - cash == D("0.75")
    (payment,) = venue.dividend_payments()
    assert (payment.symbol, payment.qty, payment.per_share, payment.amount) == ("AAA", D(3), D("0.25"), D("0.75"))
    assert payment.at == CAL.session_open(WED)


def test_a_venue_told_not_to_count_dividends_credits_none() -> None:
    venue, broker = _venue({"AAA"})
    venue.credit_dividends(False)
    asyncio.run(_hold_three(venue, broker))
    cash = broker.cash
    venue.advance_to(CAL.session_close(WED))
    assert broker.cash == cash and venue.dividend_payments() == []
    assert [a for a in broker.exchange.activities() if isinstance(a, CashActivity)] == []
