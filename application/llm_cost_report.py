"""What a run's LLM calls cost per decision and per executed trade (the summary of a backtest or a rehearsal).

Every call is one `llm_calls` record, its retries and re-asks included (their tokens and cost summed in it), failed
calls too. A decision is a symbol the agents decided on in a cycle, with a fresh answer or an earlier one reused
(`llm_decisions`' asked + reused); a trade is an executed order (a fill).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from domain.ports.repositories import LLMCallRecord


def llm_cost_summary(calls: Sequence[LLMCallRecord], decisions: Mapping[str, int], trades: int) -> dict[str, Any]:
    """The run's LLM calls, tokens and cost per decision and per trade (None when there were none).

    Args:
        calls: every LLM call of the run.
        decisions: the run's `llm_decisions` totals ("asked", "reused").
        trades: the executed orders (fills).
    """
    cost = sum(c.cost_usd for c in calls)
    made = int(decisions.get("asked", 0)) + int(decisions.get("reused", 0))
    return {
        "llm_calls": len(calls),
        "llm_calls_failed": sum(not c.ok for c in calls),
        "llm_prompt_tokens": sum(c.prompt_tokens for c in calls),
        "llm_completion_tokens": sum(c.completion_tokens for c in calls),
        "llm_decisions_made": made,
        "llm_cost_per_decision_usd": round(cost / made, 6) if made else None,
        "llm_cost_per_trade_usd": round(cost / trades, 6) if trades else None,
    }
