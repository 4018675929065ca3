"""Which embedding model made the stored vectors: the census of the stores, and the rule that one model only
may have made them (vectors of two models are not comparable, so a search over both would be meaningless).

A collection is one store of vectors: the three memories (trades, market conditions, symbol context) and the
chat's event search.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

COLLECTIONS: dict[str, str] = {
    "trade": "trade memories",
    "condition": "market conditions",
    "symbol_context": "symbol context notes",
    "event": "indexed events",
}
"""Collection id -> what it holds, in the order they are re-embedded."""

REEMBED_COMMAND = "quorum memory reembed"

Census = Mapping[str, Mapping[str, int]]
"""Collection id -> model name -> how many vectors of that collection the model made."""


@dataclass(frozen=True, slots=True)
class StoredText:
    """A stored vector's text, to embed again.

    Attributes:
        key: the row's key in its collection (id, or event id for the event search).
        text: the text that was embedded.
    """

    key: int
    text: str


def other_models(census: Census, model: str) -> dict[str, int]:
    """Models other than `model` that made stored vectors, with how many (most first, then by name)."""
    counts: dict[str, int] = {}
    for by_model in census.values():
        for name, n in by_model.items():
            if name != model and n > 0:
                counts[name] = counts.get(name, 0) + n
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def stale_count(census: Census, model: str) -> int:
    """How many stored vectors were made by another model than `model`."""
    return sum(other_models(census, model).values())


def mismatch_message(census: Census, model: str) -> str | None:
    """One line saying which stored vectors another model made and what to run, or None when `model` made all."""
    others = other_models(census, model)
    if not others:
        return None
    where = [COLLECTIONS.get(c, c) for c, by_model in census.items()
             if any(n > 0 and name != model for name, n in by_model.items())]
    made = ", ".join(f"{n} by {name}" for name, n in others.items())
    back = (f"set QUORUM_EMBEDDINGS__MODEL={next(iter(others))}" if len(others) == 1
            else "set QUORUM_EMBEDDINGS__MODEL to the model that made them")
    return (f"stored vectors were made by another embedding model than the configured {model} ({made}; in "
            f"{', '.join(where)}): a search cannot compare vectors of two models. Run `{REEMBED_COMMAND}` to "
            f"re-embed them with {model}, or {back}")
