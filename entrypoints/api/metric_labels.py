"""Label values of the API's metrics, from fixed sets only.

A label value taken as-is from a request (its path, its method) or from stored data lets whoever sends requests, or
whatever writes the data, grow Prometheus' series without bound. Every label goes through one of these: a value
outside the set becomes "other".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import get_args

from domain.models.trading import Side
from domain.ports.queue import CycleKind

OTHER = "other"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HTTP_STATUSES = frozenset(str(s.value) for s in HTTPStatus)
CYCLE_KINDS = frozenset(get_args(CycleKind))
SIDES = frozenset(s.value for s in Side)
_NAME = re.compile(r"[A-Za-z0-9_.:/-]{1,64}")


def one_of(value: object, allowed: Iterable[str]) -> str:
    """`value` as text when it is in `allowed`, else "other"."""
    text = str(value)
    return text if text in allowed else OTHER


class BoundedLabel:
    """Values of a label whose names are not known in advance (LLM providers, hard-limit names): a name-like value
    is kept until `max_values` distinct values have been seen, later new ones become "other".

    Args:
        max_values: how many distinct values the label may take besides "other".
    """

    def __init__(self, max_values: int = 32) -> None:
        self._max = max_values
        self._seen: set[str] = set()

    def __call__(self, value: object) -> str:
        """The label value for `value`."""
        text = str(value)
        if text in self._seen:
            return text
        if not _NAME.fullmatch(text) or len(self._seen) >= self._max or text == OTHER:
            return OTHER
        self._seen.add(text)
        return text
