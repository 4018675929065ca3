"""Options shared by the commands that replay history (backtest, rehearse, evals): checked in one place, refused
in one line naming the option (exit code 2) before anything starts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from adapters.inmemory.bar_file import check_bar_header
from domain.errors import DataError
from entrypoints.bootstrap import fail

BAR_SUFFIXES = (".csv", ".csv.gz")


def parse_day(value: str | None, name: str) -> date | None:
    """A --start/--end value as a date (None when not given), or a one-line error."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        fail(f"{name} must be a date like 2024-01-31, got {value!r}")


def check_order(first: date | None, last: date | None) -> None:
    """Refuse a --start after the --end (either may be missing)."""
    if first is not None and last is not None and first > last:
        fail(f"--start {first} is after --end {last}")


def parse_cash(value: str | None, name: str = "--cash") -> Decimal | None:
    """A starting cash amount in USD (None when not given): a finite number above zero, or a one-line error."""
    if value is None:
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        fail(f"{name} must be an amount in USD like 650 or 1000.50, got {value!r}")
    if not amount.is_finite() or amount <= 0:
        fail(f"{name} must be a positive amount in USD, got {value!r}")
    return amount


def bar_files(directory: Path) -> list[Path]:
    """The .csv and .csv.gz files directly inside `directory` (what the bar loader reads), sorted."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name.lower().endswith(BAR_SUFFIXES))


def check_data_dirs(dirs: Iterable[Path], name: str = "--data") -> None:
    """Each directory exists, holds bar files, and every one of them has the columns of bar data."""
    for d in dirs:
        if not d.exists():
            fail(f"{name} {d} is not a directory (it does not exist)")
        if not d.is_dir():
            fail(f"{name} {d} is not a directory")
        files = bar_files(d)
        if not files:
            fail(f"{name} {d} has no .csv or .csv.gz bar files")
        for f in files:
            try:
                check_bar_header(f)
            except DataError as exc:
                fail(f"{name}: {exc}")
