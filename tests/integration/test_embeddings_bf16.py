"""The bfloat16 backend of the embedding model and the "auto" choice: bf16 only on a CPU with native bfloat16
and only within 1e-3 cosine of float32 torch; otherwise the next backend, saying why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from structlog.testing import capture_logs

pytest.importorskip("sentence_transformers", reason="the 'ml' extra is not installed")

from adapters.embeddings import backends
from adapters.embeddings.agreement import MAX_COSINE_GAP
from adapters.embeddings.backends import build_embedder
from adapters.embeddings.bf16 import Bf16Embedder
from adapters.embeddings.sentence_transformer import SentenceTransformerEmbedder, load_sentence_transformer
from domain.errors import EmptyTextError
from tests.support.embedding_texts import TEXTS, cosines

pytestmark = [pytest.mark.slow, pytest.mark.integration]

MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # the configured default: the packaged model


@pytest.fixture(scope="module")
def loaded() -> tuple[Any, str]:
    return load_sentence_transformer(MODEL)


def build(backend: str, cache_dir: Path) -> tuple[Any, list[dict[str, Any]]]:
    with capture_logs() as logs:
        built = build_embedder(MODEL, backend=backend, cache_dir=cache_dir)  # type: ignore[arg-type]
    return built, logs


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


def test_bf16_vectors_are_float32_torchs_within_1e3_cosine(loaded: tuple[Any, str]) -> None:
    st, name = loaded
    texts = [*TEXTS, *reversed(TEXTS)]
    reference = SentenceTransformerEmbedder(name, loaded=st, batch_size=4).embed(texts)
    got = Bf16Embedder(name, loaded=st, batch_size=4).embed(texts)
    assert got.shape == reference.shape and got.dtype == np.float32
    gap = 1 - cosines(got, reference)
    assert gap.max() <= MAX_COSINE_GAP
    assert gap.max() > 0  # really computed in bfloat16, not float32 under another name
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    with pytest.raises(EmptyTextError):
        Bf16Embedder(name, loaded=st).embed(["fine", ""])


def test_auto_takes_bf16_on_a_cpu_with_native_bfloat16(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(backends, "native_bf16", lambda: True)
    built, logs = build("auto", tmp_path)
    assert isinstance(built, Bf16Embedder) and built.backend == "bf16"
    [selected] = events(logs, "embedding_backend_selected")
    assert (selected["backend"], selected["requested"], selected["within_tolerance"]) == ("bf16", "auto", True)
    assert list(tmp_path.iterdir()) == []  # no ONNX export made for nothing


def test_auto_passes_over_bf16_without_native_bfloat16_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime", reason="the 'ml' extra is not installed")
    monkeypatch.setattr(backends, "native_bf16", lambda: False)
    built, logs = build("auto", tmp_path)
    assert built.backend == "onnx"
    [skipped] = events(logs, "embedding_backend_skipped")
    assert (skipped["wanted"], skipped["backend"], skipped["log_level"]) == ("bf16", "onnx", "info")
    assert "no native bfloat16" in skipped["reason"]
    assert events(logs, "embedding_backend_fallback") == []


def test_bf16_asked_for_without_native_bfloat16_is_torch_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(backends, "native_bf16", lambda: False)
    built, logs = build("bf16", tmp_path)
    assert type(built) is SentenceTransformerEmbedder and built.backend == "torch"
    [fallback] = events(logs, "embedding_backend_fallback")
    assert (fallback["wanted"], fallback["backend"], fallback["log_level"]) == ("bf16", "torch", "warning")


def test_bf16_vectors_that_disagree_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(backends, "native_bf16", lambda: True)
    exact = Bf16Embedder.embed

    def drifting(self: Bf16Embedder, texts: Any) -> np.ndarray:
        v = exact(self, texts)
        v[:, :8] += 0.05  # a cosine gap of about 1e-2
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    monkeypatch.setattr(Bf16Embedder, "embed", drifting)
    built, logs = build("bf16", tmp_path)
    assert type(built) is SentenceTransformerEmbedder
    [fallback] = events(logs, "embedding_backend_fallback")
    assert fallback["reason"].startswith("bf16 vectors differ from torch: min cosine")
    assert fallback["min_cosine"] < 1 - MAX_COSINE_GAP and fallback["within_tolerance"] is False


def test_a_bf16_backend_that_fails_is_torch_with_the_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(backends, "native_bf16", lambda: True)

    def broken(self: Bf16Embedder, texts: Any) -> np.ndarray:
        raise RuntimeError("autocast is not supported here\nsecond line")

    monkeypatch.setattr(Bf16Embedder, "embed", broken)
    built, logs = build("bf16", tmp_path)
    assert type(built) is SentenceTransformerEmbedder
    [fallback] = events(logs, "embedding_backend_fallback")
    assert fallback["reason"] == "RuntimeError: autocast is not supported here"
