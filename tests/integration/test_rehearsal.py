"""`quorum rehearse`: the live stack (schedule, jobs, reconciliation, monitor, alerts, Alpaca adapters) against
the Alpaca-wire emulator replaying real sessions, with the invariants checked after every cycle."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from adapters.calendar.nyse import NyseCalendar
from adapters.inmemory.alpaca_emulator import AlpacaEmulator, Fault
from entrypoints.rehearsal import Rehearsal, RehearsalOptions
from entrypoints.settings import load_settings

pytestmark = pytest.mark.integration
REAL = Path(__file__).resolve().parents[1] / "fixtures" / "market"
DATA = (REAL / "daily", REAL / "context")


async def rehearse(tmp_path: Path, start: date, end: date, hook: Any = None, **kw: Any) -> dict[str, Any]:
    settings = load_settings(env="test")
    opts = RehearsalOptions(start, end, tmp_path / "report", kw.pop("data_dirs", DATA), symbols=kw.pop("symbols", 14),
                            **kw)
    return await Rehearsal(settings, opts, run_id=tmp_path.name[-12:], storage="memory").run(emulator_hook=hook)


async def test_twenty_real_sessions_keep_every_invariant_and_write_the_report(tmp_path: Path) -> None:
    summary = await rehearse(tmp_path, date(2016, 3, 1), date(2016, 3, 29))
    assert summary["sessions"] == 20 and summary["kind"] == "rehearsal"
    inv = summary["invariants"]
    assert inv["violations"] == [] and inv["checked"] >= 20 * 13 * 4
    assert summary["cycles"] >= 20 * 13 and summary["failed_cycles"] == 0
    assert summary["fills"] > 0, "the rehearsal should trade"
    report = tmp_path / "report"
    trips = list(csv.DictReader((report / "round_trips.csv").open()))
    assert summary["round_trips"] == len(trips) <= summary["fills"]
    assert sum(int(t["fills"]) for t in trips) <= summary["fills"]
    dividends = summary["dividends"]
    assert not dividends["counted"] and "AAPL" in dividends["reason"], "the stocks' files have no Adj Close"
    assert summary["survivorship"]["membership"] == "unknown" and summary["survivorship"]["biased"]
    on_disk = json.loads((report / "summary.json").read_text())
    assert on_disk["invariants"] == inv and on_disk["breaker"]["resume_policy"] == "approve-when-eligible"
    for name in ("trades.csv", "round_trips.csv", "dividends.csv", "equity.csv", "decisions.jsonl", "equity.png",
                 "report.html", "alerts.jsonl"):
        assert (report / name).is_file(), name
    alerts = [json.loads(line) for line in (report / "alerts.jsonl").read_text().splitlines()]
    assert Counter(a["type"] for a in alerts)["daily_summary"] == 20
    summarised = sorted(re.findall(r"\d{4}-\d{2}-\d{2}", a["title"] + " " + a["body"])[0]
                        for a in alerts if a["type"] == "daily_summary")
    assert summarised == [d.isoformat() for d in NyseCalendar().sessions(date(2016, 3, 1), date(2016, 3, 29))], \
        "one summary per rehearsed session, none for the session before the first"
    assert "Invariants" in (report / "report.html").read_text()


async def test_broker_faults_fail_cycles_cleanly_and_never_duplicate_an_order(tmp_path: Path) -> None:
    emulators: list[AlpacaEmulator] = []

    def faults(emu: AlpacaEmulator) -> None:
        emulators.append(emu)
        emu.inject(Fault("drop_after_accept", method="POST", path="/v2/orders", times=3))
        emu.inject(Fault("status", method="GET", path="/v2/positions", status=503, times=6))
        emu.inject(Fault("status", method="GET", path="/v2/account", status=429, retry_after=1, times=4))

    summary = await rehearse(tmp_path, date(2016, 3, 1), date(2016, 3, 9), faults)
    assert summary["invariants"]["violations"] == []
    emu = emulators[0]
    posted = [r for r in emu.requests if r.method == "POST" and r.path == "/v2/orders"]
    ids = [o.client_order_id for o in emu.exchange.orders() if o.parent_id is None]
    assert len(ids) == len(set(ids)), "an order that reached the broker was never sent twice"
    assert len(posted) > len(ids) or posted, "the dropped connections were retried as lookups, not resubmits"


async def test_five_minute_bars_are_replayed_inside_the_session(tmp_path: Path, shared_data: Path) -> None:
    five = shared_data / "intraday" / "5min_2025-05_2026-03"
    emulators: list[AlpacaEmulator] = []
    summary = await rehearse(tmp_path, date(2025, 9, 2), date(2025, 9, 5), emulators.append, symbols=8,
                             data_dirs=(five, shared_data / "daily" / "context"))
    assert summary["invariants"]["violations"] == [] and summary["sessions"] == 4
    bars = [r for r in emulators[0].requests if r.path == "/v2/stocks/bars" and r.param("timeframe") != "1Day"]
    assert bars, "the event monitor read intraday bars from the emulator"
