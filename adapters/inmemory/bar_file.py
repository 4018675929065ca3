"""Parse one CSV of OHLCV bars, whatever its dialect, into clean per-symbol arrays.

Accepted dialects (headers are matched case-insensitively):
- `date,open,high,low,close,volume,Name` (symbol per row from `Name`, `symbol` or `ticker`);
- Yahoo `Date,Open,High,Low,Close,Adj Close,Volume` (symbol from the file name);
- an unnamed first column of timezone-aware timestamps (intraday);
- a `datetime` column of naive New York wall-clock times (intraday).

A file whose timestamps all lack a time of day (or are all midnight) is daily;
otherwise it is intraday. A file may be gzip-compressed (`.csv.gz`). Every row that is not loaded is counted under a
reason in the file's `FileReport`; nothing is dropped silently. Prices are the
Close (split-adjusted, never dividend-adjusted); an `Adj Close` column and a `Dividends` column (cash dividend
per share on its ex-date, 0 on other days, as yfinance writes it) are kept beside them, never as prices, for the
dividends they give (`adapters.inmemory.dividends`); a blank or non-numeric one does not skip the row.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from domain.errors import DataError

NY_TZ = "America/New_York"
PRICE_COLUMNS = ("open", "high", "low", "close")
_VALUE_COLUMNS = (*PRICE_COLUMNS, "volume")
_TIME_COLUMNS = ("date", "datetime", "timestamp", "time")
_SYMBOL_COLUMNS = ("name", "symbol", "ticker")
_ADJUSTED_COLUMNS = ("adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close")
ADJUSTED = "adj close"
"""Key of the adjusted-close column among a file's value columns."""
_DIVIDEND_COLUMNS = ("dividends", "dividend", "cash dividend", "cash_dividend")
DIVIDENDS = "dividends"
"""Key of the cash-dividend column among a file's value columns."""
_NULLS = ["", "null", "NULL", "Null", "nan", "NaN", "NAN", "NA", "N/A", "n/a", "None", "none", "-", "#N/A"]
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH_DAY = date(1970, 1, 1)
_EPOCH = pd.Timestamp("1970-01-01")
_EPOCH_UTC = pd.Timestamp("1970-01-01", tz="UTC")
_MICROSECOND = pd.Timedelta(microseconds=1)
_SUFFIX = re.compile(r"[_-](data|daily|day|bars?|ohlcv?|intraday|\d+(?:min|m|h|d|s))$", re.IGNORECASE)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
ObjArray = npt.NDArray[np.object_]


@dataclass
class FileReport:
    """What happened to the rows of one file.

    Attributes:
        path: the file.
        kind: "daily" or "intraday".
        symbols: symbols loaded from it.
        rows_loaded: rows that became bars.
        skipped: number of rows not loaded, per reason.
        bar_interval: bar length of an intraday file (most common spacing of its timestamps).
        notes: anything else worth knowing (e.g. a missing volume column).
    """

    path: Path
    kind: str = "daily"
    symbols: tuple[str, ...] = ()
    rows_loaded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    bar_interval: timedelta | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rows_skipped(self) -> int:
        """Rows not loaded, all reasons together."""
        return sum(self.skipped.values())

    def skip(self, reason: str, n: int = 1) -> None:
        """Count `n` rows not loaded for `reason`."""
        if n > 0:
            self.skipped[reason] += n


@dataclass
class SymbolRows:
    """Clean bars of one symbol from one file, sorted by time.

    `stamps` are days since the epoch for daily files and UTC microseconds since the epoch otherwise;
    `adjusted` is the adjusted close of each row (NaN where blank), `dividends` the cash dividend per share going
    ex on each row's day (0 for none, NaN where blank); each is None when the file has no such column.
    """

    symbol: str
    stamps: IntArray
    values: FloatArray  # shape (n, 5): open, high, low, close, volume
    adjusted: FloatArray | None = None
    dividends: FloatArray | None = None


def epoch_days(days: Iterable[date]) -> IntArray:
    """Days since 1970-01-01 of `days`, as a sorted array."""
    return np.sort(np.array([d.toordinal() - _EPOCH_ORDINAL for d in days], dtype=np.int64))


def symbol_from_filename(path: Path) -> str:
    """Ticker named by a file: `SPY.csv`, `AAPL_data.csv`, `TSLA_5min.csv`, `^VIX.csv` -> SPY, AAPL, TSLA, VIX."""
    stem = _without_suffixes(path).strip().lstrip("^")
    while True:
        shorter = _SUFFIX.sub("", stem)
        if shorter == stem or not shorter:
            break
        stem = shorter
    return stem.upper()


