"""`quorum data fetch`'s use case over a scripted source and the real CSV store: what is skipped, resumed,
fetched again, reported; and the store's files as the backtest loader reads them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from adapters.calendar import NyseCalendar
from adapters.inmemory.csv_bars import load_bars
from adapters.inmemory.daily_csv_store import DailyCsvStore
from application.data_fetch import DailyHistoryFetch, FetchStep
from domain.errors import BrokerError, DataError, RateLimitedError
from domain.ports.daily_history import DailyHistorySource, DailyHistoryStore, DailyRecord

CAL = NyseCalendar()
AFTER = datetime(2024, 3, 1, 23, tzinfo=UTC)


def record(day: date, close: float, adj: float | None = None) -> DailyRecord:
    return DailyRecord(day, close - 1, close + 1, close - 2, close, 1_000_000.0, close if adj is None else adj)


def history(first: date, last: date, base: float = 100.0, adj_factor: float = 1.0) -> list[DailyRecord]:
    return [record(d, base + i, (base + i) * adj_factor) for i, d in enumerate(CAL.sessions(first, last))]


class ScriptedSource:
    """Serves each symbol's records in pages; records every (symbol, start, end) asked; fails as told."""

    def __init__(self, data: dict[str, list[DailyRecord]], page: int = 10, listed: set[str] | None = None) -> None:
        self.data = data
        self.page = page
        self.listed_symbols = set(data) if listed is None else listed
        self.asked: list[tuple[str, date, date]] = []
        self.fail: dict[str, Exception] = {}
        self.fail_after_pages: int | None = None

    async def pages(self, symbol: str, start: date, end: date) -> AsyncIterator[list[DailyRecord]]:
        self.asked.append((symbol, start, end))
        if symbol in self.fail:
            raise self.fail[symbol]
        rows = [r for r in self.data.get(symbol, []) if start <= r.day <= end]
        for n, i in enumerate(range(0, len(rows), self.page)):
            if self.fail_after_pages is not None and n >= self.fail_after_pages:
                raise RateLimitedError("Alpaca rate limit hit (429) after 9 attempts")
            yield rows[i:i + self.page]

    async def listed(self, symbol: str) -> bool | None:
        return symbol in self.listed_symbols


def test_the_ports_are_implemented(tmp_path: Path) -> None:
    assert isinstance(ScriptedSource({}), DailyHistorySource)
    assert isinstance(DailyCsvStore(tmp_path), DailyHistoryStore)


async def test_fetches_writes_every_page_and_reports_progress(tmp_path: Path) -> None:
    source = ScriptedSource({"AAPL": history(date(2024, 1, 2), date(2024, 2, 29))}, page=15)
    store = DailyCsvStore(tmp_path)
    steps: list[FetchStep] = []

    report = await DailyHistoryFetch(source, store, CAL).run(["aapl"], date(2024, 1, 1), date(2024, 2, 29),
                                                               as_of=AFTER, progress=steps.append)

    assert [(o.symbol, o.status, o.stored, o.first, o.last) for o in report.outcomes] == [
        ("AAPL", "fetched", 41, date(2024, 1, 2), date(2024, 2, 29))]
    assert [s.stored for s in steps] == [15, 30, 41, 41] and steps[-1].outcome is not None
    assert store.read("AAPL") == source.data["AAPL"]
    assert store.covered("AAPL") == (date(2024, 1, 2), date(2024, 2, 29))


async def test_asks_only_for_sessions_closed_at_as_of(tmp_path: Path) -> None:
    source = ScriptedSource({"AAPL": history(date(2024, 1, 2), date(2024, 2, 29))})
    mid_session = datetime(2024, 2, 29, 17, tzinfo=UTC)  # 12:00 New York, Feb 29 still open

    report = await DailyHistoryFetch(source, DailyCsvStore(tmp_path), CAL).run(
        ["AAPL"], date(2024, 2, 1), date(2024, 3, 31), as_of=mid_session)

    assert source.asked == [("AAPL", date(2024, 2, 1), date(2024, 2, 28))]
    assert report.last == date(2024, 2, 28)


async def test_nothing_closed_in_the_span_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no trading session"):
        await DailyHistoryFetch(ScriptedSource({}), DailyCsvStore(tmp_path), CAL).run(
            ["AAPL"], date(2024, 3, 4), date(2024, 3, 8), as_of=AFTER)


