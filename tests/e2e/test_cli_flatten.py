"""`quorum flatten`: asks before doing anything, and with --yes cancels and closes everything at the broker
(here the Alpaca-wire emulator, reached through the real Alpaca adapters, as a user's settings would)."""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
from typer.testing import CliRunner

from adapters.calendar import NyseCalendar
from adapters.inmemory.alpaca_emulator import AlpacaEmulator
from adapters.inmemory.market_data import SyntheticMarket
from entrypoints.cli import app

NY = ZoneInfo("America/New_York")
CAL = NyseCalendar()
KEY, SECRET = "PKFLATTEN0000000000", "flatten-secret-000000"


def test_flatten_asks_first_and_does_nothing_on_no(pg_url: str) -> None:
    runner = CliRunner(env={**os.environ, "DATABASE_URL": pg_url})
    out = runner.invoke(app, ["flatten", "--scope", "test:flatten-no"], input="n\n")
    assert out.exit_code == 1 and "Cancel every order and close every position" in out.output
    assert "nothing done" in out.output
    status = runner.invoke(app, ["trading", "status", "--json", "--scope", "test:flatten-no"])
    assert json.loads(status.stdout) == {"paused": False}


def test_flatten_yes_closes_every_position_through_the_alpaca_adapters(pg_url: str) -> None:
    market = SyntheticMarket(seed=4, n_symbols=3, start=date(2023, 6, 1), end=date(2024, 3, 29), calendar=CAL,
                             default_fractionable=False)
    sym = market.stock_symbols[0]
    headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    with AlpacaEmulator(market, CAL, datetime(2024, 3, 5, 10, tzinfo=NY), Decimal(5000), api_key=KEY,
                        secret_key=SECRET) as emu, httpx.Client(base_url=emu.url, headers=headers) as http:
        last = float(emu.exchange.last_prices[sym])
        order = {"symbol": sym, "qty": "2", "side": "buy", "type": "market", "time_in_force": "gtc",
                 "order_class": "oto", "stop_loss": {"stop_price": f"{last * 0.9:.2f}"}}
        assert http.post("/v2/orders", json=order).status_code == 200
        emu.advance_to(datetime(2024, 3, 5, 10, 5, tzinfo=NY))
        assert [p["qty"] for p in http.get("/v2/positions").json()] == ["2"]
        env = {**os.environ, "DATABASE_URL": pg_url, "QUORUM_BROKER__PROVIDER": "alpaca",
               "QUORUM_BROKER__ALPACA_API_KEY": KEY, "QUORUM_BROKER__ALPACA_SECRET_KEY": SECRET,
               "QUORUM_BROKER__TRADING_URL": emu.url, "QUORUM_BROKER__DATA_URL": emu.url}
        out = CliRunner(env=env).invoke(app, ["flatten", "--yes", "--json", "--by", "ana", "--scope",
                                              "test:flatten-yes"])
        assert out.exit_code == 0, out.output
        result = json.loads(out.stdout)
        assert [s["symbol"] for s in result["sells"]] == [sym] and len(result["cancelled"]) == 1
        assert result["failed"] == [] and "trading paused" in result["message"]
        emu.advance_to(datetime(2024, 3, 5, 10, 10, tzinfo=NY))
        assert http.get("/v2/positions").json() == []
        status = CliRunner(env={**os.environ, "DATABASE_URL": pg_url}).invoke(
            app, ["trading", "status", "--json", "--scope", "test:flatten-yes"])
        assert json.loads(status.stdout) == {"paused": True}


def test_the_kill_switch_works_on_a_live_account_without_a_go_live_record(pg_url: str, tmp_path: object) -> None:
    """A lost or stale go-live record (or a missing acknowledgement) must never block closing real positions."""
    env = {**os.environ, "DATABASE_URL": pg_url, "QUORUM_BROKER__PROVIDER": "alpaca", "QUORUM_BROKER__PAPER": "false",
           "QUORUM_BROKER__ALPACA_API_KEY": KEY, "QUORUM_BROKER__ALPACA_SECRET_KEY": SECRET,
           "QUORUM_DATA_DIR": str(tmp_path)}
    out = CliRunner(env=env).invoke(app, ["flatten", "--scope", "test:flatten-live"], input="n\n")
    assert "LIVE (real money)" in out.output and "nothing done" in out.output, out.output
    assert out.exit_code == 1
