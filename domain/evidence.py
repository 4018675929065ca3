"""Which recalled memories are worth showing to an agent, and in how many words.

A recall returns the records nearest to the query, whatever they are. Shown to an agent as they come, most
of them inform nothing: trades still open (no outcome yet), the record of the very situation being decided
(today's market conditions recorded yesterday, at distance 0 and without an outcome), several records of one
symbol's one day, and the model's own earlier reasoning, up to 2,000 characters each. `EvidencePolicy` keeps,
of the nearest `k * fetch_factor` records, the nearest `k` whose outcome was known at the time of the recall,
one per symbol and day, within `max_distance`; `trim_reasoning` cuts a trade's reasoning to a short summary.

With `fetch_factor` 1 (the default) the kept records are exactly those of the nearest `k` that the rule
validator and the offline policy count (outcome known, within 0.6), so their decisions do not change; a larger
factor shows up to `k` closed trades where fewer were among the nearest `k`, and the memory veto acts more often.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.agents.schemas import MemoryEvidence
from domain.memory import SimilarItem

REASONING_MARK = ". Reasoning: "
ELLIPSIS = "…"
CLOSE_DISTANCE = 0.6
"""The cosine distance beyond which a past item is no longer "similar" (the offline policy's bound too)."""


@dataclass(frozen=True, slots=True)
class EvidencePolicy:
    """How recalled memories are chosen.

    Attributes:
        compact: apply the rules below; off, the nearest `k` records are shown as recalled (the old behaviour).
        max_distance: records farther than this cosine distance are not evidence.
        reasoning_chars: a trade's reasoning is cut to this many characters (0 drops it).
        fetch_factor: the store is asked for `k * fetch_factor` records, so that up to `k` remain after the rules.
    """

    compact: bool = True
    max_distance: float = CLOSE_DISTANCE
    reasoning_chars: int = 200
    fetch_factor: int = 1

    def fetch(self, k: int) -> int:
        """How many records to ask the store for when `k` are wanted."""
        return k * max(1, self.fetch_factor) if self.compact else k

    def select(self, items: Sequence[SimilarItem], k: int) -> list[SimilarItem]:
        """The nearest `k` of `items` that inform: outcome known (at the recall's time: the store hides later
        outcomes), within `max_distance`, the nearest one per symbol and day. `items` must be nearest first."""
        if not self.compact:
            return list(items[:k])
        kept: list[SimilarItem] = []
        days: set[tuple[str | None, str]] = set()
        for item in items:
            record = item.record
            day = (record.symbol, record.as_of.date().isoformat())
            if record.outcome is None or item.distance > self.max_distance or day in days:
                continue
            days.add(day)
            kept.append(item)
            if len(kept) == k:
                break
        return kept

    def evidence(self, items: Sequence[SimilarItem], k: int) -> tuple[MemoryEvidence, ...]:
        """`select`ed items as the evidence an agent sees (reasoning trimmed when compact)."""
        return tuple(MemoryEvidence(
            text=trim_reasoning(i.record.text, self.reasoning_chars) if self.compact else i.record.text,
            distance=round(i.distance, 4), outcome=i.record.outcome, return_pct=i.record.return_pct)
            for i in self.select(items, k))


COMPACT = EvidencePolicy()
"""The default: every rule on."""
LEGACY = EvidencePolicy(compact=False)
"""Every recalled record, as recalled (the behaviour before evidence was chosen)."""


def trim_reasoning(text: str, chars: int) -> str:
    """`text` with the part after "Reasoning:" (a trade memory's model reasoning) cut to `chars` characters, at
    a word boundary when there is one, and the outcome that follows it kept."""
    head, mark, rest = text.partition(REASONING_MARK)
    if not mark:
        return text
    reasoning, outcome_mark, outcome = rest.partition(". Outcome: ")
    tail = f"{outcome_mark}{outcome}" if outcome_mark else ""
    if len(reasoning) <= chars:
        return text
    if chars <= 0:
        return f"{head}{tail or '.'}"
    cut = reasoning[:chars]
    if " " in cut[chars // 2:]:
        cut = cut[: cut.rindex(" ")]
    return f"{head}{mark}{cut.rstrip(' ,;.')}{ELLIPSIS}{tail}"


def known_outcomes(evidence: Sequence[MemoryEvidence]) -> list[MemoryEvidence]:
    """The items of `evidence` whose outcome is known."""
    return [e for e in evidence if e.outcome is not None]


def summary(evidence: Sequence[MemoryEvidence]) -> dict[str, float | int]:
    """Counts of the known outcomes of `evidence` (wins, losses, flat), their mean return and the nearest
    distance: what an agent that already saw the items in full needs to recall of them."""
    known = known_outcomes(evidence)
    returns = [e.return_pct for e in known if e.return_pct is not None]
    out: dict[str, float | int] = {
        "n": len(known),
        "wins": sum(1 for e in known if e.outcome == "WIN"),
        "losses": sum(1 for e in known if e.outcome == "LOSS"),
    }
    if returns:
        out["mean_return"] = sum(returns) / len(returns)
    if known:
        out["nearest_distance"] = min(e.distance for e in known)
    return out



def informative(items: Sequence[Mapping[str, Any]], max_distance: float) -> list[dict[str, Any]]:
    """Of evidence items as JSON (`MemoryEvidence` dumped), those that inform, nearest first: outcome known,
    within `max_distance`, and the first of those recording one event (same setup before the reasoning, same
    outcome and return: one trade stored by several cycles, or recalled twice)."""
    seen: set[tuple[str, Any, Any]] = set()
    kept: list[dict[str, Any]] = []
    for item in sorted(items, key=lambda e: float(e.get("distance", 0.0))):
        if item.get("outcome") is None or float(item.get("distance", 0.0)) > max_distance:
            continue
        key = event_key(item)
        if key not in seen:
            seen.add(key)
            kept.append(dict(item))
    return kept


def event_key(item: Mapping[str, Any]) -> tuple[str, Any, Any]:
    """What identifies the event an evidence item records: its text before the reasoning, outcome and return."""
    return str(item.get("text", "")).partition(REASONING_MARK)[0], item.get("outcome"), item.get("return_pct")