def _columns(header: list[str], path: Path) -> tuple[str, dict[str, str], str | None]:
    by_name = {c.strip().lower(): c for c in header}
    time_col = next((by_name[c] for c in _TIME_COLUMNS if c in by_name), None)
    if time_col is None and header and header[0].strip() == "":
        time_col = header[0]
    missing = [c for c in PRICE_COLUMNS if c not in by_name]
    if time_col is None:
        missing.insert(0, "date/datetime (or an unnamed first timestamp column)")
    if missing:
        found = ", ".join(repr(c) for c in header) or "nothing"
        raise DataError(f"{path}: not bar data: missing column(s) {', '.join(missing)} (found: {found})")
    if time_col is None:
        raise DataError(f"{path}: not bar data: no time column")
    values = {c: by_name[c] for c in _VALUE_COLUMNS if c in by_name}
    adjusted = next((by_name[c] for c in _ADJUSTED_COLUMNS if c in by_name), None)
    if adjusted is not None:
        values[ADJUSTED] = adjusted
    dividends = next((by_name[c] for c in _DIVIDEND_COLUMNS if c in by_name), None)
    if dividends is not None:
        values[DIVIDENDS] = dividends
    symbol_col = next((by_name[c] for c in _SYMBOL_COLUMNS if c in by_name), None)
    return time_col, values, symbol_col


def _without_suffixes(path: Path) -> str:
    """The file name without `.csv` or `.csv.gz`."""
    name = path.name
    for suffix in (".gz", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _header(path: Path) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh), [])


def check_bar_header(path: Path) -> None:
    """Check that `path` reads as CSV and its header has the columns of bar data, without reading the rows.

    Raises:
        DataError: the file cannot be read, or it is not bar data (the message names the missing columns).
    """
    try:
        header = _header(path)
    except (UnicodeDecodeError, OSError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read as CSV: {exc}") from exc
    _columns(header, path)


def _read(path: Path) -> tuple[pd.DataFrame, str, dict[str, str], str | None]:
    try:
        header = _header(path)
        time_col, values, symbol_col = _columns(header, path)
        df = pd.read_csv(
            path,
            encoding="utf-8-sig",
            keep_default_na=False,
            na_values={values[c]: _NULLS for c in values},
        )
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path}: cannot read as CSV: {exc}") from exc
    if df.columns[0] != header[0] and header[0].strip() == "":
        df = df.rename(columns={df.columns[0]: header[0]})
    return df, time_col, values, symbol_col


def _is_aware(s: str) -> bool:
    return len(s) > 16 and (s[-1] == "Z" or (s[-6] in "+-" and s[-3] == ":") or (s[-5] in "+-" and s[-4:].isdigit()))


