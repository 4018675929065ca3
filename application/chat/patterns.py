"""Patterns in the closed round trips, for the chat's pattern tool: which validator concerns preceded losses, win
rate by the signal's confidence, holding period against outcome, stop exits against the other exits.

A round trip (`application.round_trips`) is joined to the entry decision that opened it (the SIGNAL event whose
order has the opening fill's client order id; else the symbol's latest BUY decision in the week before) for its
confidence and the concerns the validators raised, and to the fill that closed it for how it ended ("stop",
"take profit", or "signal": an exit the cycle decided, e.g. a broken trend). Few trades give no conclusion: under
`MIN_TRADES` round trips nothing is compared, and a group under `MIN_GROUP` is listed but not judged.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from application.cycle.fills import exit_reason
from application.round_trips import round_trips
from domain.events import Event, EventType, Severity
from domain.models.trading import Fill, Side
from domain.money import ZERO
from domain.ports.repositories import EventQuery
from domain.ports.uow import UnitOfWorkFactory

MIN_TRADES = 10
MIN_GROUP = 5
MAX_DECISIONS = 50_000
DECISION_WINDOW = timedelta(days=7)
KINDS: tuple[str, ...] = ("all", "validator_concerns", "confidence", "holding_period", "exit_kind")
CONFIDENCE_EDGES: tuple[float, ...] = (0.6, 0.7, 0.8)
HOLDING_EDGES_DAYS: tuple[float, ...] = (1.0, 3.0, 10.0)
_WORDS = re.compile(r"[a-z]+(?:'[a-z]+)?")


@dataclass(frozen=True, slots=True)
class TradeOutcome:
    """A closed round trip with what preceded it.

    Attributes:
        exit_kind: "stop", "take profit" or "signal" (an exit the cycle decided).
        confidence: the signal agent's confidence at entry; None when the entry decision is not in the log.
        concerns: the kinds of concern the validators raised before the entry (e.g. "falling knife").
        matched: whether the entry decision was found.
    """

    symbol: str
    opened_at: datetime
    closed_at: datetime
    pnl: Decimal
    return_pct: float
    exit_kind: str
    confidence: float | None = None
    concerns: tuple[str, ...] = ()
    matched: bool = False

    @property
    def won(self) -> bool:
        """Whether it made money, fees included."""
        return self.pnl > 0

    @property
    def holding_days(self) -> float:
        """Calendar days from the opening buy to the closing sell."""
        return (self.closed_at - self.opened_at).total_seconds() / 86_400


@dataclass(frozen=True, slots=True)
class Group:
    """Round trips sharing one trait, and how they did."""

    label: str
    trades: int
    wins: int
    avg_return: float | None
    pnl: Decimal

    @property
    def win_rate(self) -> float | None:
        """Share of winners (None without trades)."""
        return self.wins / self.trades if self.trades else None

    @property
    def enough(self) -> bool:
        """Whether there are enough round trips to judge the group."""
        return self.trades >= MIN_GROUP

    def describe(self) -> str:
        """"label: 3 of 7 won (43%), average -1.2%" with a warning when too few."""
        if not self.trades:
            return f"{self.label}: none"
        rate = f"{self.wins} of {self.trades} won ({self.win_rate or 0:.0%}), average {self.avg_return or 0:+.1%}"
        return f"{self.label}: {rate}" + ("" if self.enough else " (too few to judge)")

    def to_json(self) -> dict[str, Any]:
        """JSON-safe figures."""
        return {"label": self.label, "trades": self.trades, "wins": self.wins, "losses": self.trades - self.wins,
                "win_rate": self.win_rate, "avg_return": self.avg_return, "pnl": str(self.pnl),
                "enough": self.enough}


@dataclass(frozen=True, slots=True)
class PatternSection:
    """One question answered: its groups and the finding in a sentence."""

    kind: str
    title: str
    groups: tuple[Group, ...]
    finding: str


@dataclass(frozen=True, slots=True)
class PatternReport:
    """The answer of the pattern tool.

    Attributes:
        trades: closed round trips counted.
        wins: of which made money.
        unmatched: round trips whose entry decision was not found (no confidence, no concerns).
        sections: the questions asked.
    """

    as_of: datetime
    trades: int
    wins: int
    unmatched: int
    sections: tuple[PatternSection, ...]

    @property
    def text(self) -> str:
        """A few plain lines: the verdict on the sample size, then each finding."""
        if self.trades < MIN_TRADES:
            head = (f"{self.trades} round trip{'s' if self.trades != 1 else ''}: too few to say (at least "
                    f"{MIN_TRADES} are needed before comparing anything)")
        else:
            head = f"{self.trades} round trips, {self.wins} won ({self.wins / self.trades:.0%})"
            if self.unmatched:
                head += f"; {self.unmatched} without their entry decision in the event log"
        return "\n".join([head, *(f"- {s.title}: {s.finding}" for s in self.sections)])

    def to_json(self) -> dict[str, Any]:
        """JSON-safe report."""
        return {"as_of": self.as_of.isoformat(), "trades": self.trades, "wins": self.wins,
                "unmatched": self.unmatched, "min_trades": MIN_TRADES, "min_group": MIN_GROUP,
                "sections": [{"kind": s.kind, "title": s.title, "finding": s.finding,
                              "groups": [g.to_json() for g in s.groups]} for s in self.sections]}


def concern_kind(text: str) -> str:
    """What a validator warning is about, without its figures: the words before its colon when short
    ("falling knife: AAPL at ..." -> "falling knife"), else its first five words."""
    head, sep, _ = text.partition(":")
    words = _WORDS.findall(head.lower() if sep and len(head) <= 40 else text.lower())
    return " ".join(words[:5]) or "unspecified"


def decision_concerns(payload: Mapping[str, Any]) -> tuple[str, ...]:
    """The kinds of concern in an entry decision's payload: the rule validator's warnings, the validator agent's
    (prefixed "agent: ") and whether the agent lowered the confidence."""
    rules = payload.get("validator_rules") or {}
    agent = payload.get("validator_agent") or {}
    found = [concern_kind(str(w)) for w in rules.get("warnings") or ()]
    found += ["agent: " + concern_kind(str(w)) for w in agent.get("warnings") or ()]
    if float(agent.get("confidence_adjustment") or 0) < 0:
        found.append("agent lowered the confidence")
    return tuple(dict.fromkeys(found))


def _order_id(e: Event) -> str | None:
    order = (e.payload.get("limits") or {}).get("order") or {}
    cid = order.get("client_order_id")
    return str(cid) if cid else None


def _is_entry(e: Event) -> bool:
    return e.type == EventType.SIGNAL and e.payload.get("final") == "BUY" and \
        (e.payload.get("signal") or {}).get("action") == "BUY"


def trade_outcomes(fills: Sequence[Fill], decisions: Iterable[Event]) -> list[TradeOutcome]:
    """Every closed round trip of `fills` joined to its entry decision and its exit (see the module docstring)."""
    entries = sorted((e for e in decisions if _is_entry(e)), key=lambda e: e.at)
    by_order = {cid: e for e in entries if (cid := _order_id(e))}
    first_buy: dict[tuple[str, datetime], Fill] = {}
    last_sell: dict[tuple[str, datetime], Fill] = {}
    for f in fills:
        if f.side is Side.BUY:
            first_buy.setdefault((f.symbol, f.at), f)
        else:
            last_sell[(f.symbol, f.at)] = f
    out = []
    for t in round_trips(fills):
        opening, closing = first_buy.get((t.symbol, t.opened_at)), last_sell.get((t.symbol, t.closed_at))
        decision = by_order.get(opening.client_order_id) if opening else None
        if decision is None:
            earlier = [e for e in entries if e.symbol == t.symbol and t.opened_at - DECISION_WINDOW <= e.at
                       <= t.opened_at]
            decision = earlier[-1] if earlier else None
        kind = "signal" if closing is None else exit_reason(closing)
        kind = "signal" if kind == "exit" else kind
        confidence = None
        if decision is not None:
            raw = (decision.payload.get("signal") or {}).get("confidence")
            confidence = None if raw is None else float(raw)
        out.append(TradeOutcome(t.symbol, t.opened_at, t.closed_at, t.pnl, t.return_pct, kind, confidence,
                                decision_concerns(decision.payload) if decision else (), decision is not None))
    return out


def group(label: str, trades: Sequence[TradeOutcome]) -> Group:
    """The figures of `trades` under `label`."""
    n = len(trades)
    return Group(label, n, sum(t.won for t in trades), sum(t.return_pct for t in trades) / n if n else None,
                 sum((t.pnl for t in trades), ZERO))


def _buckets(trades: Sequence[TradeOutcome], value: Callable[[TradeOutcome], float | None],
             edges: Sequence[float], fmt: Callable[[float], str]) -> tuple[Group, ...]:
    labels = [f"under {fmt(edges[0])}",
              *(f"{fmt(lo)} to {fmt(hi)}" for lo, hi in itertools.pairwise(edges)),
              f"{fmt(edges[-1])} and over"]
    members: list[list[TradeOutcome]] = [[] for _ in labels]
    for t in trades:
        v = value(t)
        if v is not None:
            members[sum(v >= e for e in edges)].append(t)
    return tuple(group(label, m) for label, m in zip(labels, members, strict=True))


def _compare(groups: Sequence[Group], total: int) -> str:
    if total < MIN_TRADES:
        return "too few round trips to say"
    judged = sorted((g for g in groups if g.enough), key=lambda g: (g.win_rate or 0, g.avg_return or 0))
    if len(judged) < 2:
        listed = "; ".join(g.describe() for g in groups if g.trades) or "no data"
        return f"fewer than two groups with at least {MIN_GROUP} round trips, too few to compare ({listed})"
    best, worst = judged[-1], judged[0]
    return f"best {best.describe()}; worst {worst.describe()}"


def concerns_section(trades: Sequence[TradeOutcome]) -> PatternSection:
    """Per kind of concern raised before the entry: how the round trips that had it ended."""
    matched = [t for t in trades if t.matched]
    kinds = sorted({c for t in matched for c in t.concerns})
    groups = [group(k, [t for t in matched if k in t.concerns]) for k in kinds]
    groups.sort(key=lambda g: (-(g.trades - g.wins), g.label))
    groups.append(group("no concern raised", [t for t in matched if not t.concerns]))
    if len(trades) < MIN_TRADES:
        finding = "too few round trips to say"
    elif not kinds:
        finding = f"no concern was raised before any of the {len(matched)} entries found in the event log"
    else:
        lossy = [g for g in groups[:-1] if g.enough and g.trades > g.wins]
        finding = ("before losses: " + "; ".join(f"{g.label} ({g.trades - g.wins} of {g.trades} lost)"
                                                  for g in lossy[:5]) if lossy else
                   f"no concern was raised before at least {MIN_GROUP} round trips, too few to judge")
        finding += f"; {groups[-1].describe()}"
    return PatternSection("validator_concerns", "Validator concerns before losses", tuple(groups), finding)


def confidence_section(trades: Sequence[TradeOutcome]) -> PatternSection:
    """Win rate by the signal's confidence at entry."""
    groups = _buckets(trades, lambda t: t.confidence, CONFIDENCE_EDGES, lambda x: f"{x:.2f}")
    return PatternSection("confidence", "Win rate by confidence", groups, _compare(groups, len(trades)))


