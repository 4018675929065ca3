"""`quorum data fetch` from the command line, with a user's settings pointed at the Alpaca-wire emulator replaying
the real bars of tests/fixtures/market: the files it writes are what `--data DIR` reads, a rerun skips what is
complete, an unknown symbol is reported without stopping the others, and missing keys are one line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from adapters.calendar import NyseCalendar
from adapters.inmemory.alpaca_emulator import AlpacaEmulator
from adapters.inmemory.market_data import ReplayMarketData
from entrypoints.cli import app

NY = ZoneInfo("America/New_York")
CAL = NyseCalendar()
MARKET = Path(__file__).resolve().parents[1] / "fixtures" / "market"
KEY, SECRET = "PKDATAFETCH000000000", "data-fetch-secret-00000"
FETCH = ["data", "fetch", "--start", "2016-01-01", "--end", "2016-06-30"]


@pytest.fixture(scope="module")
def market() -> ReplayMarketData:
    return ReplayMarketData([MARKET / "daily", MARKET / "context"], CAL)


@pytest.fixture
def emulator(market: ReplayMarketData) -> Iterator[AlpacaEmulator]:
    with AlpacaEmulator(market, CAL, datetime(2016, 7, 1, 18, tzinfo=NY), Decimal(10_000), api_key=KEY,
                        secret_key=SECRET) as emu:
        yield emu


def runner_for(emu: AlpacaEmulator) -> CliRunner:
    return CliRunner(env={**os.environ, "QUORUM_BROKER__ALPACA_API_KEY": KEY,
                          "QUORUM_BROKER__ALPACA_SECRET_KEY": SECRET, "QUORUM_BROKER__TRADING_URL": emu.url,
                          "QUORUM_BROKER__DATA_URL": emu.url})


def test_without_keys_it_names_the_settings_in_one_line_and_exits_2(tmp_path: Path) -> None:
    out = CliRunner(env=dict(os.environ)).invoke(app, [*FETCH, "--symbols", "AAPL", "--out", str(tmp_path)])

    assert out.exit_code == 2
    assert out.stderr.strip().splitlines() == [
        "error: quorum data fetch needs Alpaca keys: set QUORUM_BROKER__ALPACA_API_KEY and "
        "QUORUM_BROKER__ALPACA_SECRET_KEY (a free paper account's keys will do)"]
    assert list(tmp_path.iterdir()) == []


def test_fetches_into_files_the_backtest_reads_reports_an_unknown_symbol_and_skips_on_a_rerun(
    emulator: AlpacaEmulator, market: ReplayMarketData, tmp_path: Path
) -> None:
    runner = runner_for(emulator)

    out = runner.invoke(app, [*FETCH, "--symbols", "AAPL,ZZZZ, msft", "--out", str(tmp_path)])

    assert out.exit_code == 1, out.output
    assert "AAPL: 125 sessions 2016-01-04 → 2016-06-30, 125 fetched" in out.stderr
    assert "MSFT: 125 sessions" in out.stderr and "ZZZZ: unknown (unknown symbol)" in out.stderr
    assert "3/3" in out.stderr  # the progress bar over symbols
    assert "2 of 3 symbols stored, sessions 2016-01-04 → 2016-06-30" in out.stdout
    assert "not stored: ZZZZ (unknown: unknown symbol)" in out.stdout
    fetched = ReplayMarketData([tmp_path], CAL)
    assert fetched.symbols == ["AAPL", "MSFT"] and fetched.load_report.rows_skipped == 0
    for symbol in ("AAPL", "MSFT"):
        ours, theirs = fetched.series(symbol), market.series(symbol)
        assert ours is not None and theirs is not None
        lo = theirs.days.index(ours.days[0])
        assert ours.days == theirs.days[lo:lo + 125]
        assert list(ours.close) == list(theirs.close[lo:lo + 125])
    served = len(emulator.requests)

    again = runner.invoke(app, [*FETCH, "--symbols", "AAPL,MSFT", "--out", str(tmp_path), "--json"])

    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert [(s["symbol"], s["status"], s["stored"]) for s in summary["symbols"]] == [
        ("AAPL", "complete", 125), ("MSFT", "complete", 125)]
    assert summary["problems"] == [] and summary["directory"] == str(tmp_path.resolve())
    assert emulator.requests[served:] == []
