"""The hard limits over a cycle's outcomes, in order: each actionable outcome is judged with the orders,
exposure and cash already approved before it in the same cycle, and gets its verdict (BUY, SELL or REJECTED)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal

from application.cycle.decision import DecisionInputs, ProposalOutcome
from application.cycle.market_snapshot import Snapshot
from domain.risk.config import RiskSettings
from domain.risk.limits import LimitContext, LimitDecision, ProposedTrade, apply_hard_limits
from domain.verdict import Verdict

ClientOrderId = Callable[[str, str], str]


def apply_limits(outcomes: Sequence[ProposalOutcome], snap: Snapshot, d: DecisionInputs, risk: RiskSettings,
                 client_order_id: ClientOrderId) -> list[ProposalOutcome]:
    """Every undecided outcome judged by the validators' results and the hard limits, tracking the entry orders
    and their exposure as they accrue; outcomes decided earlier pass unchanged.

    Args:
        client_order_id: (symbol, action) -> the order's deterministic client order id.
    """
    out: list[ProposalOutcome] = []
    orders, pending = 0, Decimal(0)
    for o in outcomes:
        if o.final is not None:
            out.append(o)
            continue
        entry = o.signal.action == "BUY"
        refusal = _validators_refusal(o) if entry else None
        if refusal is not None:
            out.append(o.decided(Verdict.REJECTED, refusal))
            continue
        ctx = _limit_ctx(snap, d, orders, pending, entry=entry and o.symbol not in snap.positions)
        limit = apply_hard_limits(_proposed(o), ctx, risk, client_order_id=client_order_id(o.symbol, o.signal.action))
        final, reason = _verdict(o, limit)
        out.append(replace(o, limit=limit, final=final, reason=reason))
        if entry and limit.order is not None:
            orders += 1
            pending += limit.order.qty * snap.prices.get(o.symbol, Decimal(0))
    return out


def _validators_refusal(o: ProposalOutcome) -> str | None:
    """Why an entry may not reach the hard limits (no sizing, a validator said no), or None."""
    if o.assessment is None:
        return "risk agent gave no sizing"
    if o.validation is not None and not o.validation.approved:
        return f"validator: {o.validation.rejected_reason}"
    if o.verdict is None:
        return "validator agent gave no verdict"
    if not o.verdict.approve:
        return f"validator agent: {o.verdict.reasoning}"
    return None


def _verdict(o: ProposalOutcome, limit: LimitDecision) -> tuple[Verdict, str]:
    if limit.order is None:
        return Verdict.REJECTED, f"{limit.rejected_by}: {limit.reason}"
    return Verdict(o.signal.action), limit.order.reason or o.signal.reasoning


def _proposed(o: ProposalOutcome) -> ProposedTrade:
    """The proposal as the hard limits take it: the validators' confidence, the risk agent's sizing."""
    confidence = o.signal.confidence
    if o.validation is not None:
        confidence = o.validation.confidence
    if o.verdict is not None:
        confidence = max(0.0, confidence + o.verdict.confidence_adjustment)
    a = o.assessment
    trade = ProposedTrade(
        symbol=o.symbol, action=o.signal.action, confidence=confidence,
        position_pct=a.position_pct if a else 1.0,
        stop_loss_pct=a.stop_loss_pct if a else None, take_profit_pct=a.take_profit_pct if a else None,
        reasoning=o.signal.reasoning, is_stop_exit=o.is_stop_exit)
    if not all(math.isfinite(x) for x in (trade.confidence, trade.position_pct)):
        trade = replace(trade, confidence=0.0)
    return trade


def _limit_ctx(snap: Snapshot, d: DecisionInputs, orders: int, pending: Decimal, *, entry: bool) -> LimitContext:
    ctx = LimitContext(
        as_of=d.as_of, market_open=d.market_open, equity=snap.account.equity, cash=snap.account.cash,
        day_start_equity=d.day_start_equity, positions=snap.positions, prices=snap.prices,
        avg_dollar_volume=snap.adv, assets=snap.assets, orders_this_cycle=orders, pending_exposure=pending,
        day_trades_used=d.day_trades_used, today=d.as_of.astimezone(d.tz).date(), tz=d.tz,
        entries_allowed=d.entries_allowed, entry_block_reason=d.entry_block_reason,
        open_entries=snap.open_entries, cooldowns=d.state.cooling_down(d.as_of),
        buying_power=snap.account.buying_power)
    if entry and d.shadow_book is not None:
        book = d.shadow_book
        prices = {s: snap.prices.get(s, p.avg_entry_price) for s, p in book.positions.items()}
        equity = book.equity(prices)
        ctx = replace(ctx, equity=equity, cash=book.cash, day_start_equity=equity, positions=book.positions,
                      open_entries={}, buying_power=None, day_trades_used=0)
    return ctx

