"""Load daily and intraday bars from CSV files in any of the dialects `bar_file` accepts.

`load_bars` returns daily `BarSeries`, intraday `Bar` lists (timezone-aware UTC `at`), the cash dividends given by
a `Dividends` column or implied by an `Adj Close` column (a symbol has dividend information when every one of its
daily rows has a dividend, 0 included, or else an adjusted close) and a `LoadReport` saying, per file, how many
rows were loaded and how many were skipped and why. When the same symbol comes from several files the first file
wins on overlapping days/timestamps and the later file's duplicate rows are reported as skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt

from adapters.inmemory.bar_file import (
    FileReport,
    FloatArray,
    IntArray,
    SymbolRows,
    epoch_days,
    parse_bar_file,
    symbol_from_filename,
)
from adapters.inmemory.dividends import DividendSchedule, dividends_from_adjusted, dividends_from_column
from domain.errors import DataError
from domain.models.bar import Bar
from domain.models.market import BarSeries

__all__ = ["FileReport", "LoadReport", "LoadedBars", "load_bar_file", "load_bars", "symbol_from_filename"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)


@dataclass
class LoadReport:
    """What loading a set of CSV files did.

    Attributes:
        files: one report per bar file read, in reading order.
        rejected: files that are not bar data, with the reason (only when loading with `strict=False`).
    """

    files: list[FileReport] = field(default_factory=list)
    rejected: dict[Path, str] = field(default_factory=dict)

    @property
    def rows_loaded(self) -> int:
        """Rows loaded over all files."""
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_skipped(self) -> int:
        """Rows skipped over all files."""
        return sum(f.rows_skipped for f in self.files)

    def for_file(self, path: Path | str) -> FileReport:
        """The report of one file, by path or file name.

        Raises:
            KeyError: no such file was read.
        """
        for f in self.files:
            if f.path == Path(path) or f.path.name == str(path):
                return f
        raise KeyError(str(path))

    def summary(self) -> str:
        """Human-readable account: totals, then every file that skipped rows, then rejected files."""
        lines = [f"{len(self.files)} files, {self.rows_loaded} rows loaded, {self.rows_skipped} skipped"]
        for f in self.files:
            if f.rows_skipped or f.notes:
                reasons = "; ".join(f"{n} {r}" for r, n in sorted(f.skipped.items()))
                lines.append(f"  {f.path.name}: {f.rows_loaded} loaded, {f.rows_skipped} skipped ({reasons})")
                lines.extend(f"    note: {n}" for n in f.notes)
        lines.extend(f"  rejected {p.name}: {why}" for p, why in self.rejected.items())
        return "\n".join(lines)


@dataclass
class LoadedBars:
    """Everything loaded: daily series, intraday bars and their bar length per symbol, the report, and the
    dividends of the daily series that carry an adjusted close."""

    daily: dict[str, BarSeries]
    intraday: dict[str, list[Bar]]
    intervals: dict[str, timedelta]
    report: LoadReport
    dividends: DividendSchedule = field(default_factory=DividendSchedule)


class _Days:
    """Shares date objects and whole `days` tuples between series (most series have the same sessions)."""

    def __init__(self) -> None:
        self._dates: dict[int, date] = {}
        self._tuples: dict[bytes, tuple[date, ...]] = {}

    def __call__(self, stamps: IntArray) -> tuple[date, ...]:
        key = stamps.tobytes()
        found = self._tuples.get(key)
        if found is None:
            get = self._dates.get
            found = tuple(get(d) or self._dates.setdefault(d, _EPOCH_DAY + timedelta(days=d)) for d in stamps.tolist())
            self._tuples[key] = found
        return found


def _series(rows: SymbolRows, days: _Days) -> BarSeries:
    v = rows.values
    return BarSeries(rows.symbol, days(rows.stamps), *(np.ascontiguousarray(v[:, j]) for j in range(5)))


def _session_days(trading_days: Callable[[date, date], Sequence[date]]) -> Callable[[date, date], IntArray]:
    cache: dict[tuple[date, date], IntArray] = {}

    def lookup(first: date, last: date) -> IntArray:
        if (first, last) not in cache:
            cache[(first, last)] = epoch_days(trading_days(first, last))
        return cache[(first, last)]

    return lookup


def _bars(rows: SymbolRows) -> list[Bar]:
    v = rows.values.tolist()
    return [
        Bar(rows.symbol, _EPOCH + timedelta(microseconds=int(us)), o, h, lo, c, vol)
        for us, (o, h, lo, c, vol) in zip(rows.stamps.tolist(), v, strict=True)
    ]


def _merge(old: SymbolRows, new: SymbolRows) -> tuple[SymbolRows, int]:
    """`old` plus the rows of `new` at stamps `old` lacks; returns the merge and how many rows of `new` were dropped."""
    fresh = ~np.isin(new.stamps, old.stamps)
    stamps = np.concatenate([old.stamps, new.stamps[fresh]])
    values = np.concatenate([old.values, new.values[fresh]])
    order = np.argsort(stamps, kind="stable")
    merged = SymbolRows(old.symbol, stamps[order], values[order],
                        _merged_side(old.adjusted, new.adjusted, len(old.stamps), len(new.stamps), fresh, order),
                        _merged_side(old.dividends, new.dividends, len(old.stamps), len(new.stamps), fresh, order))
    return merged, int((~fresh).sum())


def _merged_side(old: FloatArray | None, new: FloatArray | None, n_old: int, n_new: int, fresh: npt.NDArray[np.bool_],
                 order: IntArray) -> FloatArray | None:
    """A side column (adjusted close, dividends) of a merge: NaN for the rows of a file without it."""
    if old is None and new is None:
        return None
    old = old if old is not None else np.full(n_old, np.nan)
    new = new if new is not None else np.full(n_new, np.nan)
    return np.concatenate([old, new[fresh]])[order]


def _complete(column: FloatArray | None) -> FloatArray | None:
    """`column` when it has a value on every row, else None."""
    return column if column is not None and not np.isnan(column).any() else None


def _dividends(daily: dict[str, SymbolRows], series: dict[str, BarSeries]) -> DividendSchedule:
    """Dividends of every daily symbol whose rows all have a dividend (0 for none), or else all an adjusted close."""
    out: dict[str, dict[date, Decimal]] = {}
    for s, r in daily.items():
        if (paid := _complete(r.dividends)) is not None:
            out[s] = dividends_from_column(series[s].days, paid)
        elif (adjusted := _complete(r.adjusted)) is not None:
            out[s] = dividends_from_adjusted(series[s].days, series[s].close, adjusted)
    return DividendSchedule(out, out)


def _expand(paths: Iterable[Path | str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.is_file() and q.name.lower().endswith((".csv", ".csv.gz"))))
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or directory")
    return out


def load_bars(
    paths: Iterable[Path | str],
    *,
    trading_days: Callable[[date, date], Sequence[date]] | None = None,
    strict: bool = True,
) -> LoadedBars:
    """Load every CSV named, or found directly inside a named directory (in sorted order).

    Args:
        paths: files and/or directories.
        trading_days: a `MarketCalendar.sessions`-like function (start, end) -> trading days; when given, daily
            rows dated on other days are skipped and reported.
        strict: when True a file that is not bar data raises; when False it is listed in `report.rejected`.

    Raises:
        DataError: a path does not exist, or (strict) a file is not bar data; the message names the file
            and the missing columns.
    """
    sessions = _session_days(trading_days) if trading_days is not None else None
    report = LoadReport()
    daily: dict[str, SymbolRows] = {}
    intraday: dict[str, SymbolRows] = {}
    intervals: dict[str, timedelta] = {}
    origin: dict[str, str] = {}
    for path in _expand(paths):
        try:
            parsed, file_report = parse_bar_file(path, session_days=sessions)
        except DataError as exc:
            if strict:
                raise
            report.rejected[path] = str(exc)
            continue
        report.files.append(file_report)
        store = daily if file_report.kind == "daily" else intraday
        for rows in parsed:
            key = f"{file_report.kind}:{rows.symbol}"
            if rows.symbol not in store:
                store[rows.symbol] = rows
                origin[key] = path.name
                if file_report.bar_interval is not None:
                    intervals[rows.symbol] = file_report.bar_interval
                continue
            if file_report.kind == "intraday" and intervals.get(rows.symbol) != file_report.bar_interval:
                file_report.skip(
                    f"{rows.symbol} already loaded from {origin[key]} with another bar length", len(rows.stamps)
                )
                file_report.rows_loaded -= len(rows.stamps)
                continue
            store[rows.symbol], dropped = _merge(store[rows.symbol], rows)
            file_report.skip(f"duplicate of a row already loaded from {origin[key]}", dropped)
            file_report.rows_loaded -= dropped
    days = _Days()
    series = {s: _series(r, days) for s, r in daily.items()}
    return LoadedBars(
        daily=series,
        intraday={s: _bars(r) for s, r in intraday.items()},
        intervals={s: intervals[s] for s in intraday if s in intervals},
        report=report,
        dividends=_dividends(daily, series),
    )


def load_bar_file(
    path: Path | str, *, trading_days: Callable[[date, date], Sequence[date]] | None = None
) -> LoadedBars:
    """Load a single CSV file (see `load_bars`)."""
    return load_bars([path], trading_days=trading_days)
