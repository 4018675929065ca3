"""`quorum backtest` on real bars counts --months back from the data's last day, not from today, and refuses a
--start after it (the fixture bars end on 2016-06-30)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from entrypoints.cli import app
from entrypoints.commands.backtest import _last_day, _period
from entrypoints.container import build_container
from entrypoints.settings import load_settings

MARKET = Path(__file__).resolve().parents[1] / "fixtures" / "market"
DIRS = [MARKET / "daily", MARKET / "context"]
TODAY = date(2026, 12, 5)


def test_months_are_counted_back_from_the_last_day_of_the_data() -> None:
    container = build_container(load_settings(env="test", _env_file=None), "backtest", storage="memory",
                                data_dirs=DIRS)
    assert _last_day(container, DIRS, TODAY) == date(2016, 6, 30)
    assert _period(1, None, None, lambda: _last_day(container, DIRS, TODAY)) == (date(2016, 5, 31), date(2016, 6, 30))
    assert _period(None, None, None, lambda: _last_day(container, DIRS, TODAY))[0] == date(2015, 12, 30)


def test_the_synthetic_market_ends_yesterday() -> None:
    container = build_container(load_settings(env="test", _env_file=None), "backtest", storage="memory")
    assert _period(1, None, None, lambda: _last_day(container, [], TODAY)) == (date(2026, 11, 4), date(2026, 12, 4))


def test_a_start_after_the_data_is_refused_with_the_data_s_last_day() -> None:
    out = CliRunner().invoke(app, ["backtest", "--data", str(DIRS[0]), "--data", str(DIRS[1]), "--start",
                                   "2017-01-03", "--end", "2017-01-31"])
    assert out.exit_code == 2, out.output
    assert "--start 2017-01-03 is after the data's last day 2016-06-30" in out.output
