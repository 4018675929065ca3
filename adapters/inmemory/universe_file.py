"""Read `universe.json`: what a data directory says about the universe its bars come from.

```json
{
  "name": "S&P 500 members of 2018-02-08",
  "membership_as_of": "2018-02-08",
  "point_in_time": false,
  "dividends": false,
  "note": "today's members over a past period: ...",
  "members": {"AAPL": [["1982-11-30", null]], "XYZ": [["2001-03-01", "2015-06-30"]]}
}
```

`point_in_time: true` needs `members`: each symbol's periods of membership, first and last day inclusive
(`null`: still a member). `dividends` documents whether the bars carry dividend information; the loader
reads the dividends themselves from an `Adj Close` column (`adapters.inmemory.dividends`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from application.membership import Membership, Span
from domain.errors import DataError

UNIVERSE_FILE = "universe.json"


def read_universes(dirs: Iterable[Path]) -> list[Membership]:
    """The universe of every directory in `dirs` that has a `universe.json`, in order.

    Raises:
        DataError: a universe file is not valid JSON or not of the shape above.
    """
    out = []
    for d in dirs:
        path = Path(d) / UNIVERSE_FILE
        if path.is_file():
            out.append(read_universe(path))
    return out


def read_universe(path: Path) -> Membership:
    """One universe file (see the module docstring).

    Raises:
        DataError: not valid JSON, or not of the documented shape.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the universe file: {exc}") from exc
    if not isinstance(doc, dict):
        raise DataError(f"{path}: the universe file must hold a JSON object")
    point_in_time = doc.get("point_in_time", False)
    if not isinstance(point_in_time, bool):
        raise DataError(f"{path}: point_in_time must be true or false, got {point_in_time!r}")
    members = _members(path, doc.get("members"))
    if point_in_time and not members:
        raise DataError(f"{path}: point_in_time is true but no members are given")
    as_of = doc.get("membership_as_of")
    return Membership(name=str(doc.get("name") or path.parent.name), as_of=_day(path, as_of) if as_of else None,
                      point_in_time=point_in_time, note=str(doc.get("note") or ""), members=members,
                      source=str(path))


def _members(path: Path, raw: Any) -> dict[str, tuple[Span, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise DataError(f"{path}: members must map each symbol to a list of [first, last] days")
    out: dict[str, tuple[Span, ...]] = {}
    for symbol, spans in raw.items():
        if not isinstance(spans, list) or not all(isinstance(s, list) and len(s) == 2 for s in spans):
            raise DataError(f"{path}: members of {symbol!r} must be a list of [first, last] days")
        out[str(symbol).upper()] = tuple((_day(path, first), _day(path, last) if last is not None else None)
                                         for first, last in spans)
    return out


def _day(path: Path, value: Any) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise DataError(f"{path}: {value!r} is not a day like 2018-02-08") from None
