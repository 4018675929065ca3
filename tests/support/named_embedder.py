"""NamedEmbedder: a hashing embedder posing as a named model; two names give unrelated vectors for one text."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from adapters.inmemory.hashing_embedder import HashingEmbedder


class NamedEmbedder(HashingEmbedder):
    """Hashing vectors with their dimensions shuffled by a permutation seeded by `name` (so "model A" and "model B"
    disagree about every text, like two real models); remembers every text it embedded; can be told to fail."""

    def __init__(self, name: str, dimension: int = 384) -> None:
        super().__init__(dimension)
        self._name = name
        seed = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")
        self._order = np.random.default_rng(seed).permutation(dimension)
        self.embedded: list[str] = []
        self.fail_after: int | None = None
        """Raise once this many texts have been embedded (an interruption)."""

    @property
    def model_name(self) -> str:
        """The name given."""
        return self._name

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Hashing vectors, shuffled."""
        if self.fail_after is not None and len(self.embedded) + len(texts) > self.fail_after:
            raise RuntimeError("interrupted by the test")
        self.embedded += list(texts)
        return super().embed(texts)[:, self._order]
