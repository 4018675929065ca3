"""The LLM-cost benchmark's arithmetic and table: tokens per trading day per agent, USD per day per price.

The chat ("chat" row) is reported beside the agents but kept out of `total` and `usd_per_day` (the schedule's
cost, the issue's target); `total_with_chat` and `usd_per_day_with_chat` add it."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date
from typing import Any

from bench._chat_answers import DAILY_SCRIPT
from bench._llm_answers import AGENTS
from bench._llm_stub import CallRecord

PER_MILLION = 1_000_000
CHAT = "chat"
BREAKDOWN = (("system", "system"), ("response_format", "response_format"), ("memory_evidence", "memory"),
             ("tools_schema", "tools"), ("tool_results", "tool_results"))
"""Where prompt tokens went: report key -> CallRecord field (`<field>_tokens`)."""


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


def _sums(agents: list[str], records: list[CallRecord]) -> dict[str, dict[str, int]]:
    """agent -> tokens, calls, symbols asked and the prompt breakdown summed over `records`."""
    sums = {a: {"prompt": 0, "completion": 0, "calls": 0, "symbols": 0} | {k: 0 for k, _ in BREAKDOWN}
            for a in agents}
    for r in records:
        s = sums[r.agent]
        for key, value in (("prompt", r.prompt_tokens), ("completion", r.completion_tokens), ("calls", 1),
                           ("symbols", r.symbols)):
            s[key] += value
        for key, name in BREAKDOWN:
            s[key] += getattr(r, f"{name}_tokens")
    return sums


def profile_figures(run: ProfileRun, sessions: list[date], measured: list[date],
                    prices: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Tokens per trading day per agent, where the prompt tokens went, USD per day and the cycles per day."""
    wanted = set(measured)
    days = len(measured)
    counted = [r for r in run.records if session_of(r.day, sessions) in wanted]
    agents = [*AGENTS, *sorted({r.agent for r in counted} - set(AGENTS))]
    sums = _sums(agents, counted)
    tokens = {a: {k: _per_day(s[k], days) for k in ("prompt", "completion", "calls")} for a, s in sums.items()}
    scheduled = [t for a, t in tokens.items() if a != CHAT]
    with_chat = list(tokens.values())
    tokens["total"] = {k: round(sum(t[k] for t in scheduled), 1) for k in ("prompt", "completion", "calls")}
    tokens["total_with_chat"] = {k: round(sum(t[k] for t in with_chat), 1) for k in ("prompt", "completion", "calls")}
    breakdown = {a: {k: _per_day(s[k], days) for k, _ in BREAKDOWN} for a, s in sums.items()}
    cost = {m: round(sum(usd(s["prompt"], s["completion"], p) for a, s in sums.items() if a != CHAT) / days, 5)
            for m, p in prices.items()}
    cost_with_chat = {m: round(sum(usd(s["prompt"], s["completion"], p) for s in sums.values()) / days, 5)
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
        mine = [r for r in counted if session_of(r.day, sessions) == d and r.agent != CHAT]
        per_session.append({"day": d.isoformat(), "calls": len(mine),
                            "prompt": sum(r.prompt_tokens for r in mine),
                            "completion": sum(r.completion_tokens for r in mine)})
    return {"usd_per_day": cost, "usd_per_day_with_chat": cost_with_chat, "tokens_per_day": tokens,
            "usd_per_day_by_agent": by_agent,
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
    agents = [a for a in result[profiles[0]]["tokens_per_day"] if not a.startswith("total")]
    agents += ["total", "total_with_chat"]
    for agent in agents:
        cells = []
        for p in profiles:
            t = result[p]["tokens_per_day"].get(agent, {"prompt": 0, "completion": 0, "calls": 0})
            cells.append(f"{t['prompt']:>9,.0f} / {t['completion']:>7,.0f} / {t['calls']:>5.1f}")
        print(f"[llm_cost]   {agent:<15} " + " | ".join(cells))
    print(f"[llm_cost] USD per trading day, without the chat (with {len(DAILY_SCRIPT)} chat questions a day): "
          f"{' | '.join(profiles)}")
    for model in prices:
        cells = [f"{result[p]['usd_per_day'][model]:>8.4f} ({result[p]['usd_per_day_with_chat'][model]:.4f})"
                 for p in profiles]
        print(f"[llm_cost]   {model:<18} " + " | ".join(cells))
    for p in profiles:
        got = result[p]["usd_per_day"][target_model]
        print(f"[llm_cost] {p}: {got:.4f} USD/day at {target_model} -> target <= {target_usd} "
              f"{'met' if got <= target_usd else 'NOT met'}")


def chat_details(runs: dict[str, ProfileRun], measured: list[date]) -> dict[str, Any]:
    """What the chat row assumes and how its turns went on the measured sessions, per profile."""
    days = {d.isoformat() for d in measured}
    outcome = {}
    for p, run in runs.items():
        logs = [v for d, v in run.child.get("chat_log", {}).items() if d in days]
        answered: dict[str, int] = {}
        tools: dict[str, int] = {}
        for log in logs:
            for key, n in log["answered_by"].items():
                answered[key] = answered.get(key, 0) + n
            for key, n in log["tool_calls"].items():
                tools[key] = tools.get(key, 0) + n
        outcome[p] = {"sessions": len(logs), "answered_by": answered, "tool_calls": tools,
                      "failed_tools": [f for log in logs for f in log["failed_tools"]][:5],
                      "subjects": [log["subject"] for log in logs]}
    return {"questions_per_day": len(DAILY_SCRIPT), "script": list(DAILY_SCRIPT),
            "assumption": "the operator asks these questions once a day after the close, in one conversation "
                          "(the chat UI resends the history with each message); the model asks for the tools a "
                          "question needs, then answers from their results (two calls a question)",
            "switches": "none: the cost settings do not touch the chat; its prompt differs between the profiles only "
                        "by the tool results (the profiles traded differently)",
            "in_totals": "usd_per_day and tokens_per_day.total leave the chat out; usd_per_day_with_chat and "
                         "tokens_per_day.total_with_chat include it",
            "outcome": outcome}
