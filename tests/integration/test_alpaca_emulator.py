"""The Alpaca-wire emulator with plain httpx: Alpaca's JSON (cross-checked with alpaca-py's models), its refusals,
pending cancels, nested legs, no look-ahead in market data, injected faults and concurrent clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from alpaca.trading.models import Asset as SdkAsset
from alpaca.trading.models import Calendar as SdkCalendar
from alpaca.trading.models import Clock as SdkClock
from alpaca.trading.models import Order as SdkOrder
from alpaca.trading.models import Position as SdkPosition
from alpaca.trading.models import TradeAccount, TradeActivity

from adapters.calendar import NyseCalendar
from adapters.inmemory.alpaca_emulator import AlpacaEmulator, Fault
from adapters.inmemory.exchange import ExchangeRules
from adapters.inmemory.market_data import ReplayMarketData, SyntheticMarket
from adapters.inmemory.replay.timeline import run_sync
from domain.models.trading import Side
from domain.money import price
from domain.risk.config import FeeSettings
from domain.risk.fees import fill_price

pytestmark = pytest.mark.integration

NY = ZoneInfo("America/New_York")
CAL = NyseCalendar()
KEY, SECRET = "PKEMULATOR1234567890", "emulator-secret-0987654321"
HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
MON, TUE = date(2024, 2, 5), date(2024, 2, 6)
MARKET = SyntheticMarket(seed=11, n_symbols=3, start=date(2023, 10, 2), end=date(2024, 3, 29), calendar=CAL)
SYM = MARKET.stock_symbols[0]


def ny(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=NY)


@pytest.fixture
def emu() -> Iterator[AlpacaEmulator]:
    with AlpacaEmulator(MARKET, CAL, ny(MON, 9), Decimal("10000"), api_key=KEY, secret_key=SECRET,
                        hang_seconds=2.0) as e:
        yield e


@pytest.fixture
def http(emu: AlpacaEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.url, headers=HEADERS, timeout=5.0) as client:
        yield client


def order(qty: str = "10", side: str = "buy", **kw: Any) -> dict[str, Any]:
    return {"symbol": SYM, "qty": qty, "side": side, "type": "market", "time_in_force": "gtc", **kw}


def last_open(emu: AlpacaEmulator) -> Decimal:
    return MARKET.opens_on(MON)[SYM]


def test_requests_without_the_keys_are_refused_and_keys_are_never_recorded(emu: AlpacaEmulator) -> None:
    assert httpx.get(emu.url + "/v2/account").status_code == 401
    wrong = httpx.get(emu.url + "/v2/account", headers={**HEADERS, "APCA-API-SECRET-KEY": "nope"})
    assert (wrong.status_code, wrong.json()) == (401, {"code": 40110000, "message": "request is not authorized"})
    ok = httpx.get(emu.url + "/v2/account", headers=HEADERS)
    assert ok.status_code == 200 and ok.http_version == "HTTP/1.1"
    recorded = emu.requests
    assert [r.had_keys for r in recorded] == [False, True, True]
    assert all(KEY not in str(r.headers) and SECRET not in str(r.headers) for r in recorded)


def test_the_json_parses_with_alpaca_py_models(emu: AlpacaEmulator, http: httpx.Client) -> None:
    stop = str((last_open(emu) * Decimal("0.9")).quantize(Decimal("0.01")))
    take = str((last_open(emu) * Decimal("1.2")).quantize(Decimal("0.01")))
    answer = http.post("/v2/orders", json=order(order_class="bracket", stop_loss={"stop_price": stop},
                                                take_profit={"limit_price": take}))
    parent = SdkOrder(**answer.json())
    assert parent.order_class.value == "bracket" and parent.legs is not None and len(parent.legs) == 2
    emu.advance_to(ny(MON, 10))
    http.post("/v2/orders", json=order("1", "buy", symbol=MARKET.stock_symbols[1], time_in_force="day"))
    emu.advance_to(ny(MON, 10, 30))
    assert TradeAccount(**http.get("/v2/account").json()).multiplier == "1"
    (position,) = [SdkPosition(**p) for p in http.get("/v2/positions").json() if p["symbol"] == SYM]
    assert (position.qty, position.qty_available) == ("10", "0")
    fills = [TradeActivity(**a) for a in http.get("/v2/account/activities/FILL").json()]
    assert {f.symbol for f in fills} == {SYM, MARKET.stock_symbols[1]}
    assert all(SdkAsset(**a).tradable for a in http.get("/v2/assets", params={"status": "active"}).json())
    clock = SdkClock(**http.get("/v2/clock").json())
    assert clock.is_open and clock.next_close == CAL.session_close(MON)
    days = [SdkCalendar(**d) for d in http.get("/v2/calendar", params={"start": "2024-02-05",
                                                                       "end": "2024-02-09"}).json()]
    assert [d.date for d in days] == CAL.sessions(MON, date(2024, 2, 9))


def test_an_order_is_accepted_then_fills_at_the_next_price(emu: AlpacaEmulator, http: httpx.Client) -> None:
    accepted = http.post("/v2/orders", json=order(client_order_id="q-1")).json()
    assert accepted["status"] == "accepted" and accepted["filled_qty"] == "0"
    assert http.get("/v2/positions").json() == []
    fills = emu.advance_to(ny(MON, 9, 45))
    assert [f.client_order_id for f in fills] == ["q-1"] and fills[0].at == CAL.session_open(MON)
    filled = http.get(f"/v2/orders/{accepted['id']}").json()
    assert (filled["status"], filled["filled_qty"]) == ("filled", "10")
    (activity,) = http.get("/v2/account/activities", params={"activity_types": "FILL"}).json()
    assert (activity["order_id"], activity["order_status"], activity["leaves_qty"]) == (accepted["id"], "filled", "0")


def test_a_sell_right_after_a_cancel_is_refused_until_the_cancel_completes(emu: AlpacaEmulator,
                                                                           http: httpx.Client) -> None:
    stop = str((last_open(emu) * Decimal("0.9")).quantize(Decimal("0.01")))
    http.post("/v2/orders", json=order(order_class="oto", stop_loss={"stop_price": stop}))
    emu.advance_to(ny(MON, 9, 45))
    (leg,) = [o for o in http.get("/v2/orders", params={"status": "open"}).json()]
    assert (leg["side"], leg["status"], leg["time_in_force"]) == ("sell", "held", "gtc")
    assert http.delete(f"/v2/orders/{leg['id']}").status_code == 204
    refused = http.post("/v2/orders", json=order(side="sell"))
    assert refused.status_code == 403
    assert refused.json() == {"code": 40310000,
                              "message": "insufficient qty available for order (requested: 10, available: 0)",
                              "available": "0", "existing_qty": "10", "held_for_orders": "10",
                              "related_orders": [leg["id"]], "symbol": SYM}
    assert http.get(f"/v2/orders/{leg['id']}").json()["status"] == "canceled"  # reading it completes the cancel
    assert http.post("/v2/orders", json=order(side="sell")).status_code == 200


def test_legs_nest_under_their_parent_or_are_listed_as_orders(emu: AlpacaEmulator, http: httpx.Client) -> None:
    stop = str((last_open(emu) * Decimal("0.9")).quantize(Decimal("0.01")))
    take = str((last_open(emu) * Decimal("1.2")).quantize(Decimal("0.01")))
    parent = http.post("/v2/orders", json=order(client_order_id="entry", order_class="bracket",
                                                stop_loss={"stop_price": stop},
                                                take_profit={"limit_price": take})).json()
    emu.advance_to(ny(MON, 9, 45))
    nested = http.get("/v2/orders", params={"status": "open", "nested": "true"}).json()
    assert [o["id"] for o in nested] == [parent["id"]] and nested[0]["status"] == "filled"
    assert [(leg["type"], leg["status"]) for leg in nested[0]["legs"]] == [("limit", "new"), ("stop", "held")]
    flat = http.get("/v2/orders", params={"status": "open", "direction": "asc"}).json()
    assert [o["type"] for o in flat] == ["limit", "stop"] and all(o["legs"] is None for o in flat)
    assert {o["client_order_id"] for o in flat}.isdisjoint({"entry"})
    by_cid = http.get("/v2/orders:by_client_order_id", params={"client_order_id": "entry"}).json()
    assert by_cid["id"] == parent["id"]


def test_refusals_carry_alpacas_statuses_and_bodies(emu: AlpacaEmulator, http: httpx.Client) -> None:
    http.post("/v2/orders", json=order(client_order_id="dup"))
    duplicate = http.post("/v2/orders", json=order(client_order_id="dup"))
    assert (duplicate.status_code, duplicate.json()) == (422, {"code": 40010001,
                                                               "message": "client_order_id must be unique"})
    emu.advance_to(ny(MON, 9, 45))
    http.post("/v2/orders", json=order("1", type="limit", limit_price="1.00"))
    wash = http.post("/v2/orders", json=order("1", side="sell"))
    assert wash.status_code == 403 and wash.json()["message"] == "potential wash trade detected. use complex orders"
    power = http.post("/v2/orders", json=order("100000"))
    assert power.status_code == 403 and power.json()["message"] == "insufficient buying power"
    frac = http.post("/v2/orders", json=order("1.5"))
    assert (frac.status_code, frac.json()["message"]) == (422, "fractional orders must be DAY orders")
    filled = http.get("/v2/orders", params={"status": "closed"}).json()[0]
    again = http.delete(f"/v2/orders/{filled['id']}")
    assert (again.status_code, again.json()["message"]) == (422, 'order is already in "filled" state')
    assert http.get("/v2/orders/nope").status_code == 404


def test_day_legs_expire_at_the_close(emu: AlpacaEmulator, http: httpx.Client) -> None:
    stop = str((last_open(emu) * Decimal("0.5")).quantize(Decimal("0.01")))
    parent = http.post("/v2/orders", json=order(time_in_force="day", order_class="oto",
                                                stop_loss={"stop_price": stop})).json()
    emu.advance_to(ny(MON, 16, 5))
    (leg,) = http.get(f"/v2/orders/{parent['id']}", params={"nested": "true"}).json()["legs"]
    assert (leg["time_in_force"], leg["status"]) == ("day", "expired")
    account = http.get("/v2/account").json()
    assert account["last_equity"] == account["equity"]


def test_market_data_never_shows_the_future(emu: AlpacaEmulator, http: httpx.Client) -> None:
    def days() -> list[str]:
        bars = http.get("/v2/stocks/bars", params={"symbols": SYM, "timeframe": "1Day", "limit": 10000}).json()
        return [b["t"] for b in bars["bars"][SYM]]

    emu.advance_to(ny(MON, 15, 59))
    assert days()[-1].startswith("2024-02-02")  # Friday: Monday's bar does not exist before the close
    emu.advance_to(ny(MON, 16))
    assert days()[-1].startswith("2024-02-05")
    page = http.get("/v2/stocks/bars", params={"symbols": SYM, "timeframe": "1Day", "limit": 2}).json()
    second = http.get("/v2/stocks/bars", params={"symbols": SYM, "timeframe": "1Day", "limit": 2,
                                                 "page_token": page["next_page_token"]}).json()
    assert page["bars"][SYM][-1]["t"] < second["bars"][SYM][0]["t"]
    quote = http.get("/v2/stocks/quotes/latest", params={"symbols": SYM}).json()["quotes"][SYM]
    assert quote["bp"] < float(MARKET.ohlc_on(MON)[SYM][3]) < quote["ap"]
    snapshot = http.get("/v2/stocks/snapshots", params={"symbols": SYM}).json()[SYM]
    assert snapshot["dailyBar"]["t"].startswith("2024-02-05") and snapshot["prevDailyBar"]["t"].startswith("2024-02-02")


def test_intraday_bars_fill_orders_and_appear_once_complete(shared_data: Path) -> None:
    intraday = shared_data / "intraday" / "1min_2022-10_2022-11"
    market = ReplayMarketData([intraday / "AAPL.csv"], CAL)
    day = date(2022, 10, 20)
    with AlpacaEmulator(market, CAL, ny(day, 10, 0), Decimal("5000"), api_key=KEY, secret_key=SECRET) as emu, \
            httpx.Client(base_url=emu.url, headers=HEADERS) as http:
        emu.advance_to(ny(day, 10) + timedelta(seconds=30))
        http.post("/v2/orders", json={"symbol": "AAPL", "qty": "2", "side": "buy", "type": "market",
                                      "time_in_force": "day"})
        (fill,) = emu.advance_to(ny(day, 10, 1) + timedelta(seconds=1))
        (bar,) = run_sync(market.minute_bars(["AAPL"], start=ny(day, 10, 1), end=ny(day, 10, 2)))["AAPL"]
        assert (fill.at, fill.price) == (ny(day, 10, 1), fill_price(Side.BUY, price(bar.open), FeeSettings()))
        bars = http.get("/v2/stocks/bars", params={"symbols": "AAPL", "timeframe": "1Min",
                                                   "start": "2022-10-20T14:00:00Z"}).json()["bars"]["AAPL"]
        assert bars[-1]["t"] == "2022-10-20T14:00:00Z"  # the 10:01 bar is not complete yet
        five = http.get("/v2/stocks/bars", params={"symbols": "AAPL", "timeframe": "5Min",
                                                   "start": "2022-10-20T13:30:00Z"}).json()["bars"]["AAPL"]
        assert [b["t"] for b in five][-1] == "2022-10-20T13:55:00Z"


def test_injected_faults(emu: AlpacaEmulator) -> None:
    emu.inject(Fault("status", "GET", "/v2/account", times=2, status=429, retry_after=3))
    emu.inject(Fault("status", "GET", "/v2/positions", status=503))
    emu.inject(Fault("timeout", "GET", "/v2/clock"))
    emu.inject(Fault("drop_after_accept", "POST", "/v2/orders"))
    with httpx.Client(base_url=emu.url, headers=HEADERS, timeout=0.5) as http:
        first = http.get("/v2/account")
        assert (first.status_code, first.headers["Retry-After"]) == (429, "3")
        assert http.get("/v2/account").status_code == 429 and http.get("/v2/account").status_code == 200
        assert http.get("/v2/positions").status_code == 503
        with pytest.raises(httpx.TimeoutException):
            http.get("/v2/clock")
        with pytest.raises(httpx.RemoteProtocolError):
            http.post("/v2/orders", json=order(client_order_id="lost-answer"))
        found = http.get("/v2/orders:by_client_order_id", params={"client_order_id": "lost-answer"})
        assert found.status_code == 200  # the order was accepted although the answer was lost
    assert [r.fault for r in emu.requests if r.fault] == ["status", "status", "status", "timeout",
                                                          "drop_after_accept"]


def test_positions_can_be_closed(emu: AlpacaEmulator, http: httpx.Client) -> None:
    http.post("/v2/orders", json=order())
    http.post("/v2/orders", json=order("5", symbol=MARKET.stock_symbols[1]))
    emu.advance_to(ny(MON, 9, 45))
    closing = http.delete(f"/v2/positions/{SYM}").json()
    assert (closing["side"], closing["qty"], closing["type"]) == ("sell", "10", "market")
    every = http.delete("/v2/positions", params={"cancel_orders": "true"})
    assert every.status_code == 207
    assert [(r["symbol"], r["status"]) for r in every.json()] == [(SYM, 200), (MARKET.stock_symbols[1], 200)]


def test_pdt_fields_follow_the_rule(emu: AlpacaEmulator, http: httpx.Client) -> None:
    assert "daytrade_count" in http.get("/v2/account").json()
    with AlpacaEmulator(MARKET, CAL, ny(MON, 9), Decimal("1000"), rules=ExchangeRules(pdt_protection=False),
                        api_key=KEY, secret_key=SECRET) as plain, httpx.Client(base_url=plain.url,
                                                                              headers=HEADERS) as client:
        body = client.get("/v2/account").json()
        assert "daytrade_count" not in body and "pattern_day_trader" not in body


def test_concurrent_clients_see_one_consistent_book(emu: AlpacaEmulator) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        with httpx.Client(base_url=emu.url, headers=HEADERS) as client:
            mine = client.post("/v2/orders", json=order("1", client_order_id=f"c{n}")).status_code
            same = client.post("/v2/orders", json=order("1", client_order_id="shared")).status_code
        with lock:
            statuses.extend([mine, same])

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(200) == 9 and statuses.count(422) == 7  # 8 own ids + one "shared"
    assert len(emu.exchange.open_orders()) == 9


def test_the_clock_only_moves_forward(emu: AlpacaEmulator) -> None:
    assert emu.clock.now() == ny(MON, 9)
    emu.advance_to(ny(MON, 12))
    assert emu.clock.now() == ny(MON, 12)
    with pytest.raises(ValueError, match="cannot go back"):
        emu.advance_to(ny(MON, 11))


async def test_alpaca_market_data_reads_the_emulator(emu: AlpacaEmulator) -> None:
    from adapters.alpaca import AlpacaConfig, AlpacaMarketData

    emu.advance_to(ny(MON, 11))
    config = AlpacaConfig(api_key=KEY, secret_key=SECRET, trading_url=emu.url, data_url=emu.url, max_retries=0)
    async with AlpacaMarketData(config, calendar=CAL) as data:
        assert {a.symbol for a in await data.assets()} >= {SYM}
        bars = await data.daily_bars([SYM], as_of=emu.clock.now(), lookback=5)
        assert bars[SYM].days[-1] == date(2024, 2, 2) and len(bars[SYM]) == 5
        quotes = await data.latest_quotes([SYM], as_of=emu.clock.now())
        assert quotes[SYM].last == float(MARKET.opens_on(MON)[SYM])


def test_cancel_all_and_activity_paging(emu: AlpacaEmulator, http: httpx.Client) -> None:
    for n in range(3):
        http.post("/v2/orders", json=order("1", client_order_id=f"p{n}"))
    emu.advance_to(ny(MON, 9, 45))
    first = http.get("/v2/account/activities/FILL", params={"direction": "asc", "page_size": 2}).json()
    rest = http.get("/v2/account/activities/FILL", params={"direction": "asc", "page_size": 2,
                                                          "page_token": first[-1]["id"]}).json()
    assert len(first) == 2 and len(rest) == 1 and rest[0]["id"] not in {a["id"] for a in first}
    http.post("/v2/orders", json=order("1", type="limit", limit_price="1.00", client_order_id="resting"))
    answer = http.delete("/v2/orders")
    assert answer.status_code == 207
    assert [(item["status"], item["body"]["status"]) for item in answer.json()] == [(200, "pending_cancel")]
    assert http.get("/v2/orders", params={"status": "open"}).json() == []  # reading the orders completed it
