"""Where a user can go wrong, `quorum` says so in one line: bad option values exit 2 naming the option, and any
error a command did not handle is `error: <Type>: <message>` with exit 1 (the traceback only with --debug)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from entrypoints.cli import app
from entrypoints.cli_errors import set_debug
from entrypoints.commands import db
from entrypoints.database_schema import SchemaBehindError
from entrypoints.logging_setup import register_secret

SECRET = "pw-cli-errors-9173"


@pytest.fixture(autouse=True)
def no_debug_left_over() -> Iterator[None]:
    yield
    set_debug(False)


def quorum(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def raising(exc: Exception) -> Any:
    def boom(*_a: Any, **_k: Any) -> Any:
        raise exc

    return boom


def test_an_unhandled_error_is_one_line_naming_its_type_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    register_secret(SECRET)
    monkeypatch.setattr(db, "_url", raising(RuntimeError(f"boom with {SECRET}\n[SQL: SELECT 1]")))
    result = quorum("db", "status")
    assert result.exit_code == 1
    assert result.stderr == "error: RuntimeError: boom with *** (run with --debug for the traceback)\n"
    assert result.stdout == ""


def test_with_debug_the_traceback_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    register_secret(SECRET)
    monkeypatch.setattr(db, "_url", raising(KeyError(f"no {SECRET}")))
    result = quorum("--debug", "db", "status")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr and "raise exc" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: KeyError:")
    assert SECRET not in result.stderr


def test_an_error_that_says_what_to_do_keeps_its_own_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    behind = SchemaBehindError("external PostgreSQL at db:5432/q is at migration none: run `quorum db upgrade`")
    monkeypatch.setattr(db, "_url", raising(behind))
    result = quorum("db", "status")
    assert result.exit_code == 2
    assert result.stderr == f"error: {behind}\n"


def test_usage_errors_are_still_click_s_own() -> None:
    result = quorum("backtest", "--symbols", "0")
    assert result.exit_code == 2 and "Traceback" not in result.output


def bar_csv(path: Path, header: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{header}\n2024-01-02,1,2,0.5,1.5,100\n")
    return path


@pytest.mark.parametrize(("value", "shown"), [("nan", "positive"), ("inf", "positive"), ("-Infinity", "positive"),
                                              ("-5", "positive"), ("0", "positive"), ("0.00", "positive"),
                                              ("12abc", "like 650")])
@pytest.mark.parametrize("command", ["backtest", "rehearse"])
def test_a_bad_cash_amount_is_refused_in_one_line(command: str, value: str, shown: str) -> None:
    result = quorum(command, "--cash", value)
    [line] = result.stderr.splitlines()
    assert result.exit_code == 2 and line.startswith("error: --cash must be ")
    assert shown in line and line.endswith(f"got {value!r}")


@pytest.mark.parametrize("command", ["backtest", "rehearse"])
def test_a_start_after_the_end_is_refused(command: str) -> None:
    result = quorum(command, "--start", "2024-03-01", "--end", "2024-02-01")
    assert (result.exit_code, result.stderr) == (2, "error: --start 2024-03-01 is after --end 2024-02-01\n")


def test_an_unreadable_date_is_refused() -> None:
    result = quorum("backtest", "--start", "2024-02-30", "--end", "2024-03-01")
    assert (result.exit_code, result.stderr) == (2, "error: --start must be a date like 2024-01-31, got "
                                                    "'2024-02-30'\n")


@pytest.mark.parametrize("command", [["backtest"], ["rehearse", "--start", "2024-01-02", "--end", "2024-02-01"],
                                     ["evals", "backtest"]])
def test_data_directories_are_checked_before_anything_starts(tmp_path: Path, command: list[str]) -> None:
    empty, no_csv, missing, fine = (tmp_path / n for n in ("empty", "no-csv", "missing-columns", "fine"))
    empty.mkdir()
    no_csv.mkdir()
    (no_csv / "README.md").write_text("bars elsewhere")
    bar_csv(fine / "AAPL.csv", "date,open,high,low,close,volume")
    bar_csv(missing / "MSFT.csv", "date,open,high,low,close,volume")
    with gzip.open(missing / "SPY.csv.gz", "wt") as fh:
        fh.write("Date,Close,Volume\n2024-01-02,470,1000\n")
    cases = {
        empty: f"error: --data {empty} has no .csv or .csv.gz bar files",
        no_csv: f"error: --data {no_csv} has no .csv or .csv.gz bar files",
        tmp_path / "nowhere": f"error: --data {tmp_path / 'nowhere'} is not a directory (it does not exist)",
        fine / "AAPL.csv": f"error: --data {fine / 'AAPL.csv'} is not a directory",
        missing: f"error: --data: {missing / 'SPY.csv.gz'}: not bar data: missing column(s) open, high, low "
                 "(found: 'Date', 'Close', 'Volume')",
    }
    for directory, message in cases.items():
        result = quorum(*command, "--data", str(fine), "--data", str(directory))
        assert (result.exit_code, result.stderr) == (2, message + "\n"), directory