async def test_a_complete_symbol_is_skipped_without_a_request(tmp_path: Path) -> None:
    data = {"AAPL": history(date(2024, 1, 2), date(2024, 2, 29))}
    store = DailyCsvStore(tmp_path)
    await DailyHistoryFetch(ScriptedSource(data), store, CAL).run(["AAPL"], date(2024, 1, 1), date(2024, 2, 29),
                                                                  as_of=AFTER)
    again = ScriptedSource(data)

    report = await DailyHistoryFetch(again, store, CAL).run(["AAPL"], date(2024, 1, 15), date(2024, 2, 29),
                                                            as_of=AFTER)

    assert again.asked == [] and report.outcomes[0].status == "complete"


async def test_a_deleted_file_is_fetched_again(tmp_path: Path) -> None:
    data = {"AAPL": history(date(2024, 1, 2), date(2024, 1, 31))}
    store = DailyCsvStore(tmp_path)
    await DailyHistoryFetch(ScriptedSource(data), store, CAL).run(["AAPL"], date(2024, 1, 1), date(2024, 1, 31),
                                                                  as_of=AFTER)
    store.path("AAPL").unlink()

    report = await DailyHistoryFetch(ScriptedSource(data), store, CAL).run(
        ["AAPL"], date(2024, 1, 1), date(2024, 1, 31), as_of=AFTER)

    assert (report.outcomes[0].status, report.outcomes[0].stored) == ("fetched", 21)
    assert store.read("AAPL") == data["AAPL"]


async def test_an_interrupted_symbol_continues_from_its_last_stored_session(tmp_path: Path) -> None:
    data = {"AAPL": history(date(2024, 1, 2), date(2024, 2, 29)), "MSFT": history(date(2024, 1, 2), date(2024, 2, 29))}
    store = DailyCsvStore(tmp_path)
    first = ScriptedSource(data, page=10)
    first.fail_after_pages = 2
    with pytest.raises(RateLimitedError):
        await DailyHistoryFetch(first, store, CAL).run(["AAPL", "MSFT"], date(2024, 1, 1), date(2024, 2, 29),
                                                       as_of=AFTER)
    partial = store.read("AAPL")
    assert len(partial) == 20 and store.covered("AAPL") is None and store.read("MSFT") == []

    second = ScriptedSource(data, page=10)
    report = await DailyHistoryFetch(second, store, CAL).run(["AAPL", "MSFT"], date(2024, 1, 1), date(2024, 2, 29),
                                                             as_of=AFTER)

    assert second.asked[0] == ("AAPL", partial[-1].day, date(2024, 2, 29))
    assert [(o.symbol, o.status, o.fetched, o.stored) for o in report.outcomes] == [
        ("AAPL", "fetched", 21, 41), ("MSFT", "fetched", 41, 41)]
    assert store.read("AAPL") == data["AAPL"]


async def test_a_longer_span_fetches_only_the_missing_head_and_tail(tmp_path: Path) -> None:
    data = {"AAPL": history(date(2023, 11, 1), date(2024, 2, 29))}
    store = DailyCsvStore(tmp_path)
    await DailyHistoryFetch(ScriptedSource(data), store, CAL).run(["AAPL"], date(2024, 1, 1), date(2024, 1, 31),
                                                                  as_of=AFTER)
    wider = ScriptedSource(data, page=100)

    await DailyHistoryFetch(wider, store, CAL).run(["AAPL"], date(2023, 12, 1), date(2024, 2, 29), as_of=AFTER)

    assert wider.asked == [("AAPL", date(2023, 12, 1), date(2024, 1, 2)),
                           ("AAPL", date(2024, 1, 31), date(2024, 2, 29))]
    assert store.read("AAPL") == [r for r in data["AAPL"] if r.day >= date(2023, 12, 1)]
    assert store.covered("AAPL") == (date(2023, 12, 1), date(2024, 2, 29))


