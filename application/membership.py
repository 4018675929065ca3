"""Index membership of a simulation's data, and the survivorship statement every report makes.

A data directory may say what its universe is (`universe.json`, read by `adapters.inmemory.universe_file`):
the index, the day its membership list is from, and whether that list is point in time. Today's members over
a past period leave out the companies that left the index (survivorship bias: it flatters the equal-weighted
universe and any stock picker). With point-in-time membership, a simulation only picks symbols that were
members at its start.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

Span = tuple[date, date | None]
"""A membership period: first and last day as a member (None: still a member)."""


@dataclass(frozen=True, slots=True)
class Membership:
    """What a data set says about the universe it holds.

    Attributes:
        name: the universe, e.g. "S&P 500 members of 2018-02-08".
        as_of: the day the membership list is from.
        point_in_time: the membership is known day by day (`members`), not today's list over the past.
        note: what the data set says about itself.
        members: symbol -> periods of membership (point-in-time data only).
        source: where it was read from.
    """

    name: str
    as_of: date | None = None
    point_in_time: bool = False
    note: str = ""
    members: Mapping[str, tuple[Span, ...]] = field(default_factory=dict)
    source: str = ""

    def members_on(self, day: date) -> frozenset[str] | None:
        """Symbols that were members on `day`; None when the membership is not point in time."""
        if not self.point_in_time:
            return None
        return frozenset(s for s, spans in self.members.items()
                         if any(first <= day and (last is None or day <= last) for first, last in spans))


@dataclass(frozen=True, slots=True)
class Survivorship:
    """The survivorship statement of a report.

    Attributes:
        membership: "point_in_time", "todays_members", "unknown" or "synthetic".
        statement: one or two sentences for the report.
        sources: the universe files it comes from.
    """

    membership: str
    statement: str
    sources: tuple[str, ...] = ()

    @property
    def biased(self) -> bool:
        """Whether survivorship bias may flatter the results (today's members, or unknown membership)."""
        return self.membership in ("todays_members", "unknown")

    def to_json(self) -> dict[str, Any]:
        """{"membership", "biased", "statement", "sources"} for summary.json."""
        return {"membership": self.membership, "biased": self.biased, "statement": self.statement,
                "sources": list(self.sources)}


SYNTHETIC = Survivorship("synthetic", "Synthetic market: every stock trades the whole period; no index membership, "
                                      "no survivorship question.")


def survivorship(universes: Collection[Membership]) -> Survivorship:
    """The statement for data described by `universes` (one per data directory that has a universe file)."""
    sources = tuple(u.source for u in universes)
    if not universes:
        return Survivorship("unknown", "Index membership of the data is unknown (no universe.json): the stocks may "
                                       "be today's index members over a past period, so survivorship bias cannot "
                                       "be ruled out.")
    today = [u for u in universes if not u.point_in_time]
    if not today:
        return Survivorship("point_in_time", "Point-in-time index membership: only symbols that were members at "
                                             "the start were chosen.", sources)
    said = "; ".join(_todays(u) for u in today)
    return Survivorship("todays_members", f"Survivorship bias: {said}. Companies that left the index before then are "
                                          "missing, which flatters the equal-weighted universe and any stock picker.",
                        sources)


def _todays(u: Membership) -> str:
    when = f"index members as of {u.as_of.isoformat()}" if u.as_of else "today's index members"
    return f"the universe is {when} ({u.name}), not the members of each day"


def non_members(universes: Collection[Membership], day: date, symbols: Collection[str]) -> frozenset[str]:
    """Symbols of `symbols` not to choose on `day`: when some universe is point in time, every symbol that was not
    one of its members on `day` (a symbol it does not list has no known membership and is left out too); none
    otherwise."""
    pit = [u for u in universes if u.point_in_time]
    if not pit:
        return frozenset()
    members: set[str] = set()
    for u in pit:
        members |= u.members_on(day) or frozenset()
    return frozenset(s for s in symbols if s not in members)
