"""The success criteria of a paper campaign, each measured from what the system recorded (pure functions).

Each returns a `Criterion`: passed True or False, or None while it cannot be measured yet (no session, no closed
trade, no probe, no eval run), with a line saying what was measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from application.round_trips import RoundTrip
from domain.analytics import sharpe_ratio
from domain.events import Event, EventType
from domain.paper import Criterion
from domain.ports.repositories import EvalRunRecord

NO_CRASH = "no crash"
SHARPE = "Sharpe > 0"
WIN_RATE = "win rate > 50%"
WORST_TRADE = "no trade lost more than 20%"
BREAKER_RULES_EXERCISED = "every breaker rule exercised"
CHAT_ANSWERING = "chat answering"
EVALS_PASSING = "evals passing"
CRITERIA = (NO_CRASH, SHARPE, WIN_RATE, WORST_TRADE, BREAKER_RULES_EXERCISED, CHAT_ANSWERING, EVALS_PASSING)
BREAKER_RULES = ("drawdown", "daily_loss", "consecutive_losses", "system_errors")
"""Every trigger of `domain.breaker` (`record_equity`, `record_trade_result`, `record_cycle_outcome`)."""
MAX_TRADE_LOSS = 0.20
PASSING_VERDICTS = frozenset({"ok", "noise"})
FAILING_VERDICTS = frozenset({"regression", "refused"})


def no_crash(expected_cycles: Sequence[str], events: Sequence[Event]) -> Criterion:
    """Every scheduled cycle due ran (uptime), none failed, no job failed; restarts are counted and shown.

    Args:
        expected_cycles: ids of the scheduled cycles due since the start.
        events: the scope's CYCLE_STARTED, CYCLE_SKIPPED, SYSTEM_ERROR and PROCESS_STARTED events since the start.
    """
    ran = {e.cycle_id for e in events if e.cycle_id and (
        e.type in (EventType.CYCLE_STARTED, EventType.SYSTEM_ERROR)
        or (e.type is EventType.CYCLE_SKIPPED and e.payload.get("reason") != "stale"))}
    errors = [e for e in events if e.type is EventType.SYSTEM_ERROR]
    failed = len({e.cycle_id for e in errors if e.cycle_id})
    other = sum(1 for e in errors if not e.cycle_id)
    restarts = sum(1 for e in events if e.type is EventType.PROCESS_STARTED)
    if not expected_cycles:
        return Criterion(NO_CRASH, None, f"no scheduled cycle due yet; {failed} failed cycles, {other} job "
                         f"errors, {restarts} restarts")
    up = sum(1 for c in expected_cycles if c in ran)
    missed = len(expected_cycles) - up
    detail = (f"uptime {up / len(expected_cycles):.1%} ({up}/{len(expected_cycles)} scheduled cycles ran, {missed} "
              f"missed), {failed} failed cycles, {other} job errors, {restarts} restarts")
    return Criterion(NO_CRASH, missed == 0 and failed == 0 and other == 0, detail)


def daily_returns(start_equity: Decimal, start_deposits: Decimal,
                  closes: Sequence[tuple[Decimal, Decimal]]) -> list[float]:
    """Daily returns net of deposits: from `start_equity` through each (equity, running net deposits) close."""
    out: list[float] = []
    prev_equity, prev_deposits = start_equity, start_deposits
    for equity, deposits in closes:
        if prev_equity > 0:
            out.append(float((equity - (deposits - prev_deposits)) / prev_equity) - 1.0)
        prev_equity, prev_deposits = equity, deposits
    return out


def sharpe(returns: Sequence[float]) -> Criterion:
    """The annualised Sharpe ratio of the campaign's daily returns is above zero (needs two returns)."""
    if len(returns) < 2:
        return Criterion(SHARPE, None, f"{len(returns)} daily returns: 2 are needed")
    ratio = sharpe_ratio(returns)
    if ratio is None:
        return Criterion(SHARPE, None, f"{len(returns)} daily returns, all flat: no Sharpe ratio yet")
    shown = "inf" if math.isinf(ratio) else f"{ratio:.2f}"
    return Criterion(SHARPE, ratio > 0, f"Sharpe {shown} over {len(returns)} daily returns")


