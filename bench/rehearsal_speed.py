"""Rehearsal speed: `quorum rehearse` over 5 real sessions (the shipped fixture bars, 14 stocks), beside a
backtest of the same sessions and stocks in the same run.

- figure: wall seconds per rehearsed session: the live stack (schedule ticks every 5 minutes, 13 cycles a
  session, discovery, after-close jobs, alerts, the event monitor, invariants after every cycle) through the
  real Alpaca adapters over HTTP to the Alpaca-wire emulator;
- baseline: wall seconds per day of the backtest (one cycle a day on the in-process broker).

Both use in-memory repositories and the hashing embedder, so the figure measures the live path itself. The
issue's bar: "a session should take seconds".
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import Target, write_result

DATA = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "market"
START, END = date(2016, 3, 1), date(2016, 3, 7)


async def _rehearse(out: Path) -> tuple[float, dict[str, Any]]:
    from entrypoints.rehearsal import Rehearsal, RehearsalOptions
    from entrypoints.settings import load_settings

    settings = load_settings(env="test")
    opts = RehearsalOptions(START, END, out, (DATA / "daily", DATA / "context"), symbols=14)
    began = time.perf_counter()
    summary = await Rehearsal(settings, opts, run_id="bench", storage="memory").run()
    return time.perf_counter() - began, summary


async def _backtest(symbols: list[str]) -> tuple[float, int]:
    from entrypoints.container import build_container, close_container
    from entrypoints.settings import load_settings

    settings = load_settings(env="test")
    container = build_container(settings, "backtest", storage="memory", scope="bench:backtest", start=START,
                                end=END, cash=Decimal(650), seed=1, data_dirs=(DATA / "daily", DATA / "context"),
                                symbols=symbols)
    runner = container.backtest_runner()
    began = time.perf_counter()
    try:
        result = await runner.run(run_id="bench", start=START, end=END, symbols=symbols)
    finally:
        await close_container(container)
    return time.perf_counter() - began, len(result.equity)


def run() -> dict[str, Any]:
    """Run both and write bench/results/rehearsal_speed.json."""
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="quorum-bench-rehearsal-") as tmp:
        wall, summary = asyncio.run(_rehearse(Path(tmp)))
    sessions = int(summary["sessions"])
    per_session = wall / sessions
    bt_wall, days = asyncio.run(_backtest(list(summary["symbols"])))
    per_day = bt_wall / days
    print(f"[rehearsal_speed] rehearsal: {sessions} sessions, {summary['cycles']} cycles in {wall:.1f}s = "
          f"{per_session:.2f} s/session; backtest {days} days in {bt_wall:.1f}s = {per_day:.3f} s/day")
    return write_result(
        "rehearsal_speed",
        figures={"seconds_per_session": round(per_session, 3), "cycles": summary["cycles"],
                 "invariant_checks": summary["invariants"]["checked"],
                 "violations": len(summary["invariants"]["violations"])},
        baselines={"backtest_seconds_per_day": round(per_day, 4)},
        ratios={"rehearsal_session_over_backtest_day": round(per_session / per_day, 1)},
        targets=[Target("seconds_per_session", "<", 10.0, per_session, "s"),
                 Target("violations", "<=", 0, len(summary["invariants"]["violations"]))],
        details={"period": f"{START}..{END}", "symbols": summary["symbols"], "data": "tests/fixtures/market",
                 "repositories": "in-memory", "embedder": "hashing", "tick_minutes": 5},
        started=started,
    )


if __name__ == "__main__":
    run()
