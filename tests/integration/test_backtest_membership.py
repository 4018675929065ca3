"""With point-in-time index membership in the data directory, `quorum backtest` only picks symbols that were
members at the start; the report states the survivorship of the data either way."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from adapters.inmemory.universe_file import read_universes
from application.membership import survivorship
from entrypoints.commands.backtest import choose_symbols
from entrypoints.container import build_container, close_container
from entrypoints.settings import load_settings
from tests.support.world import CALENDAR

START = date(2016, 6, 1)


def _data(tmp_path: Path, universe: dict | None) -> Path:  # type: ignore[type-arg]
    d = tmp_path / "data"
    d.mkdir()
    days = CALENDAR.sessions(date(2016, 1, 4), date(2016, 7, 29))
    for k, symbol in enumerate(["AAA", "BBB", "CCC", "DDD"]):
        rows = [f"{day},{20 + k},{21 + k},{19 + k},{20 + k},{(k + 1) * 100000},{symbol}" for day in days]
        (d / f"{symbol}_data.csv").write_text("date,open,high,low,close,volume,Name\n" + "\n".join(rows) + "\n")
    if universe is not None:
        (d / "universe.json").write_text(json.dumps(universe))
    return d


async def _chosen(data: Path) -> list[str]:
    c = build_container(load_settings(env="test"), "backtest", storage="memory", scope="backtest:m", start=START,
                        end=date(2016, 6, 30), cash=Decimal(650), data_dirs=[data])
    try:
        return sorted(await choose_symbols(c, read_universes([data]), START, 10))
    finally:
        await close_container(c)


async def test_point_in_time_membership_leaves_out_who_was_not_a_member_at_the_start(tmp_path: Path) -> None:
    data = _data(tmp_path, {"name": "test index", "point_in_time": True, "members": {
        "AAA": [["2000-01-03", None]], "BBB": [["2016-06-02", None]],      # joined the day after the start
        "CCC": [["2000-01-03", "2016-05-31"]], "DDD": [["2010-01-04", None]]}})
    assert await _chosen(data) == ["AAA", "DDD"]
    statement = survivorship(read_universes([data]))
    assert statement.membership == "point_in_time" and not statement.biased


async def test_without_point_in_time_membership_every_stock_may_be_chosen_and_the_bias_is_stated(
        tmp_path: Path) -> None:
    data = _data(tmp_path, {"name": "members of 2018", "membership_as_of": "2018-02-08", "point_in_time": False})
    assert await _chosen(data) == ["AAA", "BBB", "CCC", "DDD"]
    assert survivorship(read_universes([data])).statement.startswith(
        "Survivorship bias: the universe is index members as of 2018-02-08 (members of 2018)")
