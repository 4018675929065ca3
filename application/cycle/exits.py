"""Exits no agent has to agree to: Quorum-kept stops and take-profits that were reached, positions already through
their stop, and shadow-book stops and take-profits. They never wait for an LLM and still run while trading is paused."""

from __future__ import annotations

from decimal import Decimal

from application.cycle.decision import DecisionInputs, ProposalOutcome
from application.cycle.market_snapshot import Snapshot
from domain.agents.schemas import SignalProposal
from domain.models.trading import Portfolio
from domain.trading_state import StopKeeper
from domain.verdict import Verdict


def _exit_outcome(sym: str, reasoning: str, *, stop: bool) -> ProposalOutcome:
    sig = SignalProposal(symbol=sym, action="SELL", confidence=1.0, reasoning=reasoning)
    return ProposalOutcome(sym, sig, is_stop_exit=stop)


def rule_exits(snap: Snapshot, d: DecisionInputs) -> list[ProposalOutcome]:
    """Quorum-kept stops and take-profits that were reached, and positions the protection step found already
    through their stop (undecided: the hard limits decide them)."""
    out = []
    for sym, pos in sorted(snap.positions.items()):
        trade, px = d.state.open_trades.get(sym), snap.prices.get(sym)
        if pos.qty <= 0:
            continue
        if sym in d.stop_now:
            out.append(_exit_outcome(sym, f"stop: price {px} is through the stop {pos.stop_price}", stop=True))
        elif trade is None or trade.stop_keeper is not StopKeeper.QUORUM or px is None:
            continue
        elif trade.stop_price is not None and px <= trade.stop_price:
            out.append(_exit_outcome(sym, f"stop hit: price {px} <= stop {trade.stop_price} (kept by Quorum)",
                                     stop=True))
        elif trade.take_profit_price is not None and px >= trade.take_profit_price:
            out.append(_exit_outcome(sym, f"take profit: price {px} >= {trade.take_profit_price} (kept by Quorum)",
                                     stop=False))
    return out


def shadow_stop_exits(snap: Snapshot, book: Portfolio | None) -> list[ProposalOutcome]:
    """Shadow-book positions whose stop or take-profit was touched (the latest price, or the low or high of a
    session completed since the entry), closed on the shadow book like the broker's bracket leg would close a real
    one (decided: SHADOW_EXIT); a session through both counts as the stop."""
    out: list[ProposalOutcome] = []
    for sym, pos in sorted((book.positions if book else {}).items()):
        stop, take, px, bars = pos.stop_price, pos.take_profit_price, snap.prices.get(sym), snap.bars.get(sym)
        low = high = None
        if bars is not None and len(bars) and pos.opened_at is not None and bars.days[-1] > pos.opened_at.date():
            low, high = Decimal(str(bars.low[-1])), Decimal(str(bars.high[-1]))
        if stop is not None and ((px is not None and px <= stop) or (low is not None and low <= stop)):
            out.append(_exit_outcome(sym, f"shadow stop hit: stop {stop}", stop=True).decided(
                Verdict.SHADOW_EXIT, "shadow-book stop (no order sent)"))
        elif take is not None and ((px is not None and px >= take) or (high is not None and high >= take)):
            out.append(_exit_outcome(sym, f"shadow take profit hit: take profit {take}", stop=False).decided(
                Verdict.SHADOW_EXIT, "shadow-book take-profit (no order sent)"))
    return out