def _parse_times(raw: pd.Series) -> tuple[FloatArray, str]:
    """Stamps as floats (NaN where unparseable; ISO 8601 only) and the file kind (daily or intraday).

    Daily stamps are days since 1970-01-01; intraday stamps are UTC microseconds since the epoch.
    """
    if pd.api.types.is_string_dtype(raw) and raw.notna().all() and raw.str.len().max() <= 10:
        days = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
        stamps = np.asarray(((days - _EPOCH) / pd.Timedelta(days=1)).to_numpy(na_value=np.nan), dtype=np.float64)
        return stamps, "daily"
    text = [str(x).strip() if isinstance(x, str) else "" for x in raw.tolist()]
    if all(len(t) <= 10 or t[10:16] in (" 00:00", "T00:00") for t in text):
        days = pd.to_datetime(pd.Series([t[:10] for t in text]), format="%Y-%m-%d", errors="coerce")
        stamps = np.asarray(((days - _EPOCH) / pd.Timedelta(days=1)).to_numpy(na_value=np.nan), dtype=np.float64)
        return stamps, "daily"
    series = pd.Series(text)
    aware = np.fromiter((_is_aware(t) for t in text), dtype=bool, count=len(text))
    out = np.full(len(text), np.nan)
    if aware.any():
        utc = pd.to_datetime(series[aware], utc=True, errors="coerce", format="ISO8601")
        out[aware] = ((utc - _EPOCH_UTC) / _MICROSECOND).to_numpy(dtype=float, na_value=np.nan)
    naive = ~aware & series.ne("").to_numpy()
    if naive.any():
        local = pd.to_datetime(series[naive], errors="coerce", format="ISO8601")
        utc = local.dt.tz_localize(NY_TZ, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        out[naive] = ((utc - _EPOCH_UTC) / _MICROSECOND).to_numpy(dtype=float, na_value=np.nan)
    return out, "intraday"


def _row_reasons(df: pd.DataFrame, values: dict[str, str], stamps: FloatArray) -> tuple[ObjArray, FloatArray]:
    """Skip reason per row ('' when the row is good) and the numeric (n, 5) values."""
    n = len(df)
    reasons: ObjArray = np.full(n, "", dtype=object)
    nums = np.zeros((n, 5))
    blank = np.zeros((n, 5), dtype=bool)
    junk = np.zeros(n, dtype=bool)
    for j, c in enumerate(_VALUE_COLUMNS):
        if c not in values:
            continue
        col = df[values[c]]
        blank[:, j] = col.isna().to_numpy()
        if col.dtype == object or str(col.dtype).startswith("str"):
            col = pd.to_numeric(col.astype(str).str.strip(), errors="coerce").where(~col.isna())
        nums[:, j] = col.to_numpy(dtype=float, na_value=np.nan)
        junk |= ~blank[:, j] & ~np.isfinite(nums[:, j])
    present = [j for j, c in enumerate(_VALUE_COLUMNS) if c in values]

    def mark(mask: npt.ArrayLike, reason: str | ObjArray) -> None:
        m = np.asarray(mask, dtype=bool) & (reasons == "")
        reasons[m] = reason if isinstance(reason, str) else reason[m]

    mark(np.isnan(stamps), "unparseable timestamp")
    mark(blank[:, present].all(axis=1), "null row")
    if blank.any():
        names = np.full(n, "", dtype=object)
        for j in present:
            names = names + np.where(blank[:, j], _VALUE_COLUMNS[j] + " ", "")
        mark(blank.any(axis=1), np.array(["blank " + ", ".join(x.split()) for x in names], dtype=object))
    mark(junk, "non-numeric value")
    op, hi, lo, cl, vol = (nums[:, j] for j in range(5))
    with np.errstate(invalid="ignore"):
        mark(np.minimum(np.minimum(op, hi), np.minimum(lo, cl)) <= 0, "non-positive price")
        mark(vol < 0, "negative volume")
        mark(
            (hi < np.maximum(np.maximum(op, cl), lo)) | (lo > np.minimum(op, cl)),
            "inconsistent OHLC (high/low do not bound open/close)",
        )
    return reasons, nums


def _side_column(df: pd.DataFrame, values: dict[str, str], key: str, *, zero_ok: bool) -> FloatArray | None:
    """Column `key` of every row as floats (NaN where blank, not a number, negative, or zero unless `zero_ok`),
    or None when the file has no such column."""
    if key not in values:
        return None
    col = pd.to_numeric(df[values[key]].astype(str).str.strip(), errors="coerce")
    out = np.array(col.to_numpy(dtype=float, na_value=np.nan), dtype=np.float64)
    out[~((out >= 0) if zero_ok else (out > 0))] = np.nan
    return out


def _interval(stamps: IntArray) -> timedelta | None:
    diffs = np.diff(stamps)
    diffs = diffs[diffs > 0]
    if len(diffs) == 0:
        return None
    vals, counts = np.unique(diffs, return_counts=True)
    return timedelta(microseconds=int(vals[np.argmax(counts)]))


def parse_bar_file(
    path: Path, *, session_days: Callable[[date, date], IntArray] | None = None
) -> tuple[list[SymbolRows], FileReport]:
    """Read one CSV of bars.

    Args:
        path: the file.
        session_days: (first, last) -> trading days between them as days since 1970-01-01 (see
            `epoch_days`); when given, daily rows dated on other days are skipped as "not a trading day".

    Returns:
        Clean rows per symbol (sorted, one bar per timestamp) and the file's report.

    Raises:
        DataError: the file cannot be read or is not bar data (the message names the missing columns).
    """
    df, time_col, values, symbol_col = _read(path)
    report = FileReport(path)
    if "volume" not in values:
        report.notes.append("no volume column: volume set to 0")
    stamps, report.kind = _parse_times(df[time_col])
    reasons, nums = _row_reasons(df, values, stamps)
    if symbol_col:
        names, inverse = np.unique(df[symbol_col].fillna("").astype(str).to_numpy(dtype=str), return_inverse=True)
        symbols = np.array([n.strip().upper().lstrip("^") for n in names], dtype=object)[inverse]
    else:
        symbols = np.full(len(df), symbol_from_filename(path), dtype=object)
    reasons[(reasons == "") & (symbols == "")] = "blank symbol"
    stamp_arr = np.nan_to_num(stamps).astype(np.int64)
    if session_days is not None and report.kind == "daily" and (reasons == "").any():
        known = stamp_arr[reasons == ""]
        lo, hi = (_EPOCH_DAY + timedelta(days=int(d)) for d in (known.min(), known.max()))
        reasons[(reasons == "") & ~np.isin(stamp_arr, session_days(lo, hi))] = "not a trading day"
    adjusted = _side_column(df, values, ADJUSTED, zero_ok=False)
    dividends = _side_column(df, values, DIVIDENDS, zero_ok=True)
    bad, counts = np.unique(reasons[reasons != ""].astype(str), return_counts=True)
    for reason, count in zip(bad, counts, strict=True):
        report.skip(str(reason), int(count))
    good = reasons == ""
    out: list[SymbolRows] = []
    for symbol in sorted(set(symbols[good])):
        sel = good & (symbols == symbol)
        st, vals = stamp_arr[sel], nums[sel]
        order = np.argsort(st, kind="stable")
        st, vals = st[order], vals[order]
        keep = np.ones(len(st), dtype=bool)
        keep[1:] = st[1:] != st[:-1]
        report.skip("duplicate timestamp", int((~keep).sum()))
        adj = adjusted[sel][order][keep] if adjusted is not None else None
        div = dividends[sel][order][keep] if dividends is not None else None
        out.append(SymbolRows(symbol, st[keep], vals[keep], adj, div))
        report.rows_loaded += int(keep.sum())
        if report.kind == "intraday" and report.bar_interval is None:
            report.bar_interval = _interval(st[keep])
    report.symbols = tuple(r.symbol for r in out)
    return out, report
