"""The CSV bar loader: every dialect, null rows and blank cells reported, non-bar files refused, real files."""

from __future__ import annotations

import gzip
import itertools
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from adapters.calendar import NyseCalendar
from adapters.inmemory.csv_bars import load_bar_file, load_bars, symbol_from_filename
from domain.errors import DataError


@pytest.fixture(scope="module")
def cal() -> NyseCalendar:
    return NyseCalendar()


def write(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"))
    return path


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("SPY.csv", "SPY"),
        ("AAPL_data.csv", "AAPL"),
        ("TSLA_5min.csv", "TSLA"),
        ("^VIX.csv", "VIX"),
        ("BRK.B_data.csv", "BRK.B"),
        ("msft_1min.csv", "MSFT"),
        ("AAPL_data.csv.gz", "AAPL"),
        ("SPY.csv.gz", "SPY"),
    ],
)
def test_symbol_from_filename(name: str, symbol: str) -> None:
    assert symbol_from_filename(Path(name)) == symbol


def test_a_gzip_compressed_directory_loads_like_plain_csv(tmp_path: Path) -> None:
    text = ("Date,Open,High,Low,Close,Adj Close,Volume\n2013-02-08,10,11,9,10.5,10.1,1000\n"
            "2013-02-11,10.5,12,10,11,10.6,900\n")
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    plain.mkdir()
    packed.mkdir()
    (plain / "SPY.csv").write_text(text)
    with gzip.open(packed / "SPY.csv.gz", "wt") as fh:
        fh.write(text)
    (packed / "universe.json").write_text("{}")  # not bar data: not read
    a, b = load_bars([plain]).daily["SPY"], load_bars([packed]).daily["SPY"]
    assert a.days == b.days == (date(2013, 2, 8), date(2013, 2, 11)) and b.close.tolist() == [10.5, 11.0]


def test_lower_case_format_takes_the_symbol_from_the_name_column(tmp_path: Path) -> None:
    f = write(
        tmp_path / "whatever_data.csv",
        """
date,open,high,low,close,volume,Name
2013-02-08,67.7142,68.4014,66.8928,67.8542,158168416,AAPL
2013-02-11,68.0714,69.2771,67.6071,68.5614,129029425,AAPL
2013-02-08,30.0,31.0,29.5,30.5,1000,MSFT
""",
    )
    loaded = load_bar_file(f)
    assert set(loaded.daily) == {"AAPL", "MSFT"}
    aapl = loaded.daily["AAPL"]
    assert aapl.days == (date(2013, 2, 8), date(2013, 2, 11))
    assert aapl.close.tolist() == [67.8542, 68.5614]
    assert aapl.volume.tolist() == [158168416, 129029425]
    report = loaded.report.for_file(f)
    assert (report.kind, report.rows_loaded, report.rows_skipped) == ("daily", 3, 0)


def test_yahoo_format_uses_raw_close_not_adj_close(tmp_path: Path) -> None:
    f = write(
        tmp_path / "SPY.csv",
        """
Date,Open,High,Low,Close,Adj Close,Volume
1993-02-01,43.968750,44.250000,43.968750,44.250000,24.485960,480500
1993-01-29,43.968750,43.968750,43.750000,43.937500,24.313038,1003200
""",
    )
    spy = load_bar_file(f).daily["SPY"]
    assert spy.days == (date(1993, 1, 29), date(1993, 2, 1))  # sorted
    assert spy.close.tolist() == [43.9375, 44.25]
    assert spy.open.tolist() == [43.96875, 43.96875]


