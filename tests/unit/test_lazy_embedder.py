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


def test_a_batch_larger_than_the_cache_is_embedded_once_and_returned_whole() -> None:
    inner = Counting()
    lazy = LazyEmbedder(lambda: inner, dimension=384, cache_size=2)
    texts = ["one", "two", "three", "two", "four", "one"]
    got = lazy.embed(texts)
    assert inner.seen == ["one", "two", "three", "four"]
    np.testing.assert_array_equal(got, HashingEmbedder(384).embed(texts))


def test_cached_texts_evicted_by_the_new_ones_of_the_same_call_are_still_returned() -> None:
    inner = Counting()
    lazy = LazyEmbedder(lambda: inner, dimension=384, cache_size=2)
    lazy.embed(["old"])
    got = lazy.embed(["old", "new a", "new b"])
    assert inner.seen == ["old", "new a", "new b"]
    np.testing.assert_array_equal(got, HashingEmbedder(384).embed(["old", "new a", "new b"]))


def test_only_new_texts_reach_the_model_and_the_vectors_are_the_models() -> None:
    inner = Counting()
    lazy = LazyEmbedder(lambda: inner, dimension=384)
    day1 = ["BUY AAPL: uptrend", "BUY MSFT: uptrend", "Market on day 1"]
    day2 = ["BUY AAPL: downtrend", "BUY MSFT: uptrend", "Market on day 1", "BUY AAPL: uptrend"]
    first, second = lazy.embed(day1), lazy.embed(day2)
    assert inner.seen == [*day1, "BUY AAPL: downtrend"]
    assert (lazy.texts_requested, lazy.texts_embedded) == (7, 4)
    np.testing.assert_array_equal(second, HashingEmbedder(384).embed(day2))
    np.testing.assert_array_equal(second[3], first[0])
    second[3][:] = 0.0  # the caller's array is its own: the cached vector is not changed through it
    np.testing.assert_array_equal(lazy.embed(["BUY AAPL: uptrend"])[0], first[0])
