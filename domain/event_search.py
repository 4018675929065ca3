"""The checks every event search store applies (`EventMemory`): documents worth storing, searches worth running."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.chat import EventDocument
from domain.errors import EmptyTextError
from domain.storage import utc


def new_documents(documents: Sequence[EventDocument], stored: set[int]) -> list[EventDocument]:
    """The documents to store, in order: each checked, the first of each event id kept, those `stored` dropped.

    Raises:
        EmptyTextError: a document's text is empty or only whitespace.
        ValueError: a document's event id is not positive or its time has no time zone.
    """
    out: dict[int, EventDocument] = {}
    for d in documents:
        if not d.text or not d.text.strip():
            raise EmptyTextError(f"event #{d.event_id}: the text to embed is empty")
        if d.event_id <= 0:
            raise ValueError(f"event ids are positive, got {d.event_id}")
        utc(d.at, what=f"event #{d.event_id} time")
        if d.event_id not in stored:
            out.setdefault(d.event_id, d)
    return list(out.values())


def check_search(query: str, k: int, as_of: datetime, since: datetime | None) -> None:
    """Raise unless a search is usable: a query with words, a positive k, zone-aware times.

    Raises:
        EmptyTextError: the query is empty or only whitespace.
        ValueError: k is not positive, or as_of or since has no time zone.
    """
    if not query or not query.strip():
        raise EmptyTextError("the search text is empty")
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    utc(as_of, what="as_of")
    if since is not None:
        utc(since, what="since")
