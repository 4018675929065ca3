"""Deterministic draws from a seed and a name, the same on every machine and numpy version (BLAKE2b)."""

from __future__ import annotations

import hashlib

_SPAN = float(2**64)


def _digest(seed: int, parts: tuple[object, ...]) -> int:
    key = "|".join([str(seed), *(str(p) for p in parts)]).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def unit(seed: int, *parts: object) -> float:
    """A number in [0, 1) fixed by the seed and the parts."""
    return _digest(seed, parts) / _SPAN


def pick(seed: int, n: int, *parts: object) -> int:
    """An index in [0, n) fixed by the seed and the parts."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return _digest(seed, parts) % n


def order_key(seed: int, *parts: object) -> int:
    """A sort key that shuffles items deterministically."""
    return _digest(seed, parts)
