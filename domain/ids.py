"""Stable short hashes for deterministic ids (cycles, orders, discovery runs): the same input always gives the
same id, so a retried step is recognised and the broker refuses a resubmitted order."""

from __future__ import annotations

import hashlib


def short_hash(text: str, n: int) -> str:
    """The first `n` hex digits of the SHA-1 of `text`: a stable id part, not a security measure."""
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:n]
