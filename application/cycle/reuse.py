"""Ask only what is new (issue 15): which symbols the decide stage asks the agents about and which earlier
decisions of the session it reuses (`domain.decision_reuse`), kept in the scope's state document `REUSE_DOC`
so the reuse survives a restart and runs the same on the in-memory fakes.

A decision is reused while its key (the rounded context the agents see, the last daily bar, the position, its
stops, the symbol's last fill) is unchanged and the price moved less than `CycleSettings.reuse_price_move_pct`
since it was made; an event cycle asks again about its symbol; the next session asks afresh. Stand-ins for a
failed or missing answer are never kept. Every cycle the agents could run logs an LLM_DECISIONS event: the
symbols asked (and why), reused (and since when) and skipped by the cheap filters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from application.agents import answered_by_agent
from application.cycle.context import CycleContext
from application.cycle.decision import DecisionInputs, ProposalOutcome
from domain.agents.schemas import MarketConditions, RiskAssessment, SignalProposal, SymbolFeatures, ValidatorVerdict
from domain.decision_reuse import (
    DecisionKey,
    ReuseBook,
    StoredDecision,
    SymbolInputs,
    decision_key,
    why_ask,
)
from domain.events import EventType
from domain.ports.repositories import EventQuery
from domain.ports.uow import UnitOfWork
from domain.stage_events import llm_decisions

REUSE_DOC = "decision_reuse"
COUNTS = ("asked", "reused", "skipped_by_filters")


@dataclass
class ReusePlan:
    """One cycle's choice between asking and reusing, filled in as the decide stage goes.

    Attributes:
        reused: symbol -> the earlier decision whose signal is reused.
        asked: symbol -> why the agents are asked about it.
        reused_why: symbol -> since when its decision is reused.
        skipped: symbols the cheap filters kept from the agents.
        sizings: symbol -> the `sizing_key` its entry was judged on.
    """

    enabled: bool
    threshold_pct: float
    book: ReuseBook
    keys: dict[str, DecisionKey]
    prices: dict[str, Decimal | None]
    reused: dict[str, StoredDecision] = field(default_factory=dict)
    asked: dict[str, str] = field(default_factory=dict)
    reused_why: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    sizings: dict[str, str] = field(default_factory=dict)

    def to_ask(self, candidates: Sequence[SymbolFeatures]) -> list[SymbolFeatures]:
        """The candidates the signal agent must be asked about."""
        return [f for f in candidates if f.symbol not in self.reused]

    def reused_signals(self) -> dict[str, SignalProposal]:
        """The reused signal agent's proposals."""
        return {s: d.signal for s, d in self.reused.items()}

    def kept_sizing(self, symbol: str, sizing: str) -> tuple[RiskAssessment, ValidatorVerdict] | None:
        """The entry's reused sizing and verdict when its signal is reused and they were made on `sizing`; else
        None, and the symbol counts as asked."""
        self.sizings[symbol] = sizing
        stored = self.reused.get(symbol)
        kept = stored.sizing_for(sizing) if stored is not None else None
        if kept is None and stored is not None:
            self.asked[symbol] = "sizing inputs changed (cash, exposure or limits)" if stored.sizing else \
                "entry not sized by both agents earlier"
            self.reused_why.pop(symbol, None)
        return kept


def symbol_inputs(ctx: CycleContext, d: DecisionInputs, f: SymbolFeatures, market: MarketConditions) -> SymbolInputs:
    """What a decision about `f.symbol` is made on, read from the cycle's snapshot and state."""
    snap, sym = ctx.snap, f.symbol
    bars = snap.bars.get(sym)
    pos = snap.positions.get(sym) or d.shadow_positions.get(sym)
    trade = d.state.open_trades.get(sym)
    return SymbolInputs(f, market, bars.days[-1] if bars is not None and len(bars) else None,
                        held_qty=pos.qty if pos is not None else Decimal(0),
                        stop_price=pos.stop_price if pos is not None else None,
                        take_profit_price=trade.take_profit_price if trade is not None else None,
                        last_fill=d.last_fills.get(sym, ""))


