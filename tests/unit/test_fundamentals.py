"""InMemoryFundamentals and CsvFundamentals: as-of lookups, every file format, unknown market cap is None;
the shipped sector map, a fundamentals file merged over it field by field, and the setting naming that file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from adapters.inmemory.fundamentals import (
    CsvFundamentals,
    InMemoryFundamentals,
    MergedFundamentals,
    discovery_fundamentals,
    sector_map,
)
from domain.errors import ConfigurationError, DataError
from domain.ports.market_data import Fundamentals, FundamentalsRecord
from entrypoints.settings import load_settings

SHIPPED_DAY = date(2026, 8, 8)


async def test_latest_record_on_or_before_as_of() -> None:
    f = InMemoryFundamentals(
        [
            FundamentalsRecord("AAA", "Energy", 1e9, date(2020, 1, 1)),
            FundamentalsRecord("AAA", "Energy", 2e9, date(2021, 1, 1)),
            FundamentalsRecord("BBB", None, None, date(2020, 6, 1)),
        ]
    )
    assert isinstance(f, Fundamentals)
    assert await f.get(["AAA"], as_of=date(2019, 12, 31)) == {}
    assert (await f.get(["AAA"], as_of=date(2020, 12, 31)))["AAA"].market_cap == 1e9
    assert (await f.get(["AAA"], as_of=date(2021, 1, 1)))["AAA"].market_cap == 2e9
    got = await f.get(["AAA", "BBB", "CCC"], as_of=date(2022, 1, 1))
    assert set(got) == {"AAA", "BBB"}
    assert got["BBB"].market_cap is None


def test_zero_market_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="market_cap"):
        InMemoryFundamentals([FundamentalsRecord("AAA", "Energy", 0.0, date(2020, 1, 1))])


async def test_generic_csv(tmp_path: Path) -> None:
    p = tmp_path / "fund.csv"
    p.write_text(
        "symbol,sector,market_cap,as_of\n"
        "aaa,Energy,1500000000,2020-01-01\n"
        "AAA,Energy,2500000000,2021-01-01\n"
        "BBB,Utilities,,2020-01-01\n"
        "CCC,Utilities,0,2020-01-01\n"
        "DDD,,n/a,2020-01-01\n"
    )
    f = CsvFundamentals(p)
    got = await f.get(["AAA", "BBB", "CCC", "DDD"], as_of=date(2020, 6, 1))
    assert got["AAA"] == FundamentalsRecord("AAA", "Energy", 1.5e9, date(2020, 1, 1))
    assert got["BBB"].market_cap is None and got["CCC"].market_cap is None and got["DDD"].market_cap is None
    assert got["DDD"].sector is None


async def test_constituents_and_financials_files_dated_by_file_name(tmp_path: Path) -> None:
    (tmp_path / "sp500_constituents_2024-03-05.csv").write_text(
        "Symbol,Security,GICS Sector,GICS Sub-Industry\nMMM,3M,Industrials,Conglomerates\n"
    )
    (tmp_path / "sp500_constituents_financials_2018-02-08.csv").write_text(
        "Symbol,Name,Sector,Price,Market Cap\nMMM,3M Company,Industrials,222.89,138721055226\n"
    )
    f = CsvFundamentals(tmp_path)
    old = (await f.get(["MMM"], as_of=date(2020, 1, 1)))["MMM"]
    new = (await f.get(["MMM"], as_of=date(2024, 3, 5)))["MMM"]
    assert old == FundamentalsRecord("MMM", "Industrials", 138721055226.0, date(2018, 2, 8))
    assert new == FundamentalsRecord("MMM", "Industrials", None, date(2024, 3, 5))


def test_files_without_the_needed_columns_raise(tmp_path: Path) -> None:
    p = tmp_path / "bars.csv"
    p.write_text("date,open,high,low,close\n2020-01-01,1,2,0.5,1\n")
    with pytest.raises(DataError, match=r"bars\.csv.*symbol.*sector"):
        CsvFundamentals(p)
    q = tmp_path / "undated.csv"
    q.write_text("symbol,sector\nAAA,Energy\n")
    with pytest.raises(DataError, match="as_of"):
        CsvFundamentals(q)
    with pytest.raises(DataError, match="no such file"):
        CsvFundamentals(tmp_path / "missing.csv")


async def test_real_reference_files(shared_data: Path) -> None:
    f = CsvFundamentals(shared_data / "reference")
    in_2018 = await f.get(["AAPL", "MMM", "BRK.B"], as_of=date(2018, 6, 1))
    assert in_2018["AAPL"].sector == "Information Technology"
    assert in_2018["AAPL"].market_cap is not None and in_2018["AAPL"].market_cap > 5e11
    assert in_2018["BRK.B"].as_of == date(2018, 2, 8)
    in_2025 = await f.get(["AAPL"], as_of=date(2025, 1, 1))
    assert in_2025["AAPL"].as_of == date(2024, 3, 5)
    assert in_2025["AAPL"].market_cap is None  # the constituents file has no market cap
    assert await f.get(["AAPL"], as_of=date(2017, 1, 1)) == {}


async def test_the_shipped_sector_map_gives_every_sp500_member_a_gics_sector_and_no_market_cap() -> None:
    f = sector_map()
    assert len(f.symbols) == 503
    got = await f.get(["AAPL", "JPM", "BRK.B", "XOM", "NOPE"], as_of=SHIPPED_DAY)
    assert {s: r.sector for s, r in got.items()} == {"AAPL": "Information Technology", "JPM": "Financials",
                                                      "BRK.B": "Financials", "XOM": "Energy"}
    assert all(r.market_cap is None and r.as_of == SHIPPED_DAY for r in got.values())
    assert await f.get(["AAPL"], as_of=date(2026, 8, 7)) == {}  # not seen before its date
    sectors = {r.sector for r in (await f.get(f.symbols, as_of=SHIPPED_DAY)).values()}
    assert len(sectors) == 11 and None not in sectors


async def test_the_shipped_sector_map_is_the_reference_constituents_file(shared_data: Path) -> None:
    reference = CsvFundamentals(shared_data / "reference" / "sp500_constituents_2026-08-08.csv")
    shipped = sector_map()
    assert shipped.symbols == reference.symbols
    want = await reference.get(reference.symbols, as_of=SHIPPED_DAY)
    assert await shipped.get(shipped.symbols, as_of=SHIPPED_DAY) == want


async def test_a_merged_source_takes_each_field_from_the_last_source_that_knows_it() -> None:
    base = InMemoryFundamentals([FundamentalsRecord("AAA", "Energy", None, SHIPPED_DAY),
                                 FundamentalsRecord("BBB", "Utilities", None, SHIPPED_DAY)])
    over = InMemoryFundamentals([FundamentalsRecord("AAA", None, 3e9, date(2026, 6, 30)),  # older, still merged
                                 FundamentalsRecord("BBB", "Real Estate", 5e9, date(2026, 9, 1)),
                                 FundamentalsRecord("CCC", None, 7e9, date(2026, 9, 1))])
    f = MergedFundamentals(base, over)
    assert isinstance(f, Fundamentals)
    got = await f.get(["AAA", "BBB", "CCC", "DDD"], as_of=date(2026, 10, 1))
    assert got == {"AAA": FundamentalsRecord("AAA", "Energy", 3e9, SHIPPED_DAY),
                   "BBB": FundamentalsRecord("BBB", "Real Estate", 5e9, date(2026, 9, 1)),
                   "CCC": FundamentalsRecord("CCC", None, 7e9, date(2026, 9, 1))}
    before = await f.get(["AAA", "BBB", "CCC"], as_of=date(2026, 8, 31))  # nothing from after the date asked
    assert before == {"AAA": FundamentalsRecord("AAA", "Energy", 3e9, SHIPPED_DAY),
                      "BBB": FundamentalsRecord("BBB", "Utilities", None, SHIPPED_DAY)}


async def test_discovery_fundamentals_merge_a_market_cap_file_over_the_shipped_sectors(tmp_path: Path) -> None:
    caps = tmp_path / "caps.csv"
    caps.write_text("symbol,sector,market_cap,as_of\nAAPL,,3400000000000,2026-11-30\nZZZZ,Energy,1500000000,"
                    "2026-11-30\n")
    got = await discovery_fundamentals(caps).get(["AAPL", "MSFT", "ZZZZ"], as_of=date(2026, 12, 1))
    assert got["AAPL"] == FundamentalsRecord("AAPL", "Information Technology", 3.4e12, date(2026, 11, 30))
    assert got["MSFT"] == FundamentalsRecord("MSFT", "Information Technology", None, SHIPPED_DAY)
    assert got["ZZZZ"] == FundamentalsRecord("ZZZZ", "Energy", 1.5e9, date(2026, 11, 30))
    shipped_only = await discovery_fundamentals(None).get(["AAPL"], as_of=date(2026, 12, 1))
    assert shipped_only["AAPL"].market_cap is None
    with pytest.raises(DataError, match="no such file"):
        discovery_fundamentals(tmp_path / "missing.csv")


def test_the_fundamentals_file_setting_must_name_an_existing_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_DISCOVERY__FUNDAMENTALS_FILE", str(tmp_path / "nope.csv"))
    with pytest.raises(ConfigurationError, match=r"QUORUM_DISCOVERY__FUNDAMENTALS_FILE: .*no such file: .*nope\.csv"):
        load_settings(_env_file=None)
    caps = tmp_path / "caps.csv"
    caps.write_text("symbol,sector,market_cap,as_of\n")
    monkeypatch.setenv("QUORUM_DISCOVERY__FUNDAMENTALS_FILE", str(caps))
    assert load_settings(_env_file=None).discovery.fundamentals_file == caps.resolve()
    monkeypatch.delenv("QUORUM_DISCOVERY__FUNDAMENTALS_FILE")
    assert load_settings(_env_file=None).discovery.fundamentals_file is None
