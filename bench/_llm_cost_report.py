"""The LLM-cost benchmark's arithmetic and table: tokens per trading day per agent, USD per day per price."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date
from typing import Any

from bench._llm_answers import AGENTS
from bench._llm_stub import CallRecord

PER_MILLION = 1_000_000


@dataclass(frozen=True)
class ProfileRun:
    """One profile's rehearsal: what its process reported and the calls the server answered for it."""

    profile: str
    child: dict[str, Any]
    records: list[CallRecord]


def session_of(day: str, sessions: list[date]) -> date | None:
    """The session a call of exchange day `day` belongs to: that day, or the next session (overnight work)."""
    try:
        d = date.fromisoformat(day)
    except ValueError:
        return None
    i = bisect.bisect_left(sessions, d)
    return sessions[i] if i < len(sessions) else None


def usd(prompt: float, completion: float, price: tuple[float, float]) -> float:
    """Cost of the tokens at a price per million input and output tokens."""
    return (prompt * price[0] + completion * price[1]) / PER_MILLION


def _per_day(value: float, days: int) -> float:
    return round(value / days, 1)


def profile_figures(run: ProfileRun, sessions: list[date], measured: list[date],
                    prices: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Tokens per trading day per agent, where the prompt tokens went, USD per day and the cycles per day."""
    wanted = set(measured)
    days = len(measured)
    counted = [r for r in run.records if session_of(r.day, sessions) in wanted]
    agents = [*AGENTS, *sorted({r.agent for r in counted} - set(AGENTS))]
    sums = {a: {"prompt": 0, "completion": 0, "calls": 0, "symbols": 0, "system": 0, "response_format": 0,
                "memory_evidence": 0} for a in agents}
    for r in counted:
        s = sums[r.agent]
        for key, value in (("prompt", r.prompt_tokens), ("completion", r.completion_tokens), ("calls", 1),
                           ("symbols", r.symbols), ("system", r.system_tokens),
                           ("response_format", r.response_format_tokens), ("memory_evidence", r.memory_tokens)):
            s[key] += value
    tokens = {a: {k: _per_day(s[k], days) for k in ("prompt", "completion", "calls")} for a, s in sums.items()}
    tokens["total"] = {k: round(sum(t[k] for t in tokens.values()), 1) for k in ("prompt", "completion", "calls")}
    breakdown = {a: {k: _per_day(s[k], days) for k in ("system", "response_format", "memory_evidence")}
                 for a, s in sums.items()}
    cost = {m: round(sum(usd(s["prompt"], s["completion"], p) for s in sums.values()) / days, 5)
            for m, p in prices.items()}
    by_agent = {m: {a: round(usd(s["prompt"], s["completion"], p) / days, 5) for a, s in sums.items()}
                for m, p in prices.items()}
    kinds: dict[str, float] = {}
    for day, per_kind in run.child["cycles_by_day"].items():
        if date.fromisoformat(day) in wanted:
            for kind, n in per_kind.items():
                kinds[kind] = kinds.get(kind, 0) + n / days
    decisions: dict[str, float] = {}
    for day, per_key in run.child.get("decisions_by_day", {}).items():
        if day in {d.isoformat() for d in measured}:
            for key, n in per_key.items():
                decisions[key] = decisions.get(key, 0) + n / days
    per_session = []
    for d in measured:
        mine = [r for r in counted if session_of(r.day, sessions) == d]
        per_session.append({"day": d.isoformat(), "calls": len(mine),
                            "prompt": sum(r.prompt_tokens for r in mine),
                            "completion": sum(r.completion_tokens for r in mine)})
    return {"usd_per_day": cost, "tokens_per_day": tokens, "usd_per_day_by_agent": by_agent,
            "prompt_breakdown_per_day": breakdown,
            "symbols_asked_per_day": {a: _per_day(s["symbols"], days) for a, s in sums.items()},
            "cycles_per_day": {k: round(v, 2) for k, v in sorted(kinds.items())},
            "decisions_per_day": {k: round(v, 2) for k, v in sorted(decisions.items())}, "per_session": per_session}


def aggregate(runs: dict[str, ProfileRun], sessions: list[date], measured: list[date],
              prices: dict[str, tuple[float, float]]) -> dict[str, dict[str, Any]]:
    """`profile_figures` of every profile."""
    return {p: profile_figures(run, sorted(sessions), measured, prices) for p, run in runs.items()}


def print_table(result: dict[str, dict[str, Any]], prices: dict[str, tuple[float, float]], target_model: str,
                target_usd: float) -> None:
    """Tokens per day per agent and USD per day per model, profile beside profile; whether the target is met."""
    profiles = list(result)
    print(f"[llm_cost] tokens per trading day (prompt / completion / calls): {' | '.join(profiles)}")
    agents = [a for a in result[profiles[0]]["tokens_per_day"] if a != "total"] + ["total"]
    for agent in agents:
        cells = []
        for p in profiles:
            t = result[p]["tokens_per_day"].get(agent, {"prompt": 0, "completion": 0, "calls": 0})
            cells.append(f"{t['prompt']:>9,.0f} / {t['completion']:>7,.0f} / {t['calls']:>5.1f}")
        print(f"[llm_cost]   {agent:<10} " + " | ".join(cells))
    print(f"[llm_cost] USD per trading day: {' | '.join(profiles)}")
    for model in prices:
        cells = [f"{result[p]['usd_per_day'][model]:>8.4f}" for p in profiles]
        print(f"[llm_cost]   {model:<18} " + " | ".join(cells))
    for p in profiles:
        got = result[p]["usd_per_day"][target_model]
        print(f"[llm_cost] {p}: {got:.4f} USD/day at {target_model} -> target <= {target_usd} "
              f"{'met' if got <= target_usd else 'NOT met'}")