async def plan_reuse(ctx: CycleContext, d: DecisionInputs, candidates: Sequence[SymbolFeatures],
                     market: MarketConditions | None, *, skipped: Iterable[str]) -> ReusePlan:
    """Which candidates are asked about and which earlier decisions are reused (none with reuse off)."""
    settings, session = ctx.deps.settings, _session(ctx)
    enabled = settings.reuse_decisions
    book = await load_book(ctx.uow, ctx.scope, session) if enabled else ReuseBook(session)
    plan = ReusePlan(enabled, settings.reuse_price_move_pct, book, {}, {}, skipped=sorted(skipped))
    if market is None:
        return plan
    for f in candidates:
        sym = f.symbol
        key = decision_key(symbol_inputs(ctx, d, f, market))
        price = ctx.snap.prices.get(sym)
        plan.keys[sym], plan.prices[sym] = key, price
        stored = book.decisions.get(sym)
        if not enabled:
            plan.asked[sym] = "reuse off"
        elif ctx.kind == "event" and ctx.symbol == sym:
            plan.asked[sym] = "event cycle for this symbol"
        elif (reason := why_ask(stored, key, price, threshold_pct=plan.threshold_pct)) is not None:
            plan.asked[sym] = reason
        elif stored is not None:
            plan.reused[sym] = stored
            plan.reused_why[sym] = f"inputs unchanged since {stored.asked_at.isoformat()} ({stored.cycle_id})"
    return plan


async def finish_reuse(ctx: CycleContext, plan: ReusePlan, outcomes: Sequence[ProposalOutcome]) -> CycleContext:
    """Keep this cycle's answers for the next cycles of the session (stand-ins for failed answers are dropped,
    so they are asked again) and log the LLM_DECISIONS event."""
    if plan.enabled:
        kept = dict(plan.book.decisions)
        for o in outcomes:
            sym = o.symbol
            if sym not in plan.keys:
                continue
            if sym in plan.reused:
                stored = plan.reused[sym]
            elif answered_by_agent(o.signal):
                stored = StoredDecision(sym, plan.keys[sym], plan.prices[sym], ctx.as_of, ctx.cycle_id, o.signal)
            else:
                kept.pop(sym, None)
                continue
            if sym in plan.sizings:
                stored = stored.with_sizing(plan.sizings[sym], o.assessment, o.verdict)
            kept[sym] = stored
        await save_book(ctx.uow, ctx.scope, ReuseBook(plan.book.session, kept), at=ctx.as_of)
    return ctx.logged(llm_decisions(at=ctx.as_of, scope=ctx.scope, cycle_id=ctx.cycle_id, reuse=plan.enabled,
                                    asked=plan.asked, reused=plan.reused_why, skipped=plan.skipped))


def _session(ctx: CycleContext) -> date:
    return ctx.as_of.astimezone(ctx.deps.calendar.tz).date()


async def load_book(uow: UnitOfWork, scope: str, session: date) -> ReuseBook:
    """The kept decisions of `session` (an earlier session's are not reused)."""
    doc = await uow.state.load(scope, REUSE_DOC)
    return (ReuseBook.from_dict(doc) if doc else ReuseBook(session)).for_session(session)


async def save_book(uow: UnitOfWork, scope: str, book: ReuseBook, *, at: datetime) -> None:
    """Store the kept decisions (in the cycle's transaction)."""
    await uow.state.save(scope, REUSE_DOC, book.to_dict(), at=at)


async def llm_decision_totals(uow: UnitOfWork, scope: str) -> dict[str, int]:
    """The LLM_DECISIONS events of `scope` summed: symbols asked about, decisions reused, symbols skipped by the
    cheap filters (what a report shows under "llm_decisions")."""
    events = await uow.events.query(EventQuery(scope=scope, types=(EventType.LLM_DECISIONS,), limit=10_000_000))
    return {name: sum(int(e.payload.get(name, 0)) for e in events) for name in COUNTS}
