"""What similar past trades, recalled from vector memory as of a run, say about a symbol (fuzzy picker)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.agents.schemas import MemoryEvidence

OUTCOME_POINTS = {"WIN": 1.0, "LOSS": 0.0, "FLAT": 0.5}
"""How much a past trade's outcome counts as a win; other labels and None are unknown outcomes."""


@dataclass(frozen=True)
class MemoryVerdict:
    """What similar past trades say about a symbol.

    Attributes:
        wins, losses, flats: past trades by known outcome.
        adjustment: change to the fuzzy score (negative when they mostly lost).
        closest: the nearest trade with a known outcome.
    """

    wins: int
    losses: int
    flats: int
    adjustment: float
    closest: MemoryEvidence

    @property
    def known(self) -> int:
        """Trades with a known outcome."""
        return self.wins + self.losses + self.flats

    def reason(self) -> str:
        """E.g. "memory: 4 of 5 similar past trades lost (closest: '...', -6.1%) → -0.09"."""
        if self.flats:
            tally = f"{self.wins} won, {self.losses} lost, {self.flats} flat of {self.known} similar past trades"
        elif self.losses > self.wins:
            tally = f"{self.losses} of {self.known} similar past trades lost"
        else:
            tally = f"{self.wins} of {self.known} similar past trades won"
        text = self.closest.text if len(self.closest.text) <= 60 else self.closest.text[:59] + "…"
        ret = "" if self.closest.return_pct is None else f", {self.closest.return_pct:+.1%}"
        return f"memory: {tally} (closest: {text!r}{ret}) → {self.adjustment:+.2f}"


def memory_verdict(
    evidence: Sequence[MemoryEvidence], max_adjustment: float, full_evidence: int = 5
) -> MemoryVerdict | None:
    """Score change from similar past trades, or None when none has a known outcome.

    adjustment = max_adjustment x (win_share - 0.5) x 2 x min(1, known / full_evidence), where
    win_share counts a FLAT as half a win. All wins give +max_adjustment, all losses
    -max_adjustment, once `full_evidence` trades are known; less evidence moves the score less.

    Args:
        evidence: similar past trades as recalled as of the run (unknown outcomes are skipped).
        max_adjustment: the largest change, `FuzzyWeights.memory_adjustment`.
        full_evidence: known outcomes needed for the full adjustment.
    """
    known = [(e, p) for e in evidence if (p := _points(e)) is not None]
    if not known:
        return None
    points = [p for _, p in known]
    wins, losses = points.count(1.0), points.count(0.0)
    win_share = sum(points) / len(points)
    strength = min(1.0, len(points) / full_evidence)
    adjustment = max_adjustment * (win_share - 0.5) * 2.0 * strength
    closest = min((e for e, _ in known), key=lambda e: e.distance)
    return MemoryVerdict(wins, losses, len(points) - wins - losses, adjustment, closest)


def _points(evidence: MemoryEvidence) -> float | None:
    return None if evidence.outcome is None else OUTCOME_POINTS.get(evidence.outcome.strip().upper())
