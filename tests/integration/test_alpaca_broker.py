"""AlpacaBroker against a local server replaying recorded Alpaca responses.

Every response comes from tests/fixtures/alpaca (PROVENANCE.md there says where each file comes from;
hand-written ones say so in their ``note``), so these tests run in every CI without ../shared.
"""

from __future__ import annotations

import copy
import json
import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog

from adapters.alpaca import AlpacaBroker, AlpacaConfig
from domain.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerUnavailableError,
    ConfigurationError,
    ForbiddenError,
    InsufficientBuyingPowerError,
    InsufficientQtyError,
    LiveTradingRefusedError,
    NotFoundError,
    OrderRejectedError,
    PatternDayTraderError,
    RateLimitedError,
    WashTradeError,
)
from domain.models.trading import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from domain.ports.broker import Broker
from tests.integration.alpaca_replay_server import AlpacaReplayServer, Reply

pytestmark = pytest.mark.integration

KEY = "PKTEST7Q2W9E4R1T6Y3U"
SECRET = "sEcReT9x8c7v6b5n4m3k2j1h0gFdSaQwErTy"
LOCAL = Path(__file__).resolve().parents[1] / "fixtures" / "alpaca"
ORDERS = "/v2/orders"
BY_CID = "/v2/orders:by_client_order_id"
FILLS = "/v2/account/activities/FILL"
HANG = Reply(body={}, delay=5)
PY = "alpaca-py/trading_trading_client_test_"
PARENT = "b5a5e4f0-5d1c-4b8e-9a39-5c3f1c1e7a10"
TAKE_PROFIT_LEG = "0c2e0ac4-4b8e-4a7d-9d43-1f3b9a4e2b11"
STOP_LEG = "6a1f5d1e-9f7b-4f2e-8e0e-2d7e5c4b3a22"


@pytest.fixture
def alpaca() -> Path:
    return LOCAL


def body_of(name: str) -> Any:
    return json.loads((LOCAL / name).read_text())["body"]


@pytest.fixture
def server() -> Iterator[AlpacaReplayServer]:
    with AlpacaReplayServer(api_key=KEY, secret_key=SECRET) as s:
        yield s


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
async def broker(server: AlpacaReplayServer, sleeps: list[float]) -> AsyncIterator[AlpacaBroker]:
    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    config = AlpacaConfig(api_key=KEY, secret_key=SECRET, trading_url=server.url, timeout=0.3, max_retries=2,
                          backoff_seconds=0.5)
    async with AlpacaBroker(config, sleep=fake_sleep) as b:
        yield b


def order_file(alpaca: Path, name: str) -> Path:
    return alpaca / f"{PY}order_routes__{name}__1.json"


def buy(cid: str = "q-1-AAPL", qty: str = "1", **kw: Any) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol="AAPL", side=Side.BUY, qty=Decimal(qty), **kw)


def floats_in(value: Any) -> list[Any]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in floats_in(v)]
    if isinstance(value, list):
        return [f for v in value for f in floats_in(v)]
    return []


# --- configuration: paper or live only from settings ---------------------------------------------------------


def test_live_trading_is_refused_without_the_acknowledgement() -> None:
    with pytest.raises(LiveTradingRefusedError, match="QUORUM_LIVE_TRADING=I_UNDERSTAND"):
        AlpacaConfig.from_values(KEY, SECRET, paper=False, live_trading_ack="yes")
    with pytest.raises(LiveTradingRefusedError):
        AlpacaConfig(api_key=KEY, secret_key=SECRET, paper=False)


def test_live_trading_with_the_acknowledgement_uses_the_live_api() -> None:
    config = AlpacaConfig.from_values(KEY, SECRET, paper=False, live_trading_ack="I_UNDERSTAND")
    assert config.trading_base_url == "https://api.alpaca.markets"
    assert AlpacaConfig.from_values(KEY, SECRET).trading_base_url == "https://paper-api.alpaca.markets"
    assert not AlpacaBroker(config).is_paper


def test_paper_mode_refuses_a_live_trading_url_and_missing_keys() -> None:
    with pytest.raises(ConfigurationError, match="points at the live API"):
        AlpacaConfig(api_key=KEY, secret_key=SECRET, trading_url="https://api.alpaca.markets")
    with pytest.raises(ConfigurationError, match="QUORUM_BROKER__ALPACA_SECRET_KEY"):
        AlpacaConfig.from_values(KEY, None)


