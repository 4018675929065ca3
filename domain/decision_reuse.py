"""Reusing the agents' decision about a symbol until what it was made on changes materially (issue 15).

The live schedule runs 13 cycles a session on daily features that change once a day. A decision (the signal
agent's proposal, and for an entry the risk agent's sizing and the validator agent's verdict) is kept with a
key: a SHA-256 of the context the agents saw, its numbers rounded to `SIGNIFICANT_DIGITS`, plus the things a
decision depends on that the agents do not see as numbers (the last daily bar, the position, its stops, the
symbol's last fill). A later cycle of the same session asks again only when the key changed or the price moved
`threshold_pct` or more since the decision was made (`why_ask`); the next session asks afresh.

Pure functions and values; the cycle keeps the book in a state document (`application.cycle.reuse`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from domain.agents.schemas import (
    MarketConditions,
    MemoryEvidence,
    RiskAssessment,
    SignalProposal,
    SymbolFeatures,
    ValidatorVerdict,
)

SIGNIFICANT_DIGITS = 3
SHARE_DECIMALS = 2


def rounded(value: Any, digits: int = SIGNIFICANT_DIGITS) -> Any:
    """`value` with every float rounded to `digits` significant digits (in dicts, lists and tuples too), so
    float noise never changes a key; other values unchanged."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or value == 0:
            return value if math.isfinite(value) else str(value)
        return float(f"{value:.{digits}g}")
    if isinstance(value, Mapping):
        return {str(k): rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _number(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f")


@dataclass(frozen=True)
class SymbolInputs:
    """What a decision about one symbol is made on.

    Attributes:
        features: the symbol's features as the signal agent sees them, similar past trades included.
        market: the market conditions the agents see, similar past conditions included.
        bar_day: the session of the last daily bar the features come from.
        held_qty: shares held (the real position, or the shadow book's).
        stop_price, take_profit_price: the position's protective stop and take-profit, when held.
        last_fill: the symbol's last fill (time, order and quantity), "" when none.
    """

    features: SymbolFeatures
    market: MarketConditions
    bar_day: date | None
    held_qty: Decimal = Decimal(0)
    stop_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    last_fill: str = ""


@dataclass(frozen=True)
class DecisionKey:
    """The key a decision is kept under: `digest` covers everything; the other fields name what changed."""

    digest: str
    bar_day: str
    position: str
    stops: str
    last_fill: str

    def to_dict(self) -> dict[str, str]:
        """JSON-safe form."""
        return {"digest": self.digest, "bar_day": self.bar_day, "position": self.position, "stops": self.stops,
                "last_fill": self.last_fill}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DecisionKey:
        """The key `to_dict` wrote."""
        return cls(str(doc["digest"]), str(doc["bar_day"]), str(doc["position"]), str(doc["stops"]),
                   str(doc["last_fill"]))


def _evidence(items: tuple[MemoryEvidence, ...]) -> list[Any]:
    return [rounded(e.model_dump()) for e in items]


def decision_key(inputs: SymbolInputs) -> DecisionKey:
    """The key of a decision about `inputs.features.symbol`: a SHA-256 of the rounded context the agents see
    (features, market conditions, similar trades and conditions) and of the bar, position, stops and last fill.
    The same inputs give the same key; a new bar, a position change, a stop change or a fill give another."""
    f, m = inputs.features, inputs.market
    position = _number(inputs.held_qty)
    stops = f"{_number(inputs.stop_price)}/{_number(inputs.take_profit_price)}"
    bar_day = "" if inputs.bar_day is None else inputs.bar_day.isoformat()
    context = {
        "features": rounded(f.model_dump(exclude={"similar_trades"})),
        "similar_trades": _evidence(f.similar_trades),
        "market": rounded(m.model_dump(exclude={"similar_conditions"})),
        "similar_conditions": _evidence(m.similar_conditions),
        "bar_day": bar_day, "position": position, "stops": stops, "last_fill": inputs.last_fill,
    }
    return DecisionKey(_digest(context), bar_day, position, stops, inputs.last_fill)


def sizing_key(key: DecisionKey, *, equity: float, cash: float, gross_pct: float, max_position_pct: float,
               default_stop_pct: float) -> str:
    """The key of an entry's sizing and verdict: the decision's key and the account as the risk agent sees it,
    as shares of equity rounded to `SHARE_DECIMALS` (a fill elsewhere moves the cash and the exposure)."""
    cash_share = round(cash / equity, SHARE_DECIMALS) if equity > 0 else 0.0
    return _digest({"decision": key.digest, "cash": cash_share, "gross": round(gross_pct, SHARE_DECIMALS),
                    "max_position": rounded(max_position_pct), "default_stop": rounded(default_stop_pct)})


@dataclass(frozen=True)
class StoredDecision:
    """A decision kept for reuse: the agents' answers, the key and price they were given at, and when.

    Attributes:
        sizing: the `sizing_key` of `assessment` and `verdict` (an entry judged by both agents), else None.
    """

    symbol: str
    key: DecisionKey
    price: Decimal | None
    asked_at: datetime
    cycle_id: str
    signal: SignalProposal
    sizing: str | None = None
    assessment: RiskAssessment | None = None
    verdict: ValidatorVerdict | None = None

    def with_sizing(self, sizing: str | None, assessment: RiskAssessment | None,
                    verdict: ValidatorVerdict | None) -> StoredDecision:
        """This decision with an entry's sizing and verdict (kept only when both agents answered)."""
        if sizing is None or assessment is None or verdict is None:
            return replace(self, sizing=None, assessment=None, verdict=None)
        return replace(self, sizing=sizing, assessment=assessment, verdict=verdict)

    def sizing_for(self, sizing: str) -> tuple[RiskAssessment, ValidatorVerdict] | None:
        """The kept sizing and verdict when they were made on `sizing`, else None."""
        if self.sizing != sizing or self.assessment is None or self.verdict is None:
            return None
        return self.assessment, self.verdict

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"symbol": self.symbol, "key": self.key.to_dict(), "price": _number(self.price),
                "asked_at": self.asked_at.isoformat(), "cycle_id": self.cycle_id,
                "signal": self.signal.model_dump(mode="json"), "sizing": self.sizing,
                "assessment": None if self.assessment is None else self.assessment.model_dump(mode="json"),
                "verdict": None if self.verdict is None else self.verdict.model_dump(mode="json")}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> StoredDecision:
        """The decision `to_dict` wrote."""
        assessment, verdict = doc.get("assessment"), doc.get("verdict")
        return cls(str(doc["symbol"]), DecisionKey.from_dict(doc["key"]),
                   Decimal(doc["price"]) if doc.get("price") else None, datetime.fromisoformat(doc["asked_at"]),
                   str(doc["cycle_id"]), SignalProposal.model_validate(doc["signal"]), doc.get("sizing"),
                   None if assessment is None else RiskAssessment.model_validate(assessment),
                   None if verdict is None else ValidatorVerdict.model_validate(verdict))


def price_move_pct(reference: Decimal | None, now: Decimal | None) -> float | None:
    """|now / reference - 1| in percent; None when either price is unknown."""
    if reference is None or now is None or reference <= 0:
        return None
    return float(abs(now / reference - 1) * 100)


def why_ask(stored: StoredDecision | None, key: DecisionKey, price: Decimal | None, *,
            threshold_pct: float) -> str | None:
    """Why the agents must be asked about a symbol again, or None when `stored` may be reused: there is no
    decision, or a new daily bar, a position change, a fill, a stop change, a price move of `threshold_pct` or
    more since the decision (or a price that cannot be compared), or any other change of the rounded context."""
    if stored is None:
        return "no decision earlier this session"
    was = stored.key
    if was.bar_day != key.bar_day:
        return f"new daily bar ({key.bar_day or 'none'})"
    if was.position != key.position:
        return f"position changed ({was.position or '0'} -> {key.position or '0'} shares)"
    if was.last_fill != key.last_fill:
        return "new fill"
    if was.stops != key.stops:
        return f"stop or take-profit changed ({was.stops} -> {key.stops})"
    move = price_move_pct(stored.price, price)
    if move is None:
        return "price unknown, cannot compare with the decision's"
    if move >= threshold_pct:
        return f"price moved {move:.2f}% since asked (threshold {threshold_pct:g}%)"
    if was.digest != key.digest:
        return "context changed (features, market conditions or memory evidence)"
    return None


@dataclass(frozen=True)
class ReuseBook:
    """The decisions kept for one session; a book of an earlier session is empty for this one."""

    session: date
    decisions: dict[str, StoredDecision] = field(default_factory=dict)

    def for_session(self, session: date) -> ReuseBook:
        """This book when it is `session`'s, else an empty book for `session` (reuse ends with the session)."""
        return self if self.session == session else ReuseBook(session)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"session": self.session.isoformat(),
                "decisions": {s: d.to_dict() for s, d in sorted(self.decisions.items())}}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ReuseBook:
        """The book `to_dict` wrote."""
        return cls(date.fromisoformat(doc["session"]),
                   {s: StoredDecision.from_dict(d) for s, d in dict(doc.get("decisions") or {}).items()})
