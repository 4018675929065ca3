"""A backtest counts dividends for Quorum and its benchmarks alike, or for nobody, and its cash still replays to
the cent from the fills and the dividends; the Alpaca-wire emulator credits them as the in-memory venue does and
lists them as DIV account activities, as Alpaca does."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
from alpaca.trading.models import NonTradeActivity

from adapters.calendar.nyse import SystemClock
from adapters.inmemory.alpaca_emulator import AlpacaEmulator
from adapters.inmemory.broker import InMemoryBroker
from adapters.inmemory.clock import SimClock
from adapters.inmemory.dividends import DividendSchedule
from adapters.inmemory.market_data import DailyBarMarketData, SyntheticMarket
from adapters.inmemory.venue import InMemoryVenue
from application.dividends import DividendPayment
from domain.models.market import BarSeries
from domain.models.trading import OrderRequest, Side
from domain.money import money, price
from domain.risk.config import FeeSettings
from entrypoints.wiring.venue import listed_history
from tests.support.world import CALENDAR, make_world

START, END = date(2024, 3, 1), date(2024, 4, 30)
BASE = SyntheticMarket(seed=3, n_symbols=8, start=date(2023, 1, 3), end=END, calendar=CALENDAR)


def _schedule() -> dict[str, dict[date, Decimal]]:
    """A 0.5% dividend every fifth session of the run, for every symbol."""
    out: dict[str, dict[date, Decimal]] = {}
    sessions = CALENDAR.sessions(START, END)
    for symbol in BASE.symbols:
        s = BASE.series(symbol)
        assert s is not None
        out[symbol] = {}
        for day in sessions[2::5]:
            i = s.index_of(day)
            if i is not None:
                out[symbol][day] = (price(s.close[i - 1]) * Decimal("0.005")).quantize(Decimal("0.0001"))
    return out


async def _run(known: set[str]):  # type: ignore[no-untyped-def]
    schedule = {s: d for s, d in _schedule().items() if s in known}
    market = DailyBarMarketData(BASE.data.series, CALENDAR, dividends=DividendSchedule(schedule, known))
    world = await make_world(start=START, end=END, n=6, market=market)
    result = await world.app.runner.run(run_id="d", start=START, end=END, symbols=world.app.symbols)
    return world, result, schedule


async def test_with_dividend_information_everywhere_quorum_and_the_benchmarks_are_credited_alike() -> None:
    _world, result, schedule = await _run(set(BASE.symbols))
    assert result.dividends.counted and result.dividend_payments, "Quorum held shares on some ex-date"
    for p in result.dividend_payments:
        day = CALENDAR.previous_session(p.at)  # the payment is at the ex-date's open
        ex_date = CALENDAR.next_session(day)
        assert p.per_share == schedule[p.symbol][ex_date] and p.amount == money(p.qty * p.per_share)
    assert result.dividends.credited == sum((p.amount for p in result.dividend_payments), Decimal(0))
    replayed = result.starting_cash + sum((f.cash_delta for f in result.fills), Decimal(0)) + result.dividends.credited
    assert replayed == result.equity[-1].cash
    for name in ("spy_buy_and_hold", "equal_weight_universe"):
        assert result.benchmarks[name]["dividends"] > 0, name


async def test_one_symbol_without_dividend_information_means_no_dividend_for_anyone() -> None:
    _, first, _ = await _run(set(BASE.symbols))
    missing = first.symbols[0]
    _world, result, _ = await _run(set(BASE.symbols) - {missing})
    assert not result.dividends.counted and missing in result.dividends.reason
    assert result.dividend_payments == [] and result.dividends.credited == 0
    assert [b["dividends"] for b in result.benchmarks.values()] == [0.0, 0.0]
    assert result.starting_cash + sum((f.cash_delta for f in result.fills), Decimal(0)) == result.equity[-1].cash


# --- the Alpaca-wire emulator credits dividends as the in-memory venue does, and shows them as DIV activities ---

MON, WED = date(2024, 7, 1), date(2024, 7, 3)
NO_COSTS = FeeSettings(slippage_bps=Decimal(0), sec_fee_per_million=Decimal(0), taf_per_share=Decimal(0))
KEY, SECRET = "PKEMULATOR1234567890", "emulator-secret-0987654321"


def _flat_market() -> DailyBarMarketData:
    days = CALENDAR.sessions(date(2024, 6, 3), date(2024, 7, 12))
    flat = np.full(len(days), 40.0)
    bars = {s: BarSeries(s, tuple(days), flat, flat + 1, flat - 1, flat, np.full(len(days), 1e6))
            for s in ("AAA", "BBB")}
    return DailyBarMarketData(bars, CALENDAR, dividends=DividendSchedule(
        {"AAA": {WED: Decimal("0.2537")}, "BBB": {WED: Decimal("1.00")}}, {"AAA", "BBB"}))


def _venue_payments() -> tuple[Decimal, list[DividendPayment]]:
    """Cash credited and payments of the in-memory venue holding 3 AAA through the ex-date."""
    market = _flat_market()
    clock = SimClock(CALENDAR.session_open(MON) - timedelta(minutes=1))
    broker = InMemoryBroker(Decimal(1000), NO_COSTS, clock, CALENDAR)
    venue = InMemoryVenue(broker, market, CALENDAR, clock)
    venue.advance_to(CALENDAR.session_open(MON))
    asyncio.run(broker.submit(OrderRequest(client_order_id="b1", symbol="AAA", side=Side.BUY, qty=Decimal(3))))
    venue.advance_to(CALENDAR.session_close(MON))
    before = broker.cash
    venue.advance_to(CALENDAR.session_close(WED))
    return broker.cash - before, venue.dividend_payments()


def _emulator(on: bool) -> AlpacaEmulator:
    emu = AlpacaEmulator(_flat_market(), CALENDAR, CALENDAR.session_open(MON), Decimal(1000), NO_COSTS,
                         api_key=KEY, secret_key=SECRET, hang_seconds=1.0)
    emu.credit_dividends(on)
    return emu


def test_the_emulator_credits_the_dividend_like_the_venue_and_lists_it_as_a_div_activity() -> None:
    credited, payments = _venue_payments()
    assert credited == Decimal("0.76") and len(payments) == 1
    with _emulator(True) as emu, httpx.Client(base_url=emu.url, headers={
            "APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}, timeout=5.0) as http:
        http.post("/v2/orders", json={"symbol": "AAA", "qty": "3", "side": "buy", "type": "market",
                                      "time_in_force": "day"}).raise_for_status()
        emu.advance_to(CALENDAR.session_close(MON))
        before = Decimal(http.get("/v2/account").json()["cash"])
        emu.advance_to(CALENDAR.session_close(WED))
        assert Decimal(http.get("/v2/account").json()["cash"]) - before == credited
        assert emu.dividend_payments() == payments
        (raw,) = http.get("/v2/account/activities/DIV").json()
        div = NonTradeActivity(**raw)
        assert (div.activity_type.value, div.symbol, div.qty, div.per_share_amount, div.net_amount) == (
            "DIV", "AAA", 3.0, 0.2537, 0.76)
        assert div.date == WED
        assert [a["activity_type"] for a in http.get("/v2/account/activities").json()] == ["DIV", "FILL"]


def test_an_emulator_told_not_to_count_dividends_credits_none() -> None:
    with _emulator(False) as emu, httpx.Client(base_url=emu.url, headers={
            "APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}, timeout=5.0) as http:
        http.post("/v2/orders", json={"symbol": "AAA", "qty": "3", "side": "buy", "type": "market",
                                      "time_in_force": "day"}).raise_for_status()
        emu.advance_to(CALENDAR.session_close(MON))
        before = http.get("/v2/account").json()["cash"]
        emu.advance_to(CALENDAR.session_close(WED))
        assert http.get("/v2/account").json()["cash"] == before
        assert emu.dividend_payments() == [] and http.get("/v2/account/activities/DIV").json() == []


def test_the_rehearsals_listed_history_keeps_the_dividends_of_what_it_lists(tmp_path: Path) -> None:
    days = CALENDAR.sessions(date(2016, 1, 4), date(2016, 6, 30))
    for k, symbol in enumerate(("AAA", "BBB", "SPY")):
        rows = [f"{d},{20 + k},{21 + k},{19 + k},{20 + k},{20 + k if d >= date(2016, 5, 2) else 19 + k},"
                f"{(k + 1) * 100_000}" for d in days]
        (tmp_path / f"{symbol}.csv").write_text("Date,Open,High,Low,Close,Adj Close,Volume\n" + "\n".join(rows) + "\n")
    run = {"data_dirs": [tmp_path], "start": date(2016, 6, 1), "end": date(2016, 6, 30), "n_symbols": 1}
    listed = listed_history(run, CALENDAR, SystemClock())
    assert listed.symbols == ["BBB"], "the most liquid stock"
    dividends = listed.market.dividends
    assert dividends.known == {"BBB", "SPY"}, "what the emulator lists, context included"
    assert dividends.of("BBB").keys() == {date(2016, 5, 2)} and dividends.of("AAA") == {}
