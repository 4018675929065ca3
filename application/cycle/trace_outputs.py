"""What a cycle's trace shows of each stage and of the cycle: small JSON-safe summaries (counts, verdicts, money as
text), built only when tracing is on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from application.cycle.context import CycleContext, CycleResult
from application.cycle.decision import ProposalOutcome


def _gate(ctx: CycleContext) -> dict[str, object]:
    return {"shadow": ctx.shadow, "paused": ctx.paused, "opening_equity": str(ctx.opening_equity)}


def _snapshot(ctx: CycleContext) -> dict[str, object]:
    snap = ctx.snapshot
    return {"universe": len(ctx.universe), "positions": len(snap.positions) if snap else 0,
            "open_orders": len(snap.open_orders) if snap else 0, "stop_now": list(ctx.stop_now)}


def _send_exits(ctx: CycleContext) -> dict[str, object]:
    return {"exits": ctx.executed, "verdicts": verdict_counts(ctx.outcomes), "submitted": len(ctx.submitted),
            "rejected": list(ctx.rejected)}


def _decide(ctx: CycleContext) -> dict[str, object]:
    return {"outcomes": len(ctx.outcomes), "verdicts": verdict_counts(ctx.outcomes)}


def _execute(ctx: CycleContext) -> dict[str, object]:
    return {"submitted": len(ctx.submitted), "rejected": list(ctx.rejected), "shadow_fills": len(ctx.shadow_fills)}


def _book_keeping(ctx: CycleContext) -> dict[str, object]:
    return {"events": len(ctx.events), "closed_trades": len(ctx.closed)}


_STAGES: dict[str, Callable[[CycleContext], dict[str, object]]] = {
    "gate": _gate, "snapshot": _snapshot, "send_exits": _send_exits, "decide": _decide, "execute": _execute,
    "book_keeping": _book_keeping}


def verdict_counts(outcomes: Iterable[ProposalOutcome]) -> dict[str, int]:
    """Verdict -> number of outcomes (undecided ones under "undecided")."""
    finals = Counter(o.final.value if o.final is not None else "undecided" for o in outcomes)
    return dict(sorted(finals.items()))


def stage_outputs(stage: str, ctx: CycleContext) -> dict[str, object]:
    """What `stage` left in the context, and the cycle's status when it ended the cycle."""
    summary = _STAGES.get(stage)
    out = summary(ctx) if summary is not None else {}
    if ctx.result is not None:
        out["ended"] = ctx.result.status
    return out


def cycle_outputs(result: CycleResult) -> dict[str, object]:
    """The cycle's result: status, orders, shadow mode, equity, verdicts, error."""
    return {"status": result.status, "orders": result.orders, "shadow": result.shadow,
            "equity": None if result.equity is None else str(result.equity),
            "verdicts": verdict_counts(result.outcomes), "error": result.error}