def test_keys_stay_out_of_reprs() -> None:
    config = AlpacaConfig(api_key=KEY, secret_key=SECRET)
    text = repr(config) + repr(AlpacaBroker(config))
    assert KEY not in text and SECRET not in text


# --- reads ---------------------------------------------------------------------------------------------------


async def test_account_maps_money_to_decimal(broker: AlpacaBroker, server: AlpacaReplayServer, alpaca: Path) -> None:
    server.replay(alpaca / f"{PY}account_routes__test_get_account__1.json")

    account = await broker.account()

    assert isinstance(broker, Broker) and broker.is_paper
    assert (account.cash, account.equity, account.buying_power) == (
        Decimal("-23140.2"), Decimal("103820.56"), Decimal("262113.632"))
    assert account.day_trade_count == 0 and account.status == "ACTIVE" and not account.trading_blocked
    assert account.last_equity == Decimal("103529.24")
    (req,) = server.received("GET", "/v2/account")
    assert req.had_keys and not any(h.startswith("apca-") for h in req.headers)


async def test_positions(broker: AlpacaBroker, server: AlpacaReplayServer, alpaca: Path) -> None:
    server.replay(alpaca / f"{PY}position_routes__test_get_all_positions__1.json")

    (pos,) = await broker.positions()

    assert (pos.symbol, pos.qty, pos.avg_entry_price, pos.fractional) == ("AAPL", Decimal(5), Decimal("100.0"), False)
    assert pos.qty_available is None and pos.opened_at is None and pos.stop_price is None


async def test_positions_report_the_shares_not_held_by_open_orders(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    server.reply_json("GET", "/v2/positions", [body_of("alpaca-docs/entity__position.json")])

    (pos,) = await broker.positions()

    assert (pos.symbol, pos.qty, pos.qty_available) == ("AAPL", Decimal(5), Decimal(4))
    assert pos.opened_at is None and pos.stop_price is None


async def test_open_orders_asks_for_open_status(broker: AlpacaBroker, server: AlpacaReplayServer, alpaca: Path) -> None:
    server.replay(order_file(alpaca, "test_get_orders"))

    (order,) = await broker.open_orders()

    assert (order.symbol, order.status, order.request.type, order.request.qty) == (
        "SPY", OrderStatus.NEW, OrderType.STOP, Decimal(1))
    assert order.submitted_at == datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC) and order.parent_id is None
    req = server.received("GET", ORDERS)[0]
    assert (req.param("status"), req.param("nested")) == ("open", "true")


async def test_get_by_client_id_and_unknown_id(broker: AlpacaBroker, server: AlpacaReplayServer, alpaca: Path) -> None:
    cid = "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4"
    server.replay(order_file(alpaca, "test_get_order_by_client_id"), query={"client_order_id": cid})
    server.replay(LOCAL / "error_404_order_not_found.json", path=BY_CID, query={"client_order_id": "q-unknown"})

    order = await broker.get_by_client_id(cid)

    assert order is not None and order.broker_order_id == "61e69015-8549-4bfd-b9c3-01e75843f47d"
    assert order.client_order_id == cid and order.status is OrderStatus.ACCEPTED
    assert await broker.get_by_client_id("q-unknown") is None


