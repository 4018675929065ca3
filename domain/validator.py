"""Rule-based validator: memory of similar past trades and simple market rules.

It runs after the signal and risk agents and before the hard limits. It only
judges entries (a BUY, or a SELL that would open a short); HOLDs and exits
pass unchanged. It can warn, lower confidence or reject; it never raises it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from domain.agents.schemas import MemoryEvidence, SignalProposal, SymbolFeatures
from domain.risk.config import ValidatorSettings

_LOSS_LABELS = frozenset({"LOSS", "LOSER", "LOSE"})
_NON_LOSS_LABELS = frozenset({"WIN", "WINNER", "FLAT", "BREAKEVEN"})
_QUOTE_CHARS = 160


@dataclass(frozen=True)
class ValidationResult:
    """The validator's judgement of one proposal.

    Attributes:
        approved: False when a rule vetoed the entry.
        confidence: the proposal's confidence, lowered when memory warns.
        warnings: human-readable warnings, memory first.
        evidence: the similar trades that were counted (close enough, outcome known), closest first.
        rejected_reason: why the entry was vetoed, or None.
        loser_share: share of losers among `evidence` when there were enough of them to judge, else None.
    """

    approved: bool
    confidence: float
    warnings: tuple[str, ...]
    evidence: tuple[MemoryEvidence, ...]
    rejected_reason: str | None
    loser_share: float | None


def is_loser(evidence: MemoryEvidence) -> bool | None:
    """Whether a past trade lost money: from its outcome label, else the sign of its return; None if unknown."""
    label = (evidence.outcome or "").strip().upper()
    if label in _LOSS_LABELS:
        return True
    if label in _NON_LOSS_LABELS:
        return False
    if evidence.return_pct is not None and math.isfinite(evidence.return_pct):
        return evidence.return_pct < 0
    return None


def entry_direction(proposal: SignalProposal, features: SymbolFeatures) -> str | None:
    """ "long" or "short" when the proposal opens or adds to a position, None for HOLD and exits."""
    held = features.held_qty if math.isfinite(features.held_qty) else 0.0
    if proposal.action == "BUY" and held >= 0:
        return "long"
    if proposal.action == "SELL" and held <= 0:
        return "short"
    return None


def validate_proposal(
    proposal: SignalProposal,
    features: SymbolFeatures,
    similar_trades: Sequence[MemoryEvidence],
    settings: ValidatorSettings,
) -> ValidationResult:
    """Judge an entry against memory of similar past trades and simple trend/volatility rules.

    Memory counts the similar trades within `settings.max_distance` whose outcome
    is known. With at least `settings.min_similar` of them, a loser share at or
    above `warn_loser_share` adds a warning quoting the evidence and multiplies
    confidence by `1 - confidence_penalty * share`; at or above
    `reject_loser_share` the entry is rejected.

    Args:
        proposal: the signal agent's proposal.
        features: the symbol's features at the cycle time.
        similar_trades: similar past trades recalled from memory (as of the cycle time).
        settings: the thresholds.

    Returns:
        The judgement; HOLDs and exits come back approved and unchanged.
    """
    direction = entry_direction(proposal, features)
    if direction is None:
        return ValidationResult(True, proposal.confidence, (), (), None, None)
    evidence = tuple(
        sorted(
            (
                e
                for e in similar_trades
                if math.isfinite(e.distance) and 0 <= e.distance <= settings.max_distance and is_loser(e) is not None
            ),
            key=lambda e: e.distance,
        )
    )
    confidence = proposal.confidence
    warnings: list[str] = []
    rejected: str | None = None
    share: float | None = None
    if len(evidence) >= settings.min_similar:
        losers = sum(1 for e in evidence if is_loser(e))
        share = losers / len(evidence)
        if losers and share >= settings.warn_loser_share:
            text = _memory_text(evidence, losers, share, settings.max_distance)
            confidence *= 1 - settings.confidence_penalty * share
            warnings.append(f"memory: {text}")
            if share >= settings.reject_loser_share:
                rejected = f"memory veto: {text}; at least {settings.reject_loser_share:.0%} losers rejects the entry"
    warnings.extend(rule_warnings(features, direction, settings))
    return ValidationResult(
        approved=rejected is None,
        confidence=min(max(confidence, 0.0), 1.0),
        warnings=tuple(warnings),
        evidence=evidence,
        rejected_reason=rejected,
        loser_share=share,
    )


def _memory_text(evidence: tuple[MemoryEvidence, ...], losers: int, share: float, max_distance: float) -> str:
    closest = evidence[0]
    if closest.return_pct is not None and math.isfinite(closest.return_pct):
        result = f"returned {closest.return_pct:+.1%}"
    else:
        result = f"ended {closest.outcome}"
    quote = " ".join(closest.text.split())
    if len(quote) > _QUOTE_CHARS:
        quote = quote[: _QUOTE_CHARS - 1] + "…"
    return (
        f"{losers} of {len(evidence)} similar past trades (distance <= {max_distance:g}) lost ({share:.0%}); "
        f'closest (distance {closest.distance:.2f}): "{quote}" {result}'
    )


def rule_warnings(features: SymbolFeatures, direction: str, settings: ValidatorSettings) -> list[str]:
    """Trend and volatility warnings for an entry in `direction` ("long" or "short")."""
    values = {
        "price": features.price,
        "sma_50": features.sma_50,
        "return_20d": features.return_20d,
        "volatility_20d": features.volatility_20d,
    }
    missing = [name for name, v in values.items() if not math.isfinite(v)]
    out: list[str] = []
    if missing:
        out.append(f"features incomplete: {', '.join(missing)} not a number; some rule checks were skipped")
    px, sma, r20, vol = features.price, features.sma_50, features.return_20d, features.volatility_20d
    trend_known = not {"price", "sma_50", "return_20d"} & set(missing)
    if trend_known and direction == "long" and px < sma and r20 < 0:
        out.append(
            f"falling knife: {features.symbol} at {px:.2f} is below its 50-day average {sma:.2f} "
            f"and {r20:+.1%} over 20 days"
        )
    if trend_known and direction == "short" and px > sma and r20 > 0:
        out.append(
            f"shorting strength: {features.symbol} at {px:.2f} is above its 50-day average {sma:.2f} "
            f"and {r20:+.1%} over 20 days"
        )
    if math.isfinite(vol) and vol > settings.max_volatility:
        out.append(
            f"high volatility: {features.symbol} 20-day annualised volatility {vol:.0%} "
            f"is above {settings.max_volatility:.0%}"
        )
    return out