def holding_section(trades: Sequence[TradeOutcome]) -> PatternSection:
    """Outcome by holding period (calendar days)."""
    groups = _buckets(trades, lambda t: t.holding_days, HOLDING_EDGES_DAYS,
                      lambda x: f"{x:g} day{'' if x == 1 else 's'}")
    finding = _compare(groups, len(trades))
    won, lost = [t.holding_days for t in trades if t.won], [t.holding_days for t in trades if not t.won]
    if len(trades) >= MIN_TRADES and won and lost:
        finding += (f"; winners held {sum(won) / len(won):.1f} days on average, others "
                    f"{sum(lost) / len(lost):.1f}")
    return PatternSection("holding_period", "Holding period against outcome", groups, finding)


def exit_section(trades: Sequence[TradeOutcome]) -> PatternSection:
    """Stop exits against take-profit and signal (trend) exits."""
    groups = tuple(group(k, [t for t in trades if t.exit_kind == k]) for k in ("stop", "take profit", "signal"))
    return PatternSection("exit_kind", "Stop exits against other exits", groups, _compare(groups, len(trades)))


SECTIONS: dict[str, Callable[[Sequence[TradeOutcome]], PatternSection]] = {
    "validator_concerns": concerns_section, "confidence": confidence_section, "holding_period": holding_section,
    "exit_kind": exit_section}


