"""The ONNX Runtime backend of the embedding model: the same vectors as torch (within 1e-3 cosine), exported
once into the cache directory and reused, and torch with a logged reason whenever it cannot be trusted."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from structlog.testing import capture_logs

pytest.importorskip("sentence_transformers", reason="the 'ml' extra is not installed")
pytest.importorskip("onnxruntime", reason="the 'ml' extra is not installed")

from adapters.embeddings import backends
from adapters.embeddings.agreement import MAX_COSINE_GAP
from adapters.embeddings.backends import build_embedder
from adapters.embeddings.onnx_runtime import OnnxEmbedder, export_onnx, export_path
from adapters.embeddings.sentence_transformer import (
    SentenceTransformerEmbedder,
    load_sentence_transformer,
)
from domain.errors import EmptyTextError
from tests.support.embedding_texts import LONG, TEXTS, cosines

pytestmark = [pytest.mark.slow, pytest.mark.integration]

MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # the configured default: the packaged model, here offline


@pytest.fixture(scope="module")
def loaded() -> tuple[Any, str]:
    return load_sentence_transformer(MODEL)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def exports(cache_dir: Path) -> Iterator[list[Path]]:
    """Records every export `build_embedder` makes in this module."""
    made: list[Path] = []
    real = backends.export_onnx

    def counting(model: Any, path: Path) -> Path:
        made.append(path)
        return real(model, path)

    patch = pytest.MonkeyPatch()
    patch.setattr(backends, "export_onnx", counting)
    yield made
    patch.undo()


@pytest.fixture(scope="module")
def onnx(cache_dir: Path, exports: list[Path]) -> OnnxEmbedder:
    built = build_embedder(MODEL, backend="onnx", cache_dir=cache_dir, batch_size=4)
    assert isinstance(built, OnnxEmbedder)
    return built


@pytest.fixture(scope="module")
def torch_embedder(loaded: tuple[Any, str]) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(loaded[1], loaded=loaded[0], batch_size=4)


def test_onnx_vectors_are_torchs_within_1e3_cosine(
    onnx: OnnxEmbedder, torch_embedder: SentenceTransformerEmbedder, loaded: tuple[Any, str]
) -> None:
    assert len(loaded[0].tokenizer(LONG)["input_ids"]) > 256  # longer than the model reads: both truncate
    texts = [*TEXTS, *reversed(TEXTS)]  # more than one batch of 4, mixed lengths: rows must come back in order
    got, expected = onnx.embed(texts), torch_embedder.embed(texts)
    assert got.shape == expected.shape == (len(texts), 384) and got.dtype == np.float32
    assert cosines(got, expected).min() >= 1 - MAX_COSINE_GAP
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(got[: len(TEXTS)], got[len(TEXTS):][::-1])
    single = onnx.embed([TEXTS[4]])[0]
    assert float(single @ expected[4]) >= 1 - MAX_COSINE_GAP  # alone (no padding) as in a batch


def test_onnx_refuses_what_torch_refuses(onnx: OnnxEmbedder) -> None:
    with pytest.raises(EmptyTextError):
        onnx.embed(["fine", " \n "])
    assert onnx.embed([]).shape == (0, 384)
    assert (onnx.backend, onnx.dimension) == ("onnx", 384)


def test_the_export_is_made_once_and_reused(onnx: OnnxEmbedder, cache_dir: Path, exports: list[Path]) -> None:
    assert exports == [onnx.path] and onnx.path.is_relative_to(cache_dir)
    stamp = onnx.path.stat().st_mtime_ns
    with capture_logs() as logs:
        again = build_embedder(MODEL, backend="onnx", cache_dir=cache_dir)
    assert isinstance(again, OnnxEmbedder) and again.path == onnx.path
    assert exports == [onnx.path] and onnx.path.stat().st_mtime_ns == stamp
    [selected] = [e for e in logs if e["event"] == "embedding_backend_selected"]
    assert selected["backend"] == "onnx" and selected["within_tolerance"] is True
    assert not list(onnx.path.parent.glob(".*.tmp"))


def test_the_export_is_deterministic(onnx: OnnxEmbedder, loaded: tuple[Any, str], tmp_path: Path) -> None:
    other = export_onnx(loaded[0], tmp_path / "model.onnx")
    assert digest(other) == digest(onnx.path)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fallback_of(**kwargs: Any) -> tuple[Any, dict[str, Any]]:
    with capture_logs() as logs:
        built = build_embedder(MODEL, backend="onnx", **kwargs)
    [fallback] = [e for e in logs if e["event"] == "embedding_backend_fallback"]
    return built, fallback


def copy_export(onnx: OnnxEmbedder, loaded: tuple[Any, str], cache_dir: Path) -> Path:
    target = export_path(loaded[0], loaded[1], cache_dir)
    target.parent.mkdir(parents=True)
    shutil.copyfile(onnx.path, target)
    return target


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_cached_export_falls_back_to_torch_and_says_why(
    onnx: OnnxEmbedder, loaded: tuple[Any, str], tmp_path: Path, exports: list[Path], damage: str
) -> None:
    target = copy_export(onnx, loaded, tmp_path)
    data = target.read_bytes()
    target.write_bytes(b"not an onnx model" if damage == "garbage" else data[: len(data) // 2])
    built, fallback = fallback_of(cache_dir=tmp_path)
    assert isinstance(built, SentenceTransformerEmbedder) and built.backend == "torch"
    assert fallback["backend"] == "torch" and fallback["wanted"] == "onnx"
    assert f"delete {target} to export it again" in fallback["reason"]
    assert exports == [onnx.path]  # the damaged file is reported, not silently exported over


def test_a_replaced_export_is_checked_again_and_refused_when_its_vectors_differ(
    onnx: OnnxEmbedder, loaded: tuple[Any, str], tmp_path: Path
) -> None:
    import onnx as onnx_format
    from onnx import numpy_helper

    target = copy_export(onnx, loaded, tmp_path)
    assert isinstance(build_embedder(MODEL, backend="onnx", cache_dir=tmp_path), OnnxEmbedder)  # agreement stored
    graph = onnx_format.load(str(target))
    biggest = max(graph.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    weights = numpy_helper.to_array(biggest)
    noisy = weights + np.random.default_rng(0).normal(0, 3 * float(weights.std()), weights.shape).astype(weights.dtype)
    biggest.CopyFrom(numpy_helper.from_array(noisy, biggest.name))
    onnx_format.save(graph, str(target))
    built, fallback = fallback_of(cache_dir=tmp_path)
    assert isinstance(built, SentenceTransformerEmbedder)
    assert fallback["reason"].startswith("onnx vectors differ from torch: min cosine")
    assert fallback["within_tolerance"] is False and fallback["min_cosine"] < 1 - MAX_COSINE_GAP
    record = json.loads((target.parent / "agreement.json").read_text())
    assert record["key"]["model_sha256"] == digest(target)


def test_no_onnxruntime_falls_back_to_torch_and_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    built, fallback = fallback_of(cache_dir=tmp_path)
    assert isinstance(built, SentenceTransformerEmbedder)
    assert "onnxruntime" in fallback["reason"] and "delete" not in fallback["reason"]


def test_the_torch_backend_is_plain_encode(tmp_path: Path) -> None:
    with capture_logs() as logs:
        built = build_embedder(MODEL, backend="torch", cache_dir=tmp_path)
    assert isinstance(built, SentenceTransformerEmbedder)
    assert [e["backend"] for e in logs if e["event"] == "embedding_backend_selected"] == ["torch"]
    assert list(tmp_path.iterdir()) == []


CHILD = """
import sys
from pathlib import Path
from adapters.embeddings.backends import build_embedder
e = build_embedder("sentence-transformers/all-MiniLM-L6-v2", backend="onnx", cache_dir=Path(sys.argv[1]))
print("RESULT", e.backend, e.path)
"""


def test_two_processes_exporting_at_once_leave_one_good_file(onnx: OnnxEmbedder, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "HF_HUB_OFFLINE": "1"}
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [c.communicate(timeout=300) for c in children]
    assert [c.returncode for c in children] == [0, 0], [err[-2000:] for _, err in outputs]
    results = [next(line.split()[1:] for line in out.splitlines() if line.startswith("RESULT ")) for out, _ in outputs]
    paths = {path for _, path in results}
    assert [backend for backend, _ in results] == ["onnx", "onnx"] and len(paths) == 1
    [path] = [Path(p) for p in paths]
    assert digest(path) == digest(onnx.path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["agreement.json", "model.onnx"]
    assert isinstance(build_embedder(MODEL, backend="onnx", cache_dir=tmp_path), OnnxEmbedder)