async def test_fills_since_maps_activities_to_client_order_ids(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    server.replay(LOCAL / "activities_fill.json", path="/v2/account/activities/FILL")
    server.replay(LOCAL / "order_filled.json")
    server.replay(LOCAL / "order_fractional_get.json")
    since = datetime(2024, 6, 5, 14, 31, 2, 500000, tzinfo=UTC)

    fills = await broker.fills_since(since)

    assert [(f.client_order_id, f.side, f.qty, f.price) for f in fills] == [
        ("q-20240605-1-AAPL", Side.BUY, Decimal("1"), Decimal("190.43")),
        ("q-20240605-1-NVDA", Side.SELL, Decimal("0.512345678"), Decimal("1224.4")),
    ]
    req = server.received("GET", "/v2/account/activities/FILL")[0]
    assert req.param("after") == "2024-06-05T14:31:01.500000Z" and req.param("direction") == "asc"
    assert len(server.received("GET", "/v2/orders/b5a5e4f0-5d1c-4b8e-9a39-5c3f1c1e7a10")) == 1


# --- submitting orders ---------------------------------------------------------------------------------------


async def test_market_order_sends_strings_and_client_order_id(
    broker: AlpacaBroker, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(order_file(alpaca, "test_market_order"))

    order = await broker.submit(buy(qty="1"))

    (req,) = server.received("POST", ORDERS)
    assert req.json == {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day",
                        "client_order_id": "q-1-AAPL"}
    assert order.broker_order_id == "61e69015-8549-4bfd-b9c3-01e75843f47d" and order.status is OrderStatus.ACCEPTED


async def test_limit_order_sends_the_price_as_a_cent_string(
    broker: AlpacaBroker, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(order_file(alpaca, "test_limit_order"))

    order = await broker.submit(buy(qty="2", type=OrderType.LIMIT, limit_price=Decimal("187.3500")))

    (req,) = server.received("POST", ORDERS)
    assert req.json["limit_price"] == "187.35" and req.json["type"] == "limit" and req.json["qty"] == "2"
    assert floats_in(req.json) == []
    assert order.request.limit_price == Decimal(300)


async def test_bracket_order_carries_stop_loss_and_take_profit(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    server.replay(LOCAL / "order_bracket.json")
    request = buy(cid="q-20240605-1-AAPL", qty="3", type=OrderType.LIMIT, limit_price=Decimal("190.50"),
                  stop_price=Decimal("180.25"), take_profit_price=Decimal("210.00"), time_in_force=TimeInForce.GTC)

    order = await broker.submit(request)

    (req,) = server.received("POST", ORDERS)
    assert req.json["order_class"] == "bracket"
    assert req.json["stop_loss"] == {"stop_price": "180.25"}
    assert req.json["take_profit"] == {"limit_price": "210"}
    assert req.json["time_in_force"] == "gtc" and floats_in(req.json) == []
    assert (order.request.stop_price, order.request.take_profit_price) == (Decimal("180.25"), Decimal("210"))


async def test_stop_without_take_profit_is_sent_as_oto(
    broker: AlpacaBroker, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(order_file(alpaca, "test_market_order"))

    await broker.submit(buy(qty="4", stop_price=Decimal("171.0")))

    (req,) = server.received("POST", ORDERS)
    assert req.json["order_class"] == "oto" and req.json["stop_loss"] == {"stop_price": "171"}
    assert "take_profit" not in req.json


@pytest.mark.parametrize(("qty", "flagged"), [("0.512345678", False), ("2", True)])
async def test_fractional_order_is_a_plain_day_order_without_legs(
    broker: AlpacaBroker, server: AlpacaReplayServer, qty: str, flagged: bool
) -> None:
    server.replay(LOCAL / "order_fractional.json")
    request = OrderRequest(client_order_id="q-20240605-1-NVDA", symbol="NVDA", side=Side.BUY, qty=Decimal(qty),
                           stop_price=Decimal("1100"), take_profit_price=Decimal("1400"),
                           time_in_force=TimeInForce.GTC, fractional=flagged)

    order = await broker.submit(request)

    (req,) = server.received("POST", ORDERS)
    assert req.json["time_in_force"] == "day" and req.json["qty"] == qty
    assert not {"order_class", "stop_loss", "take_profit", "legs", "stop_price"} & set(req.json)
    assert order.request.fractional and order.request.stop_price is None


async def test_a_limit_order_without_price_is_refused_before_sending(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    with pytest.raises(OrderRejectedError, match="nothing was sent"):
        await broker.submit(buy(type=OrderType.LIMIT))
    assert server.received() == []


# --- errors --------------------------------------------------------------------------------------------------


async def test_403_insufficient_buying_power(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    server.replay(LOCAL / "error_403_insufficient_buying_power.json")

    with pytest.raises(InsufficientBuyingPowerError, match=r"insufficient buying power.*code 40310000"):
        await broker.submit(buy(qty="3"))
    assert len(server.received("POST", ORDERS)) == 1 and server.received("GET") == []


async def test_other_403_is_forbidden(broker: AlpacaBroker, server: AlpacaReplayServer, alpaca: Path) -> None:
    server.replay(alpaca / "alpaca-trade-api-python/test_rest__test_errors__2.json", path=ORDERS)

    with pytest.raises(ForbiddenError, match=r"Order failed \(code 10041\)"):
        await broker.submit(buy())


async def test_422_bad_order_carries_alpacas_message(
    broker: AlpacaBroker, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(alpaca / "alpaca-trade-api-python/test_rest__test_errors__3.json")

    with pytest.raises(OrderRejectedError, match=r"qty or notional is required \(code 40010001\)"):
        await broker.submit(buy())
    assert len(server.received("POST", ORDERS)) == 1


async def test_401_message_is_clear_and_no_key_leaks_into_logs_or_errors(
    server: AlpacaReplayServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key, wrong_secret = "PKLEAKCHECK123456789", "leak-check-secret-abcdefghijklmnop"
    config = AlpacaConfig(api_key=wrong_key, secret_key=wrong_secret, trading_url=server.url, max_retries=1)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # configure_logging (run by other tests) quiets httpx
    with structlog.testing.capture_logs() as events:
        async with AlpacaBroker(config) as broker:
            with pytest.raises(BrokerAuthError) as err:
                await broker.account()

    assert str(err.value).startswith(
        "Alpaca rejected the API key (401): check QUORUM_BROKER__ALPACA_API_KEY/SECRET_KEY and paper/live mode")
    assert "request is not authorized" in str(err.value)
    assert any(e["event"] == "alpaca_broker_ready" for e in events) and "401" in caplog.text  # logs were captured
    text = "".join(traceback.format_exception(err.value)) + repr(err.value) + repr(events) + caplog.text
    assert wrong_key not in text and wrong_secret not in text
    assert server.received("GET", "/v2/account")[0].had_keys


async def test_a_key_echoed_back_by_the_server_is_scrubbed(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    server.reply_json("POST", ORDERS, {"code": 40310000, "message": f"key {KEY} may not trade"}, status=403)

    with pytest.raises(ForbiddenError) as err:
        await broker.submit(buy())
    assert KEY not in str(err.value) and "key *** may not trade" in str(err.value)


async def test_429_on_submit_waits_retry_after_and_resends(
    broker: AlpacaBroker, server: AlpacaReplayServer, sleeps: list[float], alpaca: Path
) -> None:
    limited = server.fixture_reply(LOCAL / "error_429_rate_limit.json", headers={"Retry-After": "2"})
    server.route("POST", ORDERS, limited, server.fixture_reply(order_file(alpaca, "test_market_order")))

    order = await broker.submit(buy())

    assert order.status is OrderStatus.ACCEPTED
    assert sleeps == [2.0] and len(server.received("POST", ORDERS)) == 2
    assert server.received("GET", BY_CID) == []


async def test_429_on_submit_gives_up_after_the_maximum(
    broker: AlpacaBroker, server: AlpacaReplayServer, sleeps: list[float]
) -> None:
    server.route("POST", ORDERS, server.fixture_reply(LOCAL / "error_429_rate_limit.json"))

    with pytest.raises(RateLimitedError, match="gave up after 3 attempts"):
        await broker.submit(buy())
    assert sleeps == [0.5, 1.0] and len(server.received("POST", ORDERS)) == 3


async def test_500_on_reads_is_retried_then_broker_unavailable(
    broker: AlpacaBroker, server: AlpacaReplayServer, sleeps: list[float]
) -> None:
    server.replay(LOCAL / "error_500_internal.json")

    with pytest.raises(BrokerUnavailableError, match=r"HTTP 500.*internal server error occurred \(code 50010000\)"):
        await broker.account()
    assert len(server.received("GET", "/v2/account")) == 3 and sleeps == [0.5, 1.0]


async def test_a_hanging_read_times_out_as_broker_unavailable(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    server.route("GET", "/v2/positions", HANG)

    with pytest.raises(BrokerUnavailableError, match=r"did not answer GET /v2/positions within 0\.3s"):
        await broker.positions()
    assert len(server.received("GET", "/v2/positions")) == 3


# --- idempotency ---------------------------------------------------------------------------------------------


async def test_duplicate_client_order_id_returns_the_existing_order(
    broker: AlpacaBroker, server: AlpacaReplayServer, alpaca: Path
) -> None:
    cid = "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4"
    server.replay(LOCAL / "error_422_duplicate_client_order_id.json")
    server.replay(order_file(alpaca, "test_get_order_by_client_id"), query={"client_order_id": cid})

    order = await broker.submit(buy(cid=cid))

    assert order.broker_order_id == "61e69015-8549-4bfd-b9c3-01e75843f47d"
    assert len(server.received("POST", ORDERS)) == 1
    assert [r.param("client_order_id") for r in server.received("GET", BY_CID)] == [cid]


async def test_a_timed_out_submit_that_reached_alpaca_is_not_sent_again(
    broker: AlpacaBroker, server: AlpacaReplayServer, sleeps: list[float], alpaca: Path
) -> None:
    cid = "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4"
    server.route("POST", ORDERS, HANG)
    server.replay(order_file(alpaca, "test_get_order_by_client_id"), query={"client_order_id": cid})

    order = await broker.submit(buy(cid=cid))

    assert order.client_order_id == cid and order.broker_order_id == "61e69015-8549-4bfd-b9c3-01e75843f47d"
    assert len(server.received("POST", ORDERS)) == 1 and sleeps == []


async def test_a_timed_out_submit_that_did_not_arrive_is_resent_after_the_lookup(
    broker: AlpacaBroker, server: AlpacaReplayServer, sleeps: list[float], alpaca: Path
) -> None:
    server.route("POST", ORDERS, HANG, server.fixture_reply(order_file(alpaca, "test_market_order")))
    server.replay(LOCAL / "error_404_order_not_found.json", path=BY_CID)

    order = await broker.submit(buy())

    assert order.status is OrderStatus.ACCEPTED
    assert [(r.method, r.path) for r in server.received()] == [("POST", ORDERS), ("GET", BY_CID), ("POST", ORDERS)]
    assert sleeps == [0.5]


async def test_a_500_on_submit_is_looked_up_before_resending(
    broker: AlpacaBroker, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.replay(LOCAL / "error_500_internal.json", path=ORDERS, method="POST")
    server.replay(order_file(alpaca, "test_get_order_by_client_id"))

    order = await broker.submit(buy(cid="eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4"))

    assert order.broker_order_id == "61e69015-8549-4bfd-b9c3-01e75843f47d"
    assert len(server.received("POST", ORDERS)) == 1


async def test_submit_timeouts_give_up_after_the_maximum_with_a_lookup_each_time(
    broker: AlpacaBroker, server: AlpacaReplayServer, sleeps: list[float]
) -> None:
    server.route("POST", ORDERS, HANG)
    server.replay(LOCAL / "error_404_order_not_found.json", path=BY_CID)

    with pytest.raises(BrokerUnavailableError, match=r"did not answer POST /v2/orders.*gave up after 3 attempts"):
        await broker.submit(buy())
    assert [r.method for r in server.received()] == ["POST", "GET"] * 3


async def test_an_unreadable_submit_answer_is_not_half_parsed(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    server.reply_json("POST", ORDERS, {"id": "61e69015-8549-4bfd-b9c3-01e75843f47d", "status": "accepted"})
    server.replay(LOCAL / "error_404_order_not_found.json", path=BY_CID)

    with pytest.raises(BrokerError, match="accepted order q-1-AAPL but its answer could not be read") as err:
        await broker.submit(buy())
    assert type(err.value) is BrokerError
    assert len(server.received("POST", ORDERS)) == 1


async def test_an_unreadable_submit_answer_is_replaced_by_the_order_found_by_client_id(
    broker: AlpacaBroker, server: AlpacaReplayServer, alpaca: Path
) -> None:
    server.reply_json("POST", ORDERS, {"id": "61e69015-8549-4bfd-b9c3-01e75843f47d"})
    server.replay(order_file(alpaca, "test_get_order_by_client_id"))

    order = await broker.submit(buy(cid="eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4"))

    assert order.request.qty == Decimal(1) and order.status is OrderStatus.ACCEPTED


# --- cancel --------------------------------------------------------------------------------------------------

OID = "b5a5e4f0-5d1c-4b8e-9a39-5c3f1c1e7a10"


async def test_cancel_sends_delete_and_confirms_the_order_is_canceled(
    broker: AlpacaBroker, server: AlpacaReplayServer, sleeps: list[float]
) -> None:
    server.route("DELETE", f"{ORDERS}/{OID}", Reply(status=204))
    server.replay(LOCAL / "order_canceled.json")

    await broker.cancel(OID)

    assert [r.method for r in server.received(path=f"{ORDERS}/{OID}")] == ["DELETE", "GET"] and sleeps == []


async def test_cancel_waits_while_alpaca_says_pending_cancel(
    broker: AlpacaBroker, server: AlpacaReplayServer, sleeps: list[float]
) -> None:
    pending = server.fixture_reply(LOCAL / "order_pending_cancel.json")
    server.route("DELETE", f"{ORDERS}/{OID}", Reply(status=204))
    server.route("GET", f"{ORDERS}/{OID}", pending, pending, server.fixture_reply(LOCAL / "order_canceled.json"))

    await broker.cancel(OID)

    assert len(server.received("GET", f"{ORDERS}/{OID}")) == 3
    assert sleeps == [0.1, 0.2]


async def test_cancel_returns_when_the_order_filled_before_the_cancel_took_effect(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    server.route("DELETE", f"{ORDERS}/{OID}", Reply(status=204))
    server.route("GET", f"{ORDERS}/{OID}", server.fixture_reply(LOCAL / "order_pending_cancel.json"),
                 server.fixture_reply(LOCAL / "order_filled.json"))

    await broker.cancel(OID)

    order = await broker.get_order(OID)
    assert order is not None and order.status is OrderStatus.FILLED and order.filled_qty == Decimal(3)


async def test_cancel_not_confirmed_after_the_last_check_is_broker_unavailable(
    broker: AlpacaBroker, server: AlpacaReplayServer, sleeps: list[float]
) -> None:
    server.route("DELETE", f"{ORDERS}/{OID}", Reply(status=204))
    server.replay(LOCAL / "order_pending_cancel.json")

    with pytest.raises(BrokerUnavailableError, match=r"still pending_cancel after 6 checks.*get_order"):
        await broker.cancel(OID)
    assert len(server.received("GET", f"{ORDERS}/{OID}")) == 6
    assert sleeps == [0.1, 0.2, 0.4, 0.8, 1.0]


async def test_cancel_unknown_order_is_not_found(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    server.route("DELETE", f"{ORDERS}/{OID}", Reply(status=404, body={"code": 40410000, "message": "order not found"}))

    with pytest.raises(NotFoundError, match="order not found"):
        await broker.cancel(OID)


async def test_cancel_of_an_already_canceled_order_is_done(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    server.replay(LOCAL / "error_422_not_cancelable.json")
    server.replay(LOCAL / "order_canceled.json")

    await broker.cancel(OID)


async def test_cancel_of_a_filled_order_is_rejected(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    server.replay(LOCAL / "error_422_not_cancelable.json")
    server.replay(LOCAL / "order_filled.json")

    with pytest.raises(OrderRejectedError, match=r"order is not cancelable \(code 42210000\)"):
        await broker.cancel(OID)


# --- fills: a fresh database, paging, exits -------------------------------------------------------------------


async def test_a_fresh_database_reads_every_fill_without_an_after_bound(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    server.replay(LOCAL / "activities_fill.json", path=FILLS)
    server.replay(LOCAL / "order_filled.json")
    server.replay(LOCAL / "order_fractional_get.json")

    fills = await broker.fills_since(datetime.min.replace(tzinfo=UTC))

    assert [(f.symbol, f.qty, f.at) for f in fills] == [
        ("AAPL", Decimal(2), datetime(2024, 6, 5, 14, 31, 2, 456000, tzinfo=UTC)),
        ("AAPL", Decimal(1), datetime(2024, 6, 5, 14, 31, 2, 789000, tzinfo=UTC)),
        ("NVDA", Decimal("0.512345678"), datetime(2024, 6, 5, 15, 0, 0, 123000, tzinfo=UTC)),
    ]
    (req,) = server.received("GET", FILLS)
    assert req.param("after") is None and req.param("direction") == "asc"


async def test_fills_since_refuses_a_naive_datetime(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await broker.fills_since(datetime(2024, 6, 5, 14, 0))  # noqa: DTZ001 - naive on purpose: it must be refused
    assert server.received() == []


async def test_fills_are_paged_with_the_last_activity_id_and_come_back_oldest_first(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    template = body_of("activities_fill.json")[1]
    activities = [
        {**template, "id": f"20240605{143000000 + i:09d}::8efc7b9a-8b2b-4000-9955-{i:012d}",
         "transaction_time": f"2024-06-05T14:{30 + i // 60:02d}:{i % 60:02d}.000Z", "qty": "1"}
        for i in range(101)
    ]
    first, second = activities[:100], activities[100:]
    server.reply_json("GET", FILLS, first)
    server.reply_json("GET", FILLS, second, query={"page_token": first[-1]["id"]})
    server.replay(LOCAL / "order_filled.json")

    fills = await broker.fills_since(datetime(2024, 6, 5, 14, 0, tzinfo=UTC))

    assert len(fills) == 101 and [f.at for f in fills] == sorted(f.at for f in fills)
    assert [r.param("page_token") for r in server.received("GET", FILLS)] == [None, first[-1]["id"]]
    assert len(server.received("GET", f"{ORDERS}/{PARENT}")) == 1


async def test_exit_fills_say_whether_a_stop_or_a_take_profit_filled(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    server.replay(LOCAL / "activities_fill_exits.json", path=FILLS)
    server.replay(LOCAL / "order_leg_stop_filled.json", path=f"{ORDERS}/{STOP_LEG}")
    server.replay(LOCAL / "order_leg_take_profit_filled.json", path=f"{ORDERS}/{TAKE_PROFIT_LEG}")
    server.replay(LOCAL / "order_stop_filled.json")

    fills = await broker.fills_since(datetime(2024, 6, 6, tzinfo=UTC))

    assert [(f.client_order_id, f.side, f.qty, f.price, f.reason) for f in fills] == [
        (STOP_LEG, Side.SELL, Decimal(3), Decimal("180.1"), "protective stop"),
        (TAKE_PROFIT_LEG, Side.SELL, Decimal(3), Decimal(210), "take profit"),
        ("q-20240607-1-NVDA-stop", Side.SELL, Decimal("0.5"), Decimal("1099.5"), "protective stop"),
    ]
    assert all(r.param("nested") == "true" for r in server.received("GET") if r.path.startswith(f"{ORDERS}/"))


# --- bracket legs ----------------------------------------------------------------------------------------------


async def test_open_orders_list_each_bracket_leg_with_its_parent_id(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    server.replay(LOCAL / "orders_open_nested.json", path=ORDERS, query={"status": "open"})

    orders = await broker.open_orders()

    assert [(o.broker_order_id, o.parent_id, o.request.type, o.status) for o in orders] == [
        (TAKE_PROFIT_LEG, PARENT, OrderType.LIMIT, OrderStatus.NEW),
        (STOP_LEG, PARENT, OrderType.STOP, OrderStatus.ACCEPTED),
        ("3f0c7a55-1d2e-4b6f-8a9b-0c1d2e3f4a55", None, OrderType.LIMIT, OrderStatus.ACCEPTED),
    ]
    stop = orders[1]
    assert stop.is_leg and stop.client_order_id == STOP_LEG and stop.request.stop_price == Decimal("180.25")
    assert server.received("GET", ORDERS)[0].param("nested") == "true"


async def test_a_leg_read_by_id_names_its_parent(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    server.replay(LOCAL / "order_leg_stop_held.json", path=f"{ORDERS}/{STOP_LEG}")
    server.reply_json("GET", ORDERS, [body_of("order_bracket.json")], query={"status": "all"})

    order = await broker.get_order(STOP_LEG)
    again = await broker.get_order(STOP_LEG)

    assert order is not None and order.parent_id == PARENT and order.request.side is Side.SELL
    assert again == order
    (search,) = server.received("GET", ORDERS)
    assert (search.param("nested"), search.param("symbols")) == ("true", "AAPL")


async def test_a_leg_read_by_its_client_order_id_names_its_parent(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    server.replay(LOCAL / "order_leg_stop_held.json", path=BY_CID, query={"client_order_id": STOP_LEG})
    server.replay(LOCAL / "order_leg_stop_held.json", path=f"{ORDERS}/{STOP_LEG}")
    server.reply_json("GET", ORDERS, [body_of("order_bracket.json")], query={"status": "all"})

    order = await broker.get_by_client_id(STOP_LEG)

    assert order is not None and (order.broker_order_id, order.parent_id) == (STOP_LEG, PARENT)


async def test_a_submitted_bracket_is_the_parent_and_its_legs_are_known_afterwards(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    server.replay(LOCAL / "order_bracket.json")
    server.replay(LOCAL / "order_leg_stop_held.json", path=f"{ORDERS}/{STOP_LEG}")
    request = buy(cid="q-20240605-1-AAPL", qty="3", type=OrderType.LIMIT, limit_price=Decimal("190.50"),
                  stop_price=Decimal("180.25"), take_profit_price=Decimal("210.00"), time_in_force=TimeInForce.GTC)

    parent = await broker.submit(request)
    leg = await broker.get_order(STOP_LEG)

    assert parent.parent_id is None and parent.broker_order_id == PARENT
    assert leg is not None and leg.parent_id == PARENT
    assert server.received("GET", ORDERS) == []


async def test_get_order_of_an_unknown_id_is_none(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    server.replay(LOCAL / "error_404_order_not_found.json", path=f"{ORDERS}/{OID}")

    assert await broker.get_order(OID) is None


# --- user protections ------------------------------------------------------------------------------------------


async def test_a_sell_of_shares_held_by_open_orders_is_insufficient_qty_with_alpacas_details(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    server.replay(LOCAL / "error_403_insufficient_qty.json")
    sell = OrderRequest(client_order_id="q-2-AAPL", symbol="AAPL", side=Side.SELL, qty=Decimal(3))

    with pytest.raises(InsufficientQtyError, match=r"held by open orders.*held_for_orders=3") as err:
        await broker.submit(sell)

    assert isinstance(err.value, ForbiddenError)
    assert (err.value.symbol, err.value.available, err.value.held_for_orders) == ("AAPL", Decimal(0), Decimal(3))
    assert err.value.related_orders == (STOP_LEG, TAKE_PROFIT_LEG)
    assert len(server.received("POST", ORDERS)) == 1 and server.received("GET") == []


@pytest.mark.parametrize("fixture", ["error_422_wash_trade.json", "error_403_wash_trade.json"])
async def test_a_potential_wash_trade_is_refused_as_such(
    broker: AlpacaBroker, server: AlpacaReplayServer, fixture: str
) -> None:
    server.replay(LOCAL / fixture)

    with pytest.raises(WashTradeError, match="potential wash trade detected"):
        await broker.submit(buy())
    assert len(server.received("POST", ORDERS)) == 1 and server.received("GET") == []


async def test_pattern_day_trader_protection_is_its_own_error(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    server.replay(LOCAL / "error_403_pattern_day_trading.json")

    with pytest.raises(PatternDayTraderError, match=r"pattern day trading protection \(code 40310100\)"):
        await broker.submit(buy())


# --- time in force of entries with a stop ----------------------------------------------------------------------


@pytest.mark.parametrize("tif", [TimeInForce.GTC, TimeInForce.DAY])
async def test_a_whole_share_entry_with_a_stop_is_sent_with_its_own_time_in_force(
    broker: AlpacaBroker, server: AlpacaReplayServer, alpaca: Path, tif: TimeInForce
) -> None:
    server.replay(order_file(alpaca, "test_market_order"))

    await broker.submit(buy(qty="4", stop_price=Decimal("171.0"), time_in_force=tif))

    (req,) = server.received("POST", ORDERS)
    assert (req.json["order_class"], req.json["time_in_force"]) == ("oto", tif.value)


# --- answers alpaca-py's models reject -------------------------------------------------------------------------


async def test_an_order_alpaca_py_rejects_is_a_broker_error_naming_the_field(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    bad = copy.deepcopy(body_of("order_canceled.json"))
    bad["status"] = "teleported"
    server.reply_json("GET", ORDERS, [bad])

    with pytest.raises(BrokerError, match=r"alpaca-py's Order rejects \(status: "):
        await broker.open_orders()


async def test_an_account_alpaca_py_rejects_is_a_broker_error(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    account = dict(body_of(f"{PY}account_routes__test_get_account__1.json"))
    del account["account_number"]
    server.reply_json("GET", "/v2/account", account)

    with pytest.raises(BrokerError, match=r"alpaca-py's TradeAccount rejects \(account_number: Field required"):
        await broker.account()
