"""AlpacaMarketData against a local server replaying recorded Alpaca responses.

Every response comes from tests/fixtures/alpaca (PROVENANCE.md there says where each file comes from),
so these tests run in every CI without ../shared.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from adapters.alpaca import AlpacaConfig, AlpacaMarketData
from domain.errors import BrokerAuthError, BrokerUnavailableError, ConfigurationError, DataError, RateLimitedError
from domain.ports.market_data import MarketData
from tests.integration.alpaca_replay_server import AlpacaReplayServer, Reply

pytestmark = pytest.mark.integration

KEY = "PKTEST7Q2W9E4R1T6Y3U"
SECRET = "sEcReT9x8c7v6b5n4m3k2j1h0gFdSaQwErTy"
LOCAL = Path(__file__).resolve().parents[1] / "fixtures" / "alpaca"
BARS = "/v2/stocks/bars"
SNAPSHOTS = "/v2/stocks/snapshots"
MULTI_BARS = "alpaca-trade-api-go/marketdata_rest_test__TestGetMultiBars__1.json"


@pytest.fixture
def alpaca() -> Path:
    return LOCAL


@pytest.fixture
def server() -> Iterator[AlpacaReplayServer]:
    with AlpacaReplayServer(api_key=KEY, secret_key=SECRET) as s:
        yield s


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_market(server: AlpacaReplayServer, sleeps: list[float], bars_feed: str = "sip",
                **kwargs: object) -> AlpacaMarketData:
    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    config = AlpacaConfig(api_key=KEY, secret_key=SECRET, trading_url=server.url, data_url=server.url,
                          timeout=0.3, max_retries=2, backoff_seconds=0.5, bars_feed=bars_feed)  # type: ignore[arg-type]
    return AlpacaMarketData(config, sleep=fake_sleep, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def market(server: AlpacaReplayServer, sleeps: list[float]) -> AsyncIterator[AlpacaMarketData]:
    md = make_market(server, sleeps)
    yield md
    await md.aclose()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def test_implements_the_market_data_port(market: AlpacaMarketData) -> None:
    assert isinstance(market, MarketData)


async def test_assets_asks_for_active_us_equities_and_maps_discovery_flags(
    market: AlpacaMarketData, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(alpaca / "alpaca-py/trading_trading_client_test_asset_routes__test_get_all_assets__1.json")

    assets = await market.assets()

    assert [(a.symbol, a.exchange, a.tradable, a.shortable, a.fractionable, a.status, a.asset_class)
            for a in assets] == [("AAPL", "NASDAQ", True, True, True, "active", "us_equity")]
    (req,) = server.received("GET", "/v2/assets")
    assert req.param("status") == "active" and req.param("asset_class") == "us_equity"
    assert req.had_keys and not any("apca" in h for h in req.headers)


async def test_assets_keep_untradable_and_non_fractionable_flags(
    market: AlpacaMarketData, server: AlpacaReplayServer
) -> None:
    server.replay(LOCAL / "assets_us_equity_active.json")

    by_symbol = {a.symbol: a for a in await market.assets()}

    assert set(by_symbol) == {"AAPL", "BRK.B", "GBTC", "SPY", "SMCI"}
    assert not by_symbol["GBTC"].tradable and not by_symbol["GBTC"].shortable
    assert by_symbol["SMCI"].tradable and not by_symbol["SMCI"].fractionable
    assert by_symbol["SPY"].exchange == "ARCA"


async def test_daily_bars_leave_out_the_session_not_closed_at_as_of(
    market: AlpacaMarketData, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(alpaca / MULTI_BARS, method="GET", path=BARS)

    before_close = await market.daily_bars(["AAPL", "NIO"], as_of=utc("2021-10-15T19:59:00"), lookback=10)
    after_close = await market.daily_bars(["AAPL", "NIO"], as_of=utc("2021-10-15T20:00:00"), lookback=10)

    assert before_close["AAPL"].days == (date(2021, 10, 13), date(2021, 10, 14))
    assert after_close["AAPL"].days == (date(2021, 10, 13), date(2021, 10, 14), date(2021, 10, 15))
    assert list(after_close["AAPL"].close) == [140.91, 143.76, 144.84]
    assert after_close["NIO"].last_close == 37.71
    req = server.received("GET", BARS)[0]
    assert req.param("symbols") == "AAPL,NIO"
    assert req.param("timeframe") == "1Day"
    assert req.param("feed") == "sip"
    assert req.param("end") == "2021-10-15T19:59:00Z"


async def test_daily_bars_return_at_most_lookback_newest_bars(
    market: AlpacaMarketData, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(alpaca / MULTI_BARS, method="GET", path=BARS)

    bars = await market.daily_bars(["AAPL"], as_of=utc("2021-10-18T12:00:00"), lookback=2)

    assert bars["AAPL"].days == (date(2021, 10, 14), date(2021, 10, 15))


async def test_daily_bars_use_the_calendar_close_on_an_early_close_day(
    server: AlpacaReplayServer, sleeps: list[float], alpaca: Path
) -> None:
    class EarlyCloseCalendar:
        def session_close(self, day: date) -> datetime:
            hour = 17 if day == date(2021, 10, 15) else 20
            return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)

        def previous_session(self, at: datetime) -> date:
            day = at.date()
            while self.session_close(day) > at or day.weekday() >= 5:
                day -= timedelta(days=1)
            return day

    server.replay(alpaca / MULTI_BARS, method="GET", path=BARS)
    market = make_market(server, sleeps, calendar=EarlyCloseCalendar())
    try:
        bars = await market.daily_bars(["AAPL"], as_of=utc("2021-10-15T17:30:00"), lookback=5)
    finally:
        await market.aclose()

    assert bars["AAPL"].days[-1] == date(2021, 10, 15)


async def test_bars_follow_next_page_token_until_the_last_page(
    market: AlpacaMarketData, server: AlpacaReplayServer, alpaca: Path
) -> None:
    go = alpaca / "alpaca-trade-api-go"
    first = "TUVUQXxEfDIwMjItMDYtMDlUMDQ6MDA6MDAuMDAwMDAwMDAwWg=="
    second = "TUVUQXxEfDIwMjItMDYtMTNUMDQ6MDA6MDAuMDAwMDAwMDAwWg=="
    server.replay(go / "marketdata_rest_test__TestGetBars_Asof__1.json", method="GET", path=BARS)
    server.replay(go / "marketdata_rest_test__TestGetBars_Asof__2.json", method="GET", path=BARS,
                  query={"page_token": first})
    server.replay(alpaca / "alpaca-py/data_test_historical_stock_data__test_get_bars_multi_empty_response__1.json",
                  path=BARS, query={"page_token": second})

    bars = await market.daily_bars(["META"], as_of=utc("2022-06-14T00:00:00"), lookback=30)

    assert bars["META"].days == (date(2022, 6, 8), date(2022, 6, 9), date(2022, 6, 10), date(2022, 6, 13))
    assert [r.param("page_token") for r in server.received("GET", BARS)] == [None, first, second]


async def test_450_symbols_are_fetched_in_3_batches(
    market: AlpacaMarketData, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(alpaca / "alpaca-py/data_test_historical_stock_data__test_multisymbol_get_bars__1.json", path=BARS)
    server.replay(alpaca / "alpaca-trade-api-go/marketdata_rest_test__TestSnapshots__1.json", method="GET",
                  path=SNAPSHOTS)
    symbols = ["AAPL", "TSLA"] + [f"S{i:04d}" for i in range(448)]

    bars = await market.daily_bars(symbols, as_of=utc("2022-03-10T00:00:00"), lookback=5)
    snaps = await market.snapshots(symbols)

    for path in (BARS, SNAPSHOTS):
        sent = [(r.param("symbols") or "").split(",") for r in server.received("GET", path)]
        assert [len(batch) for batch in sent] == [200, 200, 50]
        assert sorted(s for batch in sent for s in batch) == sorted(symbols)
    assert bars["TSLA"].last_close == 858.97
    assert set(snaps) == {"AAPL", "MSFT"}


async def test_minute_bars_return_only_bars_completed_by_end(
    market: AlpacaMarketData, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(alpaca / "alpaca-trade-api-go/marketdata_rest_test__TestGetBars__1.json", method="GET", path=BARS)

    bars = await market.minute_bars(["AMZN"], start=utc("2021-10-15T16:15:00"), end=utc("2021-10-15T17:00:30"))

    assert [b.at for b in bars["AMZN"]] == [utc("2021-10-15T16:15:00"), utc("2021-10-15T16:30:00"),
                                            utc("2021-10-15T16:45:00")]
    assert bars["AMZN"][0].close == 3377.82
    req = server.received("GET", BARS)[0]
    assert req.param("timeframe") == "1Min" and req.param("start") == "2021-10-15T16:15:00Z"
    assert req.param("feed") == "iex"


async def test_latest_quotes_come_from_snapshots_with_bid_ask_and_last_trade(
    market: AlpacaMarketData, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(alpaca / "alpaca-trade-api-go/marketdata_rest_test__TestSnapshots__1.json", method="GET",
                  path=SNAPSHOTS)

    quotes = await market.latest_quotes(["AAPL", "MSFT", "INVALID"], as_of=utc("2021-05-03T14:50:00"))

    assert set(quotes) == {"AAPL", "MSFT"}
    aapl = quotes["AAPL"]
    assert (aapl.bid, aapl.ask, aapl.last) == (133.42, 133.43, 133.4201)
    assert aapl.at == datetime(2021, 5, 3, 14, 48, 7, 257820, tzinfo=UTC)
    req = server.received("GET", SNAPSHOTS)[0]
    assert (req.param("symbols"), req.param("feed")) == ("AAPL,MSFT,INVALID", "iex")


async def test_latest_quotes_leave_out_quotes_stamped_after_as_of(
    market: AlpacaMarketData, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(alpaca / "alpaca-trade-api-go/marketdata_rest_test__TestSnapshots__1.json", method="GET",
                  path=SNAPSHOTS)

    assert await market.latest_quotes(["AAPL", "MSFT"], as_of=utc("2021-05-03T14:00:00")) == {}


async def test_snapshots_carry_the_daily_bars(
    market: AlpacaMarketData, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(alpaca / "alpaca-py/data_test_historical_stock_data__test_get_snapshot__1.json")

    snap = (await market.snapshots(["AAPL"]))["AAPL"]

    assert snap.daily_bar is not None and snap.daily_bar.close == 161.365
    assert snap.prev_daily_bar is not None and snap.prev_daily_bar.close == 160.62
    assert snap.trade is not None and snap.trade.price == 161.1998


async def test_latest_trades_per_symbol_and_unknown_symbols_left_out(
    market: AlpacaMarketData, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(alpaca / "alpaca-trade-api-go/marketdata_rest_test__TestLatestTrades__1.json", method="GET",
                  path="/v2/stocks/trades/latest")

    trades = await market.latest_trades(["IBM", "MSFT", "NOPE"])

    assert {s: t.price for s, t in trades.items()} == {"IBM": 142.2, "MSFT": 294.1}
    assert trades["MSFT"].at.tzinfo is not None


async def test_429_honours_retry_after_then_succeeds(
    market: AlpacaMarketData, server: AlpacaReplayServer, sleeps: list[float], alpaca: Path
) -> None:
    limited = server.fixture_reply(LOCAL / "error_429_rate_limit.json", headers={"Retry-After": "3"})
    ok = server.fixture_reply(alpaca / MULTI_BARS)
    server.route("GET", BARS, limited, ok)

    bars = await market.daily_bars(["AAPL"], as_of=utc("2021-10-16T00:00:00"), lookback=3)

    assert len(bars["AAPL"]) == 3
    assert sleeps == [3.0]
    assert len(server.received("GET", BARS)) == 2


async def test_429_retries_stop_after_the_maximum(
    market: AlpacaMarketData, server: AlpacaReplayServer, sleeps: list[float]
) -> None:
    server.route("GET", BARS, server.fixture_reply(LOCAL / "error_429_rate_limit.json"))

    with pytest.raises(RateLimitedError) as err:
        await market.daily_bars(["AAPL"], as_of=utc("2021-10-16T00:00:00"), lookback=3)

    assert "rate limit exceeded" in str(err.value) and "42910000" in str(err.value)
    assert "gave up after 3 attempts" in str(err.value)
    assert sleeps == [0.5, 1.0]
    assert len(server.received("GET", BARS)) == 3


async def test_500_becomes_broker_unavailable_with_alpacas_message(
    market: AlpacaMarketData, server: AlpacaReplayServer
) -> None:
    server.route("GET", SNAPSHOTS, server.fixture_reply(LOCAL / "error_500_internal.json"))

    with pytest.raises(BrokerUnavailableError, match="internal server error occurred"):
        await market.latest_quotes(["AAPL"], as_of=utc("2021-05-03T14:50:00"))
    assert len(server.received("GET", SNAPSHOTS)) == 3


async def test_a_server_that_hangs_past_the_timeout_becomes_broker_unavailable(
    market: AlpacaMarketData, server: AlpacaReplayServer, sleeps: list[float]
) -> None:
    server.route("GET", BARS, Reply(body={"bars": {}, "next_page_token": None}, delay=5))

    with pytest.raises(BrokerUnavailableError, match=r"did not answer GET /v2/stocks/bars within 0\.3s"):
        await market.minute_bars(["AAPL"], start=utc("2021-10-15T16:00:00"), end=utc("2021-10-15T17:00:00"))
    assert len(server.received("GET", BARS)) == 3
    assert sleeps == [0.5, 1.0]


async def test_a_failing_later_batch_returns_nothing_partial(
    server: AlpacaReplayServer, sleeps: list[float], alpaca: Path
) -> None:
    server.replay(alpaca / "alpaca-trade-api-go/marketdata_rest_test__TestSnapshots__1.json", method="GET",
                  path=SNAPSHOTS)
    server.route("GET", SNAPSHOTS, server.fixture_reply(LOCAL / "error_500_internal.json"),
                 query={"symbols": "MSFT"})
    market = make_market(server, sleeps, batch_size=1)
    try:
        with pytest.raises(BrokerUnavailableError):
            await market.latest_quotes(["AAPL", "MSFT"], as_of=utc("2021-05-03T14:50:00"))
    finally:
        await market.aclose()
    assert [r.param("symbols") for r in server.received("GET", SNAPSHOTS)] == ["AAPL", "MSFT", "MSFT", "MSFT"]


async def test_malformed_bars_raise_a_data_error(market: AlpacaMarketData, server: AlpacaReplayServer) -> None:
    server.reply_json("GET", BARS, {"bars": {"AAPL": [{"t": "2021-10-13T04:00:00Z", "o": 1.0}]},
                                    "next_page_token": None})

    with pytest.raises(DataError, match=r"a bar of AAPL that alpaca-py's Bar rejects \(high: Field required"):
        await market.daily_bars(["AAPL"], as_of=utc("2021-10-16T00:00:00"), lookback=3)


async def test_wrong_keys_raise_broker_auth_error(server: AlpacaReplayServer) -> None:
    config = AlpacaConfig(api_key="PKWRONG000000000", secret_key="wrong-secret-000000", trading_url=server.url,
                          data_url=server.url, max_retries=0)
    async with AlpacaMarketData(config) as market:
        with pytest.raises(BrokerAuthError, match="check QUORUM_BROKER__ALPACA_API_KEY/SECRET_KEY") as err:
            await market.assets()
    assert "request is not authorized" in str(err.value)
    assert "wrong-secret" not in str(err.value) and "PKWRONG" not in str(err.value)


async def test_401_is_not_retried(market: AlpacaMarketData, server: AlpacaReplayServer, sleeps: list[float]) -> None:
    server.replay(LOCAL / "error_401_unauthorized.json", path=SNAPSHOTS)

    with pytest.raises(BrokerAuthError, match=r"\(401\).*request is not authorized \(code 40110000\)"):
        await market.snapshots(["AAPL"])
    assert len(server.received("GET", SNAPSHOTS)) == 1 and sleeps == []


# --- daily bars from SIP, 15 minutes behind the wall clock -----------------------------------------------------


@pytest.mark.parametrize(("now", "end", "last_day"), [
    ("2021-10-15T20:10:00", "2021-10-15T19:55:00Z", date(2021, 10, 14)),
    ("2021-10-15T20:16:00", "2021-10-15T20:01:00Z", date(2021, 10, 15)),
])
async def test_sip_daily_bars_end_15_minutes_before_the_wall_clock(
    server: AlpacaReplayServer, sleeps: list[float], alpaca: Path, now: str, end: str, last_day: date
) -> None:
    server.replay(alpaca / MULTI_BARS, method="GET", path=BARS)
    market = make_market(server, sleeps, now=lambda: utc(now))
    try:
        bars = await market.daily_bars(["AAPL"], as_of=utc(now), lookback=5)
    finally:
        await market.aclose()

    assert bars["AAPL"].days[-1] == last_day
    (req,) = server.received("GET", BARS)
    assert (req.param("feed"), req.param("end")) == ("sip", end)


async def test_a_refused_sip_subscription_is_a_data_error_naming_the_setting(
    market: AlpacaMarketData, server: AlpacaReplayServer
) -> None:
    server.replay(LOCAL / "error_403_sip_subscription.json", path=BARS)

    with pytest.raises(DataError, match=r"subscription does not permit querying.*set QUORUM_BROKER__BARS_FEED=iex"):
        await market.daily_bars(["AAPL"], as_of=utc("2021-10-16T00:00:00"), lookback=3)
    assert [r.param("feed") for r in server.received("GET", BARS)] == ["sip"]


async def test_iex_daily_bars_are_read_from_iex_with_one_warning_about_volumes(
    server: AlpacaReplayServer, sleeps: list[float], alpaca: Path
) -> None:
    server.replay(alpaca / MULTI_BARS, method="GET", path=BARS)
    with structlog.testing.capture_logs() as events:
        market = make_market(server, sleeps, bars_feed="iex")
        try:
            for _ in range(2):
                await market.daily_bars(["AAPL"], as_of=utc("2021-10-16T00:00:00"), lookback=3)
        finally:
            await market.aclose()

    assert [r.param("feed") for r in server.received("GET", BARS)] == ["iex", "iex"]
    assert [e["log_level"] for e in events if e["event"] == "alpaca_daily_bars_iex_volume"] == ["warning"]


def test_bars_feed_defaults_to_sip_and_refuses_other_values() -> None:
    assert AlpacaConfig(api_key=KEY, secret_key=SECRET).bars_feed == "sip"
    with pytest.raises(ConfigurationError, match="QUORUM_BROKER__BARS_FEED"):
        AlpacaConfig(api_key=KEY, secret_key=SECRET, bars_feed="delayed_sip")  # type: ignore[arg-type]


def test_the_live_container_passes_the_bars_feed_setting() -> None:
    from entrypoints.container import build_container
    from entrypoints.settings import BrokerSettings, Settings

    broker = BrokerSettings(provider="alpaca", alpaca_api_key=KEY, alpaca_secret_key=SECRET, bars_feed="iex")
    market = build_container(Settings(_env_file=None, broker=broker), "live").market()  # type: ignore[call-arg]

    assert "bars_feed='iex'" in repr(market)
    assert BrokerSettings().bars_feed == "sip"
