"""The container's discovery outside the synthetic market (Alpaca, CSV replay): sectors from the shipped S&P 500 map,
market caps from QUORUM_DISCOVERY__FUNDAMENTALS_FILE; without that file the market-cap filter is skipped with
its reason instead of rejecting every symbol."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from dependency_injector import providers

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.market_data import DailyBarMarketData, SyntheticMarket
from application.discovery.service import DiscoveryService
from domain.errors import ConfigurationError
from entrypoints.api.shapes import discovery_run_json
from entrypoints.commands.discover import _print_run
from entrypoints.container import build_container
from entrypoints.settings import Settings, load_settings

CAL = NyseCalendar()
DAY = date(2026, 11, 30)  # after the shipped map's date (2026-08-08)
TICKERS = ("AAPL", "MSFT", "JPM", "XOM", "JNJ", "PG", "NEE", "AMT", "LIN", "CAT", "GOOGL", "AMZN")


@pytest.fixture(scope="module")
def market() -> DailyBarMarketData:
    """A synthetic market whose stocks carry real tickers: not a SyntheticMarket, as Alpaca is not."""
    synthetic = SyntheticMarket(seed=5, n_symbols=len(TICKERS), start=date(2025, 6, 2), end=DAY, calendar=CAL)
    names = dict(zip(synthetic.stock_symbols, TICKERS, strict=True))
    series = {names.get(s, s): replace(b, symbol=names.get(s, s)) for s, b in synthetic.data.series.items()}
    return DailyBarMarketData(series, CAL)


def discovery(s: Settings, market: DailyBarMarketData) -> DiscoveryService:
    """The discovery of a container on `market` (a stand-in for Alpaca's)."""
    container = build_container(s, "test")
    container.market.override(providers.Object(market))
    return container.discovery()


def settings(**discovery: object) -> Settings:
    return load_settings(_env_file=None, discovery={"pickers": ("metric", "fuzzy"), **discovery})


async def test_without_a_fundamentals_file_sectors_are_known_and_the_cap_filter_is_skipped(
        market: DailyBarMarketData, capsys: pytest.CaptureFixture[str]) -> None:
    s = settings()
    service = discovery(s, market)
    out = discovery_run_json(await service.run(CAL.session_close(DAY)))
    assert out["status"] == "completed" and out["universe_size"] == len(TICKERS)
    assert set(out["skipped_filters"]) == {"market_cap"}  # sectors come from the shipped map
    assert out["passed_metric"] > 0 and out["watchlist"]
    _print_run(out)  # what `quorum discover` shows
    shown = " ".join(capsys.readouterr().out.split())
    assert f"filter skipped: {out['skipped_filters']['market_cap']}" in shown
    assert "give market caps with QUORUM_DISCOVERY__FUNDAMENTALS_FILE or --fundamentals" in shown


async def test_a_fundamentals_file_gives_the_market_caps(market: DailyBarMarketData, tmp_path: Path) -> None:
    caps = tmp_path / "caps.csv"
    rows = [f"{t},,{3e12 if i < 6 else 1e9:.0f},2026-11-27" for i, t in enumerate(TICKERS)]
    caps.write_text("symbol,sector,market_cap,as_of\n" + "\n".join(rows) + "\n")
    s = settings(fundamentals_file=str(caps))
    outcome = await discovery(s, market).discover(CAL.session_close(DAY))
    assert outcome.skipped_filters == {}
    big = set(TICKERS[:6])
    assert outcome.ensemble is not None
    small = outcome.ensemble.result(TICKERS[-1])
    assert small is not None and any("market cap $1.0B < $2.0B" in line for line in small.reasons)
    assert outcome.watchlist and {e.symbol for e in outcome.watchlist} <= big


def test_a_fundamentals_file_that_is_not_one_is_a_configuration_error(market: DailyBarMarketData,
                                                                      tmp_path: Path) -> None:
    bad = tmp_path / "bars.csv"
    bad.write_text("date,open,high,low,close\n2026-01-02,1,2,0.5,1\n")
    s = settings(fundamentals_file=str(bad))
    with pytest.raises(ConfigurationError, match=r"QUORUM_DISCOVERY__FUNDAMENTALS_FILE: .*bars\.csv.*not a fund"):
        discovery(s, market)
