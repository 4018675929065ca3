"""LazyEmbedder: no model until a text is embedded; repeated texts are not embedded twice."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from adapters.embeddings.lazy import LazyEmbedder
from adapters.inmemory.hashing_embedder import HashingEmbedder
from domain.errors import DimensionMismatchError, EmptyTextError


class Counting(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(384)
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]):  # type: ignore[no-untyped-def]
        self.seen += list(texts)
        return super().embed(texts)


def test_loads_on_first_embed_and_reuses_vectors() -> None:
    inner = Counting()
    built: list[int] = []
    lazy = LazyEmbedder(lambda: built.append(1) or inner, dimension=384, cache_size=3)
    assert lazy.dimension == 384 and not lazy.loaded and built == []
    a = lazy.embed(["alpha", "beta", "alpha"])
    assert built == [1] and inner.seen == ["alpha", "beta"]
    np.testing.assert_array_equal(a[0], a[2])
    np.testing.assert_array_equal(lazy.embed(["beta"])[0], HashingEmbedder(384).embed(["beta"])[0])
    assert inner.seen == ["alpha", "beta"]
    lazy.embed(["c", "d"])  # cache of 3 keeps the most recently used: beta, c, d
    lazy.embed(["alpha"])
    assert inner.seen == ["alpha", "beta", "c", "d", "alpha"]
    assert lazy.embed([]).shape == (0, 384)


def test_errors_of_the_model_pass_through() -> None:
    lazy = LazyEmbedder(lambda: HashingEmbedder(384), dimension=384)
    with pytest.raises(EmptyTextError):
        lazy.embed(["  "])
    wrong = LazyEmbedder(lambda: HashingEmbedder(128), dimension=384)
    with pytest.raises(DimensionMismatchError):
        wrong.embed(["x"])
