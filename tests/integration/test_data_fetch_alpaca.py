"""`quorum data fetch` through the real Alpaca adapters: against the Alpaca-wire emulator replaying the real bars
of tests/fixtures/market (paging, a fault injected mid-run then a resume, a 429 waited out) and against the replay
server serving recorded Alpaca pages (the split- and all-adjusted bars joined into an adjusted close)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.alpaca import AlpacaConfig
from adapters.alpaca.daily_history import AlpacaDailyHistory
from adapters.alpaca.wire import rfc3339
from adapters.calendar import NyseCalendar
from adapters.inmemory.alpaca_emulator import AlpacaEmulator
from adapters.inmemory.alpaca_emulator.faults import Fault
from adapters.inmemory.csv_bars import load_bars
from adapters.inmemory.daily_csv_store import DailyCsvStore
from adapters.inmemory.market_data import ReplayMarketData
from application.data_fetch import DailyHistoryFetch, FetchStep
from domain.errors import BrokerUnavailableError
from tests.integration.alpaca_replay_server import AlpacaReplayServer, Reply

pytestmark = pytest.mark.integration

NY = ZoneInfo("America/New_York")
CAL = NyseCalendar()
MARKET = Path(__file__).resolve().parents[1] / "fixtures" / "market"
ALPACA = Path(__file__).resolve().parents[1] / "fixtures" / "alpaca"
KEY, SECRET = "PKFETCH00000000000000", "fetch-secret-0000000000"
BARS = "/v2/stocks/bars"
START, END = date(2016, 1, 1), date(2016, 6, 30)
SYMBOLS = ["AAPL", "MSFT", "SPY"]


@pytest.fixture(scope="module")
def market() -> ReplayMarketData:
    return ReplayMarketData([MARKET / "daily", MARKET / "context"], CAL)


@pytest.fixture
def emulator(market: ReplayMarketData) -> Iterator[AlpacaEmulator]:
    with AlpacaEmulator(market, CAL, datetime(2016, 7, 1, 18, tzinfo=NY), Decimal(10_000), api_key=KEY,
                        secret_key=SECRET) as emu:
        yield emu


@pytest.fixture
def sleeps() -> list[float]:
    return []


def source_on(url: str, sleeps: list[float], page_limit: int = 50) -> AlpacaDailyHistory:
    async def recorded_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    config = AlpacaConfig(api_key=KEY, secret_key=SECRET, trading_url=url, data_url=url, timeout=2.0,
                          max_retries=3)
    return AlpacaDailyHistory(config, page_limit=page_limit, sleep=recorded_sleep)


@pytest.fixture
async def source(emulator: AlpacaEmulator, sleeps: list[float]) -> AsyncIterator[AlpacaDailyHistory]:
    s = source_on(emulator.url, sleeps)
    yield s
    await s.aclose()


def assert_same_bars(fetched: ReplayMarketData, market: ReplayMarketData, symbol: str) -> None:
    ours, theirs = fetched.series(symbol), market.series(symbol)
    assert ours is not None and theirs is not None
    lo, hi = theirs.days.index(ours.days[0]), theirs.days.index(ours.days[-1]) + 1
    assert ours.days == theirs.days[lo:hi]
    for column in ("open", "high", "low", "close", "volume"):
        assert list(getattr(ours, column)) == list(getattr(theirs, column)[lo:hi]), (symbol, column)


async def test_fetched_pages_read_back_with_the_backtest_loader_as_the_bars_served(
    emulator: AlpacaEmulator, source: AlpacaDailyHistory, market: ReplayMarketData, tmp_path: Path
) -> None:
    report = await DailyHistoryFetch(source, DailyCsvStore(tmp_path), CAL).run(
        SYMBOLS, START, END, as_of=emulator.clock.now())

    assert [(o.symbol, o.status, o.stored) for o in report.outcomes] == [(s, "fetched", 125) for s in SYMBOLS]
    fetched = ReplayMarketData([tmp_path], CAL)
    assert fetched.load_report.rows_skipped == 0 and fetched.symbols == SYMBOLS
    for symbol in SYMBOLS:
        assert_same_bars(fetched, market, symbol)
    split = [r for r in emulator.requests if r.path == BARS and r.param("adjustment") == "split"]
    assert [r.param("page_token") is not None for r in split if r.param("symbols") == "AAPL"] == [False, True, True]
    assert {(r.param("feed"), r.param("timeframe")) for r in split} == {("sip", "1Day")}
    assert len([r for r in emulator.requests if r.path == BARS and r.param("adjustment") == "all"]) == 9


async def test_a_run_stopped_by_a_fault_mid_run_resumes_where_it_stopped(
    emulator: AlpacaEmulator, source: AlpacaDailyHistory, market: ReplayMarketData, sleeps: list[float],
    tmp_path: Path
) -> None:
    store = DailyCsvStore(tmp_path)

    def outage_after_two_msft_pages(step: FetchStep) -> None:
        if step.symbol == "MSFT" and step.outcome is None and step.stored == 100:
            emulator.inject(Fault("status", method="GET", path=BARS, status=503, times=4))

    with pytest.raises(BrokerUnavailableError):
        await DailyHistoryFetch(source, store, CAL).run(SYMBOLS, START, END, as_of=emulator.clock.now(),
                                                        progress=outage_after_two_msft_pages)
    partial = store.read("MSFT")
    assert len(partial) == 100 and store.covered("MSFT") is None and store.read("SPY") == []
    assert len(ReplayMarketData([tmp_path], CAL).series("MSFT") or ()) == 100  # a whole file, readable
    before = len(emulator.requests)

    report = await DailyHistoryFetch(source, store, CAL).run(SYMBOLS, START, END, as_of=emulator.clock.now())

    resumed = [r for r in emulator.requests[before:] if r.path == BARS]
    assert [o.status for o in report.outcomes] == ["complete", "fetched", "fetched"]
    assert not [r for r in resumed if r.param("symbols") == "AAPL"]
    assert resumed[0].param("symbols") == "MSFT"
    assert resumed[0].param("start") == rfc3339(datetime.combine(partial[-1].day, datetime.min.time(), NY))
    fetched = ReplayMarketData([tmp_path], CAL)
    for symbol in SYMBOLS:
        assert_same_bars(fetched, market, symbol)
        assert len(fetched.series(symbol) or ()) == 125


async def test_a_429_is_waited_out_for_as_long_as_retry_after_says(
    emulator: AlpacaEmulator, source: AlpacaDailyHistory, sleeps: list[float], tmp_path: Path
) -> None:
    emulator.inject(Fault("status", method="GET", path=BARS, status=429, retry_after=7, times=2))

    report = await DailyHistoryFetch(source, DailyCsvStore(tmp_path), CAL).run(
        ["AAPL"], START, END, as_of=emulator.clock.now())

    assert sleeps == [7.0, 7.0]
    assert [r.status for r in emulator.requests if r.path == BARS][:3] == [429, 429, 200]
    assert report.outcomes[0].status == "fetched" and report.outcomes[0].stored == 125


def _adjusted(page: dict[str, object], closes: dict[str, float]) -> Reply:
    bars = [{**b, "c": closes[str(b["t"])]} for b in page["META"]]  # type: ignore[attr-defined]
    return Reply(body={"bars": {"META": bars}, "next_page_token": None})


async def test_recorded_alpaca_pages_join_into_an_adjusted_close_that_gives_the_dividend(
    sleeps: list[float], tmp_path: Path
) -> None:
    go = ALPACA / "alpaca-trade-api-go"
    first = "TUVUQXxEfDIwMjItMDYtMDlUMDQ6MDA6MDAuMDAwMDAwMDAwWg=="
    second = "TUVUQXxEfDIwMjItMDYtMTNUMDQ6MDA6MDAuMDAwMDAwMDAwWg=="
    with AlpacaReplayServer(api_key=KEY, secret_key=SECRET) as server:
        page1 = server.fixture_reply(go / "marketdata_rest_test__TestGetBars_Asof__1.json")
        page2 = server.fixture_reply(go / "marketdata_rest_test__TestGetBars_Asof__2.json")
        server.route("GET", BARS, page1, query={"adjustment": "split"})
        server.route("GET", BARS, page2, query={"adjustment": "split", "page_token": first})
        server.route("GET", BARS, Reply(body={"bars": {}, "next_page_token": None}),
                     query={"adjustment": "split", "page_token": second})
        # crafted: a 0.50 dividend going ex on 2022-06-10 scales the older closes by 1 - 0.50 / 184 (4 decimals)
        factor = 1 - 0.5 / 184
        server.route("GET", BARS, _adjusted(page1.body["bars"], {"2022-06-08T04:00:00Z": round(196.64 * factor, 4),
                                                                 "2022-06-09T04:00:00Z": round(184 * factor, 4)}),
                     query={"adjustment": "all", "start": "2022-06-08T04:00:00Z"})
        server.route("GET", BARS, _adjusted(page2.body["bars"], {"2022-06-10T04:00:00Z": 175.57,
                                                                 "2022-06-13T04:00:00Z": 164.26}),
                     query={"adjustment": "all", "start": "2022-06-10T04:00:00Z"})
        server.reply_json("GET", BARS, {"bars": {}, "next_page_token": None},
                          query={"symbols": "NOPE", "adjustment": "split"})
        server.reply_json("GET", "/v2/assets/NOPE", {"code": 40410000, "message": "asset not found for NOPE"},
                          status=404)
        source = source_on(server.url, sleeps, page_limit=2)
        try:
            report = await DailyHistoryFetch(source, DailyCsvStore(tmp_path), CAL).run(
                ["META", "NOPE"], date(2022, 6, 8), date(2022, 6, 13), as_of=datetime(2022, 6, 14, tzinfo=NY))
        finally:
            await source.aclose()

    assert [(o.symbol, o.status, o.stored) for o in report.outcomes] == [("META", "fetched", 4), ("NOPE", "unknown", 0)]
    loaded = load_bars([tmp_path], trading_days=CAL.sessions)
    meta = loaded.daily["META"]
    assert list(meta.close) == [196.64, 184.0, 175.57, 164.26] and meta.volume[0] == 22211813
    assert loaded.dividends.of("META") == {date(2022, 6, 10): Decimal("0.5000")}
