"""Forward returns on real daily bars (../shared/data/daily/sp500_2013_2018 and daily/context; skipped when absent).

The market replays a temporary directory of symlinks to a handful of files (nothing is copied). The
expected values are computed here from the CSV text itself, independently of the loader: the 1-, 5- and
20-day forward returns are close-to-close returns from the last close known at the suggestion, the universe
return is their equal-weighted mean, and nothing is filled before the closing bar is known.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import pytest

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.market_data import ReplayMarketData
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.discovery.forward_returns import ForwardReturnUpdater
from domain.ports.discovery import DiscoveryRun, Suggestion

STOCKS = ("AAPL", "MSFT", "XOM", "JPM")
SUGGESTED = ("AAPL", "XOM")
D0 = date(2016, 3, 1)
CAL = NyseCalendar()
SCOPE = "live"


@pytest.fixture(scope="module")
def data_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    stocks, context = shared_data / "daily" / "sp500_2013_2018", shared_data / "daily" / "context"
    files = [stocks / f"{s}_data.csv" for s in STOCKS] + [context / "SPY.csv"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        pytest.skip(f"real bars missing: {', '.join(missing)}")
    links = tmp_path_factory.mktemp("real_bars")
    for f in files:
        (links / f.name).symlink_to(f)
    return links


def closes(path: Path) -> dict[date, float]:
    with path.open(newline="") as fh:
        return {date.fromisoformat(row["date"]): float(row["close"]) for row in csv.DictReader(fh)}


def session(n: int) -> date:
    day = D0
    for _ in range(n):
        day = CAL.next_session(day)
    return day


async def test_forward_returns_equal_close_to_close_returns_and_wait_for_the_data(data_dir: Path) -> None:
    market = ReplayMarketData([data_dir], CAL)
    truth = {s: closes(data_dir / f"{s}_data.csv") for s in STOCKS}
    db = InMemoryDatabase(HashingEmbedder())
    made = CAL.session_open(CAL.next_session(D0))  # the last close known at the suggestion is D0's
    async with InMemoryUnitOfWork(db) as uow:
        await uow.suggestions.add_run(DiscoveryRun("r1", SCOPE, made, ("metric",), len(STOCKS),
                                                   {"universe": list(STOCKS), "snapshot_day": D0.isoformat()}))
        await uow.suggestions.add([Suggestion("r1", SCOPE, "ensemble", s, 0.8, i, made)
                                   for i, s in enumerate(SUGGESTED, start=1)])
        await uow.commit()
    updater = ForwardReturnUpdater(lambda: InMemoryUnitOfWork(db), market, CAL, scope=SCOPE)

    async def known() -> dict[str, Suggestion]:
        async with InMemoryUnitOfWork(db) as uow:
            return {s.symbol: s for s in await uow.suggestions.list(SCOPE)}

    for horizon in (1, 5, 20):
        end = session(horizon)
        await updater.update(CAL.session_close(end) - timedelta(minutes=1))
        assert all(horizon not in s.forward_returns for s in (await known()).values()), f"{horizon}d filled early"
        report = await updater.update(CAL.session_close(end))
        assert report.filled[horizon] == len(SUGGESTED)
        expected_universe = sum(truth[s][end] / truth[s][D0] - 1 for s in STOCKS) / len(STOCKS)
        for symbol, s in (await known()).items():
            assert s.forward_returns[horizon] == pytest.approx(truth[symbol][end] / truth[symbol][D0] - 1, abs=1e-12)
            assert s.universe_returns[horizon] == pytest.approx(expected_universe, abs=1e-12)
            assert all(h <= horizon for h in s.forward_returns)
    assert session(20) - D0 > timedelta(days=20)  # trading days, not calendar days