def pattern_report(trades: Sequence[TradeOutcome], *, kind: str, as_of: datetime) -> PatternReport:
    """The sections `kind` asks for ("all" for every one) over `trades`.

    Raises:
        ValueError: an unknown kind.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown pattern kind {kind[:30]!r}; expected one of {', '.join(KINDS)}")
    chosen = list(SECTIONS) if kind == "all" else [kind]
    return PatternReport(as_of, len(trades), sum(t.won for t in trades), sum(not t.matched for t in trades),
                         tuple(SECTIONS[k](trades) for k in chosen))


async def analyse_patterns(uow_factory: UnitOfWorkFactory, scope: str, *, kind: str, as_of: datetime
                           ) -> PatternReport:
    """Patterns of `scope`'s real (not shadow) round trips closed at or before `as_of`.

    Args:
        kind: "all", "validator_concerns", "confidence", "holding_period" or "exit_kind".

    Raises:
        ValueError: an unknown kind.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown pattern kind {kind[:30]!r}; expected one of {', '.join(KINDS)}")
    until = as_of + timedelta(microseconds=1)
    async with uow_factory() as uow:
        fills = [r.fill for r in await uow.fills.list(scope, until=until)]
        decisions = await uow.events.query(EventQuery(scope, types=(EventType.SIGNAL,), min_severity=Severity.INFO,
                                                      until=until, limit=MAX_DECISIONS))
    return pattern_report(trade_outcomes(fills, decisions), kind=kind, as_of=as_of)
