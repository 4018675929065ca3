"""The cycle decides, orders and fills exactly as it did before it became a pipeline of stages (issue 10).

Three fixed synthetic worlds are run session by session (open, cycle, fills one minute later, close,
reconciliation at the close, as the backtest does): fractional entries with trading paused for a week, whole
shares with broker-side stop legs, and a circuit breaker tripped by a dead quote feed (shadow book). For each, a
SHA-256 of every decision (`ProposalOutcome.to_json`), every order and fill at the broker, and the event log
(without the DEBUG step events the pipeline added: market_conditions, recall, risk, validation, llm_call, and
llm_decisions of issue 15) is pinned.

Where the numbers come from: `digest` below was run on commit 4d6d658 (the cycle before the refactor) with
`PYTHONPATH=<checkout of 4d6d658>:<dir of this file> python -c "import asyncio, test_cycle_golden as t;
print(asyncio.run(t.fingerprints()))"`, and the refactored cycle gives the same. A change of behaviour (or of
floating-point results after a numpy upgrade) changes them: find out which, and only then recompute.

Recomputed once for compact memory evidence (issue 15, `domain.evidence`): with `EvidencePolicy(compact=False)`
the digests of 4d6d658 come back unchanged (be6d93fe..., a2bc64f9..., 51d2a0d0...); with it on, every decision,
order, fill and event is the same but for the memory evidence they carry (open trades are no longer shown).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import date, timedelta
from typing import Any

from adapters.inmemory.market_data import SyntheticMarket
from domain.ports.repositories import EventQuery
from domain.trading_state import ControlState
from domain.verdict import Verdict
from tests.support.world import CALENDAR, World, feed_close, feed_fills, feed_open, make_world

STEP_EVENTS = {"market_conditions", "recall", "risk", "validation", "llm_call", "llm_decisions"}

PINNED: dict[str, tuple[str, dict[str, int]]] = {
    "fractional_paused": ("8d60175a30f276648e3fea763fe728f5b5359d9117c7758b8ddee4fdb2bf37ff", {
        "cycles": 124, "orders": 12, "fills": 12, "events": 533,
        "final BUY": 6, "final HOLD": 317, "final REJECTED": 41, "final SELL": 6}),
    "whole_shares": ("2cc6b3a2a987d45def58bf1a2eadaa17b683facc188282d53cda4de1d4a434f4", {
        "cycles": 83, "orders": 23, "fills": 14, "events": 552,
        "final BUY": 7, "final HOLD": 386, "final REJECTED": 44, "final SELL": 2}),
    "breaker_shadow": ("51d2a0d0908dafa62dd57f8efffc25d731d4cdd44d04f53702cb52d0826f96dc", {
        "cycles": 83, "orders": 0, "fills": 0, "events": 419,
        "final BUY": 12, "final HOLD": 288, "final SHADOW_EXIT": 10}),
}


def _order(o: Any) -> list[Any]:
    r = o.request
    return [o.client_order_id, o.symbol, r.side.value, str(r.qty), r.type.value, r.time_in_force.value,
            str(r.stop_price), str(r.limit_price), str(r.take_profit_price), r.fractional, o.status.value,
            str(o.filled_qty), o.parent_id is not None, r.reason]


def _fill(f: Any) -> list[Any]:
    return [f.client_order_id, f.symbol, f.side.value, str(f.qty), str(f.price), str(f.fee), f.at.isoformat(), f.reason]


async def _drive(world: World, days: list[date], *, dead_feed: int = 0,
                 paused: range = range(0)) -> dict[str, Any]:
    """Run `days`; quotes fail in the first `dead_feed` sessions; trading is paused (by the state, as the
    operator's switch stores it) during the sessions whose index is in `paused`."""
    app = world.app
    scope = app.cycle.scope
    live_quotes = app.market.latest_quotes

    async def dead(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("quote feed down")

    cycles = []
    for i, day in enumerate(days):
        app.market.latest_quotes = dead if i < dead_feed else live_quotes  # type: ignore[method-assign]
        if paused and (i in paused or i == paused.stop):
            control = ControlState(paused=i in paused, by="golden", reason="pinned pause" if i in paused else "",
                                   at=CALENDAR.session_open(day) - timedelta(hours=1))
            async with world.uow_factory() as uow:
                await uow.trading.set_control(scope, control, at=control.at)
                await uow.commit()
        feed_open(world, day)
        result = await app.cycle.run(as_of=CALENDAR.session_open(day))
        cycles.append([result.cycle_id, result.status, result.orders, result.shadow, str(result.equity),
                       [o.to_json() for o in result.outcomes]])
        feed_fills(world, day)
        feed_close(world, day)
        await app.cycle.reconcile(as_of=CALENDAR.session_close(day))
    async with world.uow_factory() as uow:
        events = await uow.events.query(EventQuery(scope=scope, limit=1_000_000))
    return {
        "cycles": cycles,
        "orders": [_order(o) for o in app.broker.all_orders()],
        "fills": [_fill(f) for f in app.broker.fills],
        "events": [[str(e.type), e.at.isoformat(), e.message, str(e.severity), e.cycle_id, e.symbol, e.payload]
                   for e in events if str(e.type) not in STEP_EVENTS],
    }


def _fingerprint(run: dict[str, Any]) -> tuple[str, dict[str, int]]:
    text = json.dumps(run, sort_keys=True, default=str, separators=(",", ":"))
    verdicts = Counter(o["final"] for c in run["cycles"] for o in c[5])
    counts = {"cycles": len(run["cycles"]), "orders": len(run["orders"]), "fills": len(run["fills"]),
              "events": len(run["events"]), **{f"final {k}": v for k, v in sorted(verdicts.items())}}
    return hashlib.sha256(text.encode()).hexdigest(), counts


async def _fractional_paused() -> dict[str, Any]:
    world = await make_world(start=date(2024, 1, 2), end=date(2024, 6, 28))
    return await _drive(world, CALENDAR.sessions(date(2024, 1, 2), date(2024, 6, 28)), paused=range(60, 65))


async def _whole_shares() -> dict[str, Any]:
    start, end = date(2024, 1, 2), date(2024, 4, 30)
    market = SyntheticMarket(seed=3, n_symbols=12, start=start - timedelta(days=400), end=end, calendar=CALENDAR,
                             default_fractionable=False)
    world = await make_world(start=start, end=end, market=market, scope="backtest:golden")
    return await _drive(world, CALENDAR.sessions(start, end))


async def _breaker_shadow() -> dict[str, Any]:
    world = await make_world(end=date(2024, 6, 28))
    return await _drive(world, CALENDAR.sessions(date(2024, 3, 1), date(2024, 6, 28)), dead_feed=3)


async def fingerprints() -> dict[str, tuple[str, dict[str, int]]]:
    """The fingerprint of each world (what PINNED holds)."""
    return {"fractional_paused": _fingerprint(await _fractional_paused()),
            "whole_shares": _fingerprint(await _whole_shares()),
            "breaker_shadow": _fingerprint(await _breaker_shadow())}


async def test_the_pipeline_decides_orders_fills_and_logs_as_the_cycle_did_before_it() -> None:
    got = await fingerprints()
    finals = {k for _, counts in got.values() for k in counts if k.startswith("final ")}
    assert finals == {f"final {v}" for v in Verdict}, "the worlds should end in every verdict"
    for name, (digest, counts) in PINNED.items():
        assert got[name][1] == counts, f"{name}: the counts changed"
        assert got[name][0] == digest, f"{name}: same counts, different decisions, orders, fills or events"
