"""Backtests are reproducible, and every executed trade lands in trade memory with its outcome once closed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.inmemory.market_data import SyntheticMarket
from application.backtest import BacktestResult
from domain.memory import MemoryFilters, MemoryRecord
from domain.models.trading import Fill, Side
from tests.support.world import CALENDAR, World, make_world

REPO_ROOT = Path(__file__).resolve().parents[2]
SCOPE = "backtest:determinism"
SEED, N = 3, 12
START, END = date(2024, 1, 2), date(2024, 4, 30)
FAR = datetime(2030, 1, 1, tzinfo=UTC)
NY = ZoneInfo("America/New_York")


async def whole_share_world() -> World:
    """Whole shares only, so entries get broker-side protective stops that fill at a session's close
    (exits then come both from the cycle at the open and from the broker at the close)."""
    market = SyntheticMarket(seed=SEED, n_symbols=N, start=START - timedelta(days=400), end=END, calendar=CALENDAR,
                             default_fractionable=False)
    return await make_world(start=START, end=END, n=N, seed=SEED, market=market, scope=SCOPE)


async def backtest(world: World, end: date = END) -> BacktestResult:
    return await world.app.runner.run(run_id="determinism", start=START, end=end,
                                      symbols=world.app.symbols)


def digest(result: BacktestResult) -> dict[str, Any]:
    """Everything a run decided and did, JSON-safe."""
    return {
        "symbols": result.symbols,
        "decisions": result.decisions,
        "fills": [[f.client_order_id, f.symbol, f.side.value, str(f.qty), str(f.price), str(f.fee), f.at.isoformat(),
                   f.reason] for f in result.fills],
        "equity": [[r.day.isoformat(), str(r.equity), str(r.cash), str(r.exposure)] for r in result.equity],
    }


async def trade_memories(world: World, as_of: datetime = FAR) -> list[MemoryRecord]:
    db = world.container.memory_db()
    items = await db.trade_memory.similar("BUY SELL", k=10_000, as_of=as_of, filters=MemoryFilters(scope=SCOPE))
    return [i.record for i in items]


async def test_two_identical_backtests_decide_fill_and_end_identically() -> None:
    first, second = await whole_share_world(), await whole_share_world()
    a, b = await backtest(first), await backtest(second)
    assert a.failed_cycles == b.failed_cycles == 0
    assert {f.side for f in a.fills} == {Side.BUY, Side.SELL}, "the period should open and close positions"
    assert a.decisions == b.decisions
    assert a.fills == b.fills
    assert a.equity == b.equity
    assert a.performance == b.performance
    memories_a = sorted((m.as_of, m.text, m.outcome) for m in await trade_memories(first))
    assert memories_a == sorted((m.as_of, m.text, m.outcome) for m in await trade_memories(second))


def _digest_in_subprocess(tmp_path: Path, hash_seed: str) -> dict[str, Any]:
    out = tmp_path / f"digest-{hash_seed}.json"
    code = ("import asyncio, json, sys\n"
            "from tests.integration.test_backtest_determinism import backtest, digest, whole_share_world\n"
            "async def main():\n"
            "    return digest(await backtest(await whole_share_world()))\n"
            "open(sys.argv[1], 'w').write(json.dumps(asyncio.run(main())))\n")
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", code, str(out)], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.mark.slow
async def test_a_backtest_is_identical_in_another_process_with_another_hash_seed(tmp_path: Path) -> None:
    here = json.loads(json.dumps(digest(await backtest(await whole_share_world()))))
    assert here["fills"]
    assert _digest_in_subprocess(tmp_path, "12345") == here


def _round_trips(fills: list[Fill]) -> tuple[list[tuple[Fill, Fill]], list[Fill]]:
    """(entry, exit) pairs in fill order, and the entries still open at the end."""
    open_: dict[str, Fill] = {}
    pairs = []
    for f in fills:
        if f.side is Side.BUY:
            assert f.symbol not in open_, "the policy never adds to a position"
            open_[f.symbol] = f
        else:
            pairs.append((open_.pop(f.symbol), f))
    return pairs, list(open_.values())


async def test_every_fill_has_a_trade_memory_and_entries_get_their_outcome_at_the_exit() -> None:
    world = await whole_share_world()
    result = await backtest(world)
    memories = await trade_memories(world)
    assert await world.container.memory_db().trade_memory.count(scope=SCOPE) == len(result.fills)
    by_fill = {(m.action, m.symbol, m.as_of): m for m in memories}
    assert sorted(by_fill) == sorted((f.side.value.upper(), f.symbol, f.at) for f in result.fills)

    pairs, still_open = _round_trips(result.fills)
    assert pairs, "the period should close positions"
    exits_at_close = [x for _, x in pairs if x.at == CALENDAR.session_close(x.at.astimezone(NY).date())]
    assert exits_at_close, "some exits should be broker stops filled at the close"
    for entry, exit_ in pairs:
        bought, sold = by_fill[("BUY", entry.symbol, entry.at)], by_fill[("SELL", exit_.symbol, exit_.at)]
        assert bought.return_pct is not None
        assert bought.outcome == ("WIN" if bought.return_pct > 0 else "LOSS")
        assert bought.outcome_at == exit_.at
        assert (sold.outcome, sold.return_pct, sold.outcome_at) == (bought.outcome, bought.return_pct, exit_.at)
    for entry in still_open:
        assert by_fill[("BUY", entry.symbol, entry.at)].outcome is None

    entry, exit_ = pairs[0]
    before_exit = {(m.action, m.symbol, m.as_of): m for m in await trade_memories(world, exit_.at - timedelta(
        seconds=1))}
    seen = before_exit[("BUY", entry.symbol, entry.at)]
    assert (seen.outcome, seen.return_pct, seen.outcome_at) == (None, None, None)
    assert ("SELL", exit_.symbol, exit_.at) not in before_exit


async def test_a_stop_filled_at_the_last_close_still_reaches_trade_memory() -> None:
    world = await whole_share_world()
    result = await backtest(world, end=date(2024, 2, 2))  # protective stops of S0007 and S0009 fill at this close
    last_close = CALENDAR.session_close(date(2024, 2, 2))
    stopped = {f.symbol for f in result.fills if f.side is Side.SELL and f.at == last_close}
    assert stopped
    assert await world.container.memory_db().trade_memory.count(scope=SCOPE) == len(result.fills)
    entries = {m.symbol: m for m in await trade_memories(world) if m.action == "BUY" and m.symbol in stopped}
    assert set(entries) == stopped
    assert all(m.outcome in ("WIN", "LOSS") and m.outcome_at == last_close for m in entries.values())
