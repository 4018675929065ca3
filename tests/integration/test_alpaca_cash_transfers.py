"""AlpacaBroker.cash_transfers_since against a local server replaying tests/fixtures/alpaca (hand-written in
Alpaca's documented non-trade activity shape, see PROVENANCE.md there)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.alpaca import AlpacaBroker, AlpacaConfig
from domain.errors import BrokerError
from tests.integration.alpaca_replay_server import AlpacaReplayServer

pytestmark = pytest.mark.integration

KEY = "PKTEST7Q2W9E4R1T6Y3U"
SECRET = "sEcReT9x8c7v6b5n4m3k2j1h0gFdSaQwErTy"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "alpaca" / "activities_cash_transfers.json"
ACTIVITIES = "/v2/account/activities"


@pytest.fixture
def server() -> Iterator[AlpacaReplayServer]:
    with AlpacaReplayServer(api_key=KEY, secret_key=SECRET) as s:
        yield s


@pytest.fixture
async def broker(server: AlpacaReplayServer) -> AsyncIterator[AlpacaBroker]:
    async def no_sleep(_: float) -> None:
        return None

    config = AlpacaConfig(api_key=KEY, secret_key=SECRET, trading_url=server.url, timeout=2.0, max_retries=0)
    async with AlpacaBroker(config, sleep=no_sleep) as b:
        yield b


async def test_deposits_withdrawals_and_journals_are_read_with_their_time_and_exact_amount(
    broker: AlpacaBroker, server: AlpacaReplayServer
) -> None:
    server.replay(FIXTURE, path=ACTIVITIES)

    transfers = await broker.cash_transfers_since(datetime(2024, 6, 1, tzinfo=UTC))

    assert [(t.kind, t.amount, t.at) for t in transfers] == [
        ("CSD", Decimal(650), datetime(2024, 6, 3, 13, 30, tzinfo=UTC)),
        ("JNLC", Decimal("100.5"), datetime(2024, 6, 4, 15, 5, 12, 345000, tzinfo=UTC)),
        ("CSW", Decimal(-200), datetime(2024, 6, 6, 14, 0, tzinfo=UTC)),
    ]
    assert transfers[2].id.startswith("20240606140000000::") and transfers[1].description.startswith("journal")
    (req,) = server.received("GET", ACTIVITIES)
    assert req.param("activity_types") == "CSD,CSW,JNLC" and req.param("direction") == "asc"
    assert req.param("after") == "2024-05-31T00:00:00Z"


async def test_transfers_before_since_are_left_out(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    server.replay(FIXTURE, path=ACTIVITIES)

    transfers = await broker.cash_transfers_since(datetime(2024, 6, 4, 15, 5, 12, 345000, tzinfo=UTC))

    assert [t.kind for t in transfers] == ["JNLC", "CSW"]


async def test_a_second_page_is_asked_for_with_the_last_id(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    first = [{"id": f"20240603{i:09d}::0d6f6c2e-1f7a-4c1e-9a55-2b3c4d5e{i:04d}", "activity_type": "CSD",
              "date": "2024-06-03", "net_amount": "1"} for i in range(100)]
    second = json.loads(FIXTURE.read_text())["body"][:1]
    server.reply_json("GET", ACTIVITIES, first)
    server.reply_json("GET", ACTIVITIES, second, query={"page_token": first[-1]["id"]})

    transfers = await broker.cash_transfers_since(datetime(2024, 6, 1, tzinfo=UTC))

    assert len(transfers) == 101 and sum(t.amount for t in transfers) == Decimal(750)


async def test_an_unreadable_activity_is_a_broker_error(broker: AlpacaBroker, server: AlpacaReplayServer) -> None:
    server.reply_json("GET", ACTIVITIES, [{"id": "x", "activity_type": "CSD", "date": "2024-06-03"}])

    with pytest.raises(BrokerError, match="cash activity"):
        await broker.cash_transfers_since(datetime(2024, 6, 1, tzinfo=UTC))


async def test_a_naive_since_is_refused(broker: AlpacaBroker) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await broker.cash_transfers_since(datetime(2024, 6, 1))  # noqa: DTZ001
