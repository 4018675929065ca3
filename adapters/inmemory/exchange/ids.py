"""Order, leg and activity ids: UUIDs chosen by the exchange.

A seeded generator gives random-looking UUIDs that are identical from run to run (backtests must be
reproducible); without a seed they come from `uuid.uuid4`.
"""

from __future__ import annotations

import random
import uuid


class IdFactory:
    """Makes UUID strings.

    Args:
        seed: seed of the generator; None for `uuid.uuid4`.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed) if seed is not None else None  # noqa: S311 - reproducible ids, no secret

    def new(self) -> str:
        """A new UUID string."""
        if self._rng is None:
            return str(uuid.uuid4())
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