def test_null_rows_blank_cells_and_bad_rows_are_reported_not_dropped_silently(
    tmp_path: Path, cal: NyseCalendar
) -> None:
    f = write(
        tmp_path / "^VIX.csv",
        """
Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,13.2,14.2,13.1,13.9,13.9,0
2024-01-03,null,null,null,null,null,null
2024-01-04,13.9,,13.5,14.0,14.0,0
2024-01-05,13.9,14.5,13.5,abc,14.0,0
2024-01-06,13.9,14.5,13.5,14.0,14.0,0
2024-01-08,13.9,13.0,13.5,14.0,14.0,0
2024-01-09,-1,14.5,13.5,14.0,14.0,0
2024-01-09,13.0,14.5,12.5,14.0,14.0,0
2024-01-10,13.0,14.5,12.5,14.0,14.0,0
2024-01-10,13.5,14.5,12.5,14.1,14.0,0
not a date,13.0,14.5,12.5,14.0,14.0,0
""",
    )
    loaded = load_bar_file(f, trading_days=cal.sessions)
    report = loaded.report.for_file("^VIX.csv")
    assert dict(report.skipped) == {
        "null row": 1,
        "blank high": 1,
        "non-numeric value": 1,
        "not a trading day": 1,  # a Saturday
        "inconsistent OHLC (high/low do not bound open/close)": 1,
        "non-positive price": 1,
        "duplicate timestamp": 1,
        "unparseable timestamp": 1,
    }
    vix = loaded.daily["VIX"]
    assert vix.days == (date(2024, 1, 2), date(2024, 1, 9), date(2024, 1, 10))
    assert vix.close.tolist() == [13.9, 14.0, 14.0]  # the first of two rows for one day is kept
    assert report.rows_loaded + report.rows_skipped == 11
    assert "8 skipped" in loaded.report.summary()


def test_blank_volume_is_reported(tmp_path: Path) -> None:
    f = write(
        tmp_path / "X.csv", "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,\n2024-01-03,1,2,0.5,1.5,9\n"
    )
    loaded = load_bar_file(f)
    assert dict(loaded.report.files[0].skipped) == {"blank volume": 1}
    assert len(loaded.daily["X"]) == 1


def test_unnamed_first_column_of_tz_aware_timestamps_is_intraday(tmp_path: Path) -> None:
    f = write(
        tmp_path / "AAPL.csv",
        """
,Open,High,Low,Close,Adj Close,Volume
2022-10-19 09:30:00-04:00,141.69,142.78,141.5,142.755,,2489536.0
2022-10-19 09:31:00-04:00,142.74,143.34,142.55,143.31,,538374.0
2022-11-07 09:30:00-05:00,137.11,137.5,136.9,137.2,,1000.0
""",
    )
    loaded = load_bar_file(f)
    assert loaded.daily == {}
    bars = loaded.intraday["AAPL"]
    assert [b.at for b in bars] == [
        datetime(2022, 10, 19, 13, 30, tzinfo=UTC),
        datetime(2022, 10, 19, 13, 31, tzinfo=UTC),
        datetime(2022, 11, 7, 14, 30, tzinfo=UTC),  # after the DST change
    ]
    assert bars[0].close == pytest.approx(142.755)
    assert loaded.intervals["AAPL"].total_seconds() == 60
    assert loaded.report.files[0].kind == "intraday"
    assert loaded.report.files[0].rows_skipped == 0  # the blank Adj Close column is not used


def test_naive_datetime_column_is_new_york_time(tmp_path: Path) -> None:
    f = write(
        tmp_path / "TSLA_5min.csv",
        """
datetime,open,high,low,close,volume
2025-05-12 09:30:00,321.99,322.21,313.84,315.84,5724123
2025-05-12 09:35:00,315.8,316.0,314.0,315.0,100
2025-12-01 09:30:00,400.0,401.0,399.0,400.5,100
2025-12-01 09:35:00,400.5,401.0,399.0,400.0,
""",
    )
    loaded = load_bar_file(f)
    bars = loaded.intraday["TSLA"]
    assert bars[0].at == datetime(2025, 5, 12, 13, 30, tzinfo=UTC)  # EDT
    assert bars[2].at == datetime(2025, 12, 1, 14, 30, tzinfo=UTC)  # EST
    assert all(b.at.tzinfo == UTC for b in bars)
    assert loaded.intervals["TSLA"].total_seconds() == 300
    assert dict(loaded.report.files[0].skipped) == {"blank volume": 1}


