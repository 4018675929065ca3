"""HashingEmbedder: a deterministic bag-of-words embedder for unit tests and fast backtests.

It has no notion of meaning beyond shared words; never use it for real recall.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from domain.errors import EmptyTextError
from domain.ports.embedder import Embedder

_TOKEN = re.compile(r"[a-z0-9]+")


class HashingEmbedder(Embedder):
    """Feature hashing of words and word pairs into `dimension` signed buckets (implements `Embedder`)."""

    def __init__(self, dimension: int = 384) -> None:
        self._dimension = dimension
        self._cache: dict[str, tuple[int, float]] = {}

    @property
    def model_name(self) -> str:
        """Always `hashing`."""
        return "hashing"

    @property
    def dimension(self) -> int:
        """Vector length."""
        return self._dimension

    def _bucket(self, token: str) -> tuple[int, float]:
        hit = self._cache.get(token)
        if hit is None:
            h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
            hit = (h % self._dimension, 1.0 if (h >> 63) & 1 else -1.0)
            self._cache[token] = hit
        return hit

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed each text; rows have unit length."""
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise EmptyTextError(f"text #{row} is empty; nothing to embed")
            words = _TOKEN.findall(text.lower())
            for tok in words + [a + "_" + b for a, b in itertools.pairwise(words)]:
                i, sign = self._bucket(tok)
                out[row, i] += sign
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
            else:
                out[row, 0] = 1.0
        return out
