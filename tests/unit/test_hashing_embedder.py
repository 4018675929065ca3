"""HashingEmbedder: the deterministic embedder of unit tests and fast backtests."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.inmemory.hashing_embedder import HashingEmbedder
from domain.errors import EmptyTextError
from domain.ports.embedder import Embedder

TEXTS = [
    "Bought TSLA on a breakout above resistance; stopped out two days later for a 6% loss",
    "MSFT drifted higher after earnings and the trade closed with a 4% profit",
    "x",
]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_it_implements_the_embedder_port() -> None:
    e = HashingEmbedder(384)
    assert isinstance(e, Embedder)
    assert e.dimension == 384
    assert e.model_name == "hashing"


def test_same_text_gives_the_same_vector_across_instances_and_batches() -> None:
    a = HashingEmbedder(384).embed(TEXTS)
    b = HashingEmbedder(384).embed(list(reversed(TEXTS)))[::-1]
    one_by_one = np.vstack([HashingEmbedder(384).embed([t]) for t in TEXTS])
    assert a.shape == (3, 384)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, one_by_one)


def test_vectors_have_unit_length() -> None:
    vectors = HashingEmbedder(384).embed([*TEXTS, "!!! ???"])  # the last has no word at all
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_dimension_is_configurable() -> None:
    assert HashingEmbedder(64).embed(["breakout"]).shape == (1, 64)


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_empty_text_is_refused_with_its_position(bad: str) -> None:
    with pytest.raises(EmptyTextError, match="#1"):
        HashingEmbedder().embed(["fine", bad])


def test_no_text_gives_an_empty_matrix() -> None:
    assert HashingEmbedder(384).embed([]).shape == (0, 384)


def test_texts_sharing_words_are_closer_than_unrelated_texts() -> None:
    query, related, unrelated = HashingEmbedder().embed(
        [
            "failed breakout in TSLA stopped out",
            "TSLA breakout failed and the trade was stopped out",
            "MSFT earnings drift closed with a profit",
        ]
    )
    assert _cos(query, related) > _cos(query, unrelated) + 0.3


def test_case_and_punctuation_do_not_matter() -> None:
    a, b = HashingEmbedder().embed(["TSLA breakout, stopped out!", "tsla BREAKOUT stopped out"])
    assert _cos(a, b) == pytest.approx(1.0, abs=1e-6)