def test_files_that_are_not_bar_data_raise_naming_file_and_columns(tmp_path: Path) -> None:
    f = write(tmp_path / "constituents.csv", "Symbol,Security,GICS Sector\nMMM,3M,Industrials\n")
    with pytest.raises(DataError, match=r"constituents\.csv.*missing column\(s\).*open, high, low, close"):
        load_bar_file(f)
    g = write(tmp_path / "nodate.csv", "open,high,low,close\n1,2,0.5,1\n")
    with pytest.raises(DataError, match="date/datetime"):
        load_bar_file(g)
    e = write(tmp_path / "empty.csv", "")
    with pytest.raises(DataError, match=r"empty\.csv"):
        load_bar_file(e)


def test_non_strict_directory_load_lists_rejected_files(tmp_path: Path) -> None:
    write(tmp_path / "SPY.csv", "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,470,472,469,471,470,1000\n")
    write(tmp_path / "notes.csv", "a,b\n1,2\n")
    with pytest.raises(DataError, match=r"notes\.csv"):
        load_bars([tmp_path])
    loaded = load_bars([tmp_path], strict=False)
    assert list(loaded.daily) == ["SPY"]
    assert list(loaded.report.rejected) == [tmp_path / "notes.csv"]
    assert "rejected notes.csv" in loaded.report.summary()


def test_same_symbol_in_two_files_first_wins_and_duplicates_are_reported(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write(a / "SPY.csv", "Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,1.6,10\n")
    write(b / "SPY.csv", "Date,Open,High,Low,Close,Volume\n2024-01-03,1,2,0.5,9,10\n2024-01-04,1,2,0.5,1.7,10\n")
    loaded = load_bars([a, b])
    assert loaded.daily["SPY"].close.tolist() == [1.5, 1.6, 1.7]
    second = loaded.report.files[1]
    assert second.rows_loaded == 1
    assert second.rows_skipped == 1


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_bars([tmp_path / "nope"])


def test_real_daily_files(shared_data: Path, cal: NyseCalendar) -> None:
    d = shared_data / "daily" / "sp500_2013_2018"
    loaded = load_bars([d / "AAPL_data.csv", d / "LNT_data.csv", d / "FTV_data.csv"], trading_days=cal.sessions)
    aapl = loaded.daily["AAPL"]
    assert aapl.days[0] == date(2013, 2, 8)
    assert aapl.close[0] == pytest.approx(67.8542)
    assert (aapl.low <= aapl.open).all() and (aapl.open <= aapl.high).all()
    assert loaded.report.for_file("LNT_data.csv").skipped["inconsistent OHLC (high/low do not bound open/close)"] == 1
    assert loaded.report.for_file("FTV_data.csv").skipped["blank open, high, low"] == 1
    for series in loaded.daily.values():
        assert all(cal.is_session(day) for day in series.days)


def test_real_context_files_report_vix_null_rows(shared_data: Path, cal: NyseCalendar) -> None:
    loaded = load_bars([shared_data / "daily" / "context"], trading_days=cal.sessions)
    assert {"SPY", "VIX", "XLK", "XLRE", "SPX"} <= set(loaded.daily)
    vix = loaded.report.for_file("VIX.csv")
    assert vix.skipped["null row"] == 323
    assert vix.rows_loaded == 9000
    assert loaded.daily["SPY"].days[0] == date(1993, 1, 29)
    assert loaded.daily["SPY"].close[0] == pytest.approx(43.9375)  # raw close, not the adjusted 24.31


def test_real_intraday_files(shared_data: Path) -> None:
    one = shared_data / "intraday" / "1min_2022-10_2022-11" / "AAPL.csv"
    five = shared_data / "intraday" / "5min_2025-05_2026-03" / "TSLA_5min.csv"
    loaded = load_bars([one, five])
    aapl, tsla = loaded.intraday["AAPL"], loaded.intraday["TSLA"]
    assert aapl[0].at == datetime(2022, 10, 19, 13, 30, tzinfo=UTC)
    assert tsla[0].at == datetime(2025, 5, 12, 13, 30, tzinfo=UTC)
    assert loaded.intervals == {"AAPL": aapl[1].at - aapl[0].at, "TSLA": tsla[1].at - tsla[0].at}
    assert all(a.at < b.at for a, b in itertools.pairwise(aapl))
    assert loaded.report.rows_skipped == 0