async def test_changed_adjustments_fetch_the_whole_series_again(tmp_path: Path) -> None:
    store = DailyCsvStore(tmp_path)
    old = {"AAPL": history(date(2024, 1, 2), date(2024, 1, 31), adj_factor=1.0)}
    await DailyHistoryFetch(ScriptedSource(old), store, CAL).run(["AAPL"], date(2024, 1, 1), date(2024, 1, 31),
                                                                 as_of=AFTER)
    after_dividend = {"AAPL": history(date(2024, 1, 2), date(2024, 2, 29), adj_factor=0.99)}
    source = ScriptedSource(after_dividend, page=100)

    report = await DailyHistoryFetch(source, store, CAL).run(["AAPL"], date(2024, 1, 1), date(2024, 2, 29),
                                                             as_of=AFTER)

    assert source.asked[-1] == ("AAPL", date(2024, 1, 2), date(2024, 2, 29))
    assert store.read("AAPL") == after_dividend["AAPL"]
    assert "fetched again" in report.outcomes[0].detail


async def test_bad_symbols_are_reported_and_the_others_fetched(tmp_path: Path) -> None:
    data = {"AAPL": history(date(2024, 1, 2), date(2024, 1, 31)), "OLD": []}
    source = ScriptedSource(data, listed={"AAPL", "OLD"})
    source.fail["REFUSED"] = BrokerError("invalid symbol: REFUSED (400)")
    store = DailyCsvStore(tmp_path)

    report = await DailyHistoryFetch(source, store, CAL).run(["ZZZZ", "OLD", "REFUSED", "no/slash", "AAPL"],
                                                             date(2024, 1, 1), date(2024, 1, 31), as_of=AFTER)

    assert [(o.symbol, o.status) for o in report.outcomes] == [
        ("ZZZZ", "unknown"), ("OLD", "empty"), ("REFUSED", "failed"), ("NO/SLASH", "invalid"), ("AAPL", "fetched")]
    assert "invalid symbol" in report.outcomes[2].detail
    assert [o.symbol for o in report.problems] == ["ZZZZ", "OLD", "REFUSED", "NO/SLASH"]
    assert not store.path("ZZZZ").exists() and not store.path("OLD").exists() and store.path("AAPL").exists()


def test_files_read_back_with_the_backtest_loader_and_give_dividends(tmp_path: Path) -> None:
    days = CAL.sessions(date(2024, 2, 1), date(2024, 2, 8))
    closes = [100.0, 101.0, 102.0, 100.5, 101.5, 102.5]
    # adjusted closes step at the ex-date (4th session): older ones scaled by 1 - 0.5 / 102
    factor = 1 - 0.5 / 102.0
    rows = [DailyRecord(d, c - 0.5, c + 1, c - 1, c, 1e6 + i, c * (factor if i < 3 else 1.0))
            for i, (d, c) in enumerate(zip(days, closes, strict=True))]
    store = DailyCsvStore(tmp_path)
    store.write("BRK.B", rows)

    loaded = load_bars([tmp_path], trading_days=CAL.sessions)

    series = loaded.daily["BRK.B"]
    assert list(series.days) == days and list(series.close) == closes and list(series.volume) == [
        1e6 + i for i in range(6)]
    assert loaded.report.rows_skipped == 0
    assert {d: float(v) for d, v in loaded.dividends.of("BRK.B").items()} == {days[3]: 0.5}
    assert store.read("BRK.B") == rows


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DailyCsvStore(tmp_path)
    before = history(date(2024, 1, 2), date(2024, 1, 31))
    store.write("AAPL", before)
    text = store.path("AAPL").read_text()

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        store.write("AAPL", history(date(2024, 1, 2), date(2024, 2, 29)))

    assert store.path("AAPL").read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["AAPL_data.csv"]


async def test_a_file_in_another_format_is_not_overwritten(tmp_path: Path) -> None:
    foreign = tmp_path / "AAPL_data.csv"
    foreign.write_text("date,open,high,low,close,volume,Name\n2024-01-02,1,2,0.5,1.5,100,AAPL\n")
    source = ScriptedSource({"AAPL": history(date(2024, 1, 2), date(2024, 1, 31))})

    report = await DailyHistoryFetch(source, DailyCsvStore(tmp_path), CAL).run(
        ["AAPL"], date(2024, 1, 1), date(2024, 1, 31), as_of=AFTER)

    assert report.outcomes[0].status == "failed" and "not written by quorum data fetch" in report.outcomes[0].detail
    assert foreign.read_text().startswith("date,open,high,low,close,volume,Name\n2024-01-02")
