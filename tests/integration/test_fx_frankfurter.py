"""FrankfurterRates against a local HTTP server answering like https://api.frankfurter.app/latest, and the
CurrencyDisplay on top of it (fetched once a day, a clear message when the service cannot be reached)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from adapters.fx import FrankfurterRates
from application.currency import CurrencyDisplay
from domain.currency import FxUnavailableError

pytestmark = pytest.mark.integration
T0 = datetime(2024, 6, 7, 15, 0, tzinfo=UTC)


class RateServer:
    """Answers GET /latest with `body` (and `status`), recording each request's query."""

    def __init__(self) -> None:
        self.status = 200
        self.body: Any = {"amount": 1.0, "base": "USD", "date": "2024-06-07", "rates": {"GBP": 0.78519}}
        self.queries: list[dict[str, list[str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                server.queries.append(parse_qs(parts.query))
                raw = (server.body if isinstance(server.body, str) else json.dumps(server.body)).encode()
                self.send_response(server.status if parts.path == "/latest" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> RateServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def server() -> Iterator[RateServer]:
    with RateServer() as s:
        yield s


def closed_port_url() -> str:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as probe:
        host, port = probe.server_address[:2]
    return f"http://{host!s}:{port}"


async def test_the_latest_rate_is_read_exactly(server: RateServer) -> None:
    rate = await FrankfurterRates(server.url).usd_to("gbp")

    assert (rate.quote, rate.rate, rate.on, rate.source) == ("GBP", Decimal("0.78519"), date(2024, 6, 7),
                                                             "frankfurter")
    assert server.queries == [{"from": ["USD"], "to": ["GBP"]}]
    assert rate.convert(Decimal(650)) == Decimal("510.37")


@pytest.mark.parametrize(("status", "body", "match"), [
    (503, {"message": "down"}, "answered HTTP 503"),
    (200, "<html>", "no usable USD->GBP rate"),
    (200, {"amount": 1.0, "base": "EUR", "date": "2024-06-07", "rates": {"GBP": 0.85}}, "no usable"),
    (200, {"amount": 1.0, "base": "USD", "date": "2024-06-07", "rates": {"EUR": 0.92}}, "no usable"),
    (200, {"amount": 1.0, "base": "USD", "date": "2024-06-07", "rates": {"GBP": -1}}, "no usable"),
])
async def test_a_bad_answer_is_fx_unavailable(server: RateServer, status: int, body: Any, match: str) -> None:
    server.status, server.body = status, body
    with pytest.raises(FxUnavailableError, match=match):
        await FrankfurterRates(server.url).usd_to("GBP")


async def test_an_unreachable_service_is_fx_unavailable() -> None:
    url = closed_port_url()
    with pytest.raises(FxUnavailableError, match=f"{url} could not be reached"):
        await FrankfurterRates(url, timeout=2).usd_to("GBP")


async def test_the_display_fetches_once_a_day(server: RateServer) -> None:
    display = CurrencyDisplay("GBP", rates=FrankfurterRates(server.url))

    first = await display.at(T0)
    again = await display.at(T0 + timedelta(hours=3))
    next_day = await display.at(T0 + timedelta(days=1))

    assert first.text(Decimal(650)) == "$650.00 (£510.37)" and again == first and next_day.shown
    assert len(server.queries) == 2


async def test_unreachable_without_a_configured_rate_shows_usd_and_says_why() -> None:
    display = CurrencyDisplay("GBP", rates=FrankfurterRates(closed_port_url(), timeout=2))

    shown = await display.at(T0)

    assert not shown.shown and shown.text(Decimal(650)) == "$650.00"
    assert "could not be reached" in shown.note() and "QUORUM_REPORTING__FX_RATE" in shown.note()
    assert shown.to_json(equity=Decimal(650))["problem"] == shown.problem


async def test_a_configured_rate_never_asks_the_service(server: RateServer) -> None:
    display = CurrencyDisplay("GBP", configured_rate=Decimal("0.8"), rates=FrankfurterRates(server.url))

    shown = await display.at(T0)

    assert shown.text(Decimal(650)) == "$650.00 (£520.00)" and server.queries == []
    assert shown.to_json(equity=Decimal(650)) == {
        "currency": "GBP", "rate": {"currency": "GBP", "rate": "0.8", "date": "2024-06-07", "source": "configured"},
        "equity": "520.00"}