def win_rate(trips: Sequence[RoundTrip]) -> Criterion:
    """More than half of the closed round trips made money (net of fees)."""
    if not trips:
        return Criterion(WIN_RATE, None, "no closed round trip yet")
    wins = sum(1 for t in trips if t.pnl > 0)
    rate = wins / len(trips)
    return Criterion(WIN_RATE, rate > 0.5, f"{rate:.1%} ({wins} of {len(trips)} round trips won)")


def worst_trade(trips: Sequence[RoundTrip]) -> Criterion:
    """No closed round trip lost more than `MAX_TRADE_LOSS` of its cost."""
    if not trips:
        return Criterion(WORST_TRADE, None, "no closed round trip yet")
    worst = min(trips, key=lambda t: t.return_pct)
    return Criterion(WORST_TRADE, worst.return_pct >= -MAX_TRADE_LOSS,
                     f"worst {worst.return_pct:+.2%} ({worst.symbol}, closed {worst.closed_at.date().isoformat()}); "
                     f"limit -{MAX_TRADE_LOSS:.0%}")


def breaker_rules(market_trips: Sequence[Event], drill_trips: Sequence[Event]) -> Criterion:
    """Every breaker rule tripped at least once: by the market in the campaign's scope, or in a drill.

    Args:
        market_trips: BREAKER_TRIPPED events of the campaign's scope since the start.
        drill_trips: BREAKER_TRIPPED events of its drill scope since the start (`application.paper.drill`).
    """
    seen: dict[str, str] = {}
    for how, trips in (("market", market_trips), ("drill", drill_trips)):
        for e in sorted(trips, key=lambda e: e.at):
            trigger = str(e.payload.get("trigger") or "")
            if trigger in BREAKER_RULES and trigger not in seen:
                seen[trigger] = f"{trigger} ({how} {e.at.date().isoformat()})"
    missing = [r for r in BREAKER_RULES if r not in seen]
    done = ", ".join(seen[r] for r in BREAKER_RULES if r in seen) or "none"
    if missing:
        return Criterion(BREAKER_RULES_EXERCISED, False, f"tripped: {done}; never: {', '.join(missing)} (run "
                         "`quorum paper drill`)")
    return Criterion(BREAKER_RULES_EXERCISED, True, f"tripped: {done}")


def chat_answering(probes: Sequence[Event]) -> Criterion:
    """Every chat probe since the start was answered (CHAT_PROBE events, `application.paper.chat_probe`)."""
    if not probes:
        return Criterion(CHAT_ANSWERING, None, "the chat was not probed yet")
    ordered = sorted(probes, key=lambda e: e.at)
    failed = [e for e in ordered if not e.payload.get("ok")]
    last = ordered[-1]
    detail = (f"{len(ordered) - len(failed)} of {len(ordered)} probes answered; last {last.at.isoformat()} by "
              f"{last.payload.get('model', '?')}")
    if failed:
        detail += f"; last failure: {failed[-1].payload.get('detail', failed[-1].message)}"
    return Criterion(CHAT_ANSWERING, not failed, detail)


def evals_passing(runs: Sequence[EvalRunRecord]) -> Criterion:
    """The latest eval run since the start passed its regression gate (verdict ok or noise)."""
    if not runs:
        return Criterion(EVALS_PASSING, None, "no eval run since the campaign started")
    last = max(runs, key=lambda r: r.at)
    detail = f"latest run {last.id} at {last.at.isoformat()}: {last.verdict} ({len(runs)} runs)"
    if last.verdict in PASSING_VERDICTS:
        return Criterion(EVALS_PASSING, True, detail)
    if last.verdict in FAILING_VERDICTS:
        return Criterion(EVALS_PASSING, False, detail)
    return Criterion(EVALS_PASSING, None, detail + "; nothing to compare with yet (it became the baseline: the next "
                     "run is gated against it)")
