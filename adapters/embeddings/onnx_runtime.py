"""OnnxEmbedder: the same sentence-transformers model, run by ONNX Runtime on the CPU (implements `Embedder`).

The model is exported locally, once, from the loaded `SentenceTransformer` with `torch.onnx.export` (the whole
pipeline: transformer, mean pooling, normalisation) into `<cache_dir>/<model>-<fingerprint>/model.onnx`; nothing
is downloaded. The fingerprint covers the weights, the module stack, the torch version and the opset, so a new
model or torch release exports again. Texts are tokenised by the `SentenceTransformer` itself (`preprocess`), so
the token ids are exactly the ones `encode` feeds the torch model; only the arithmetic runs elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import structlog

from adapters.embeddings.sentence_transformer import check_texts
from domain.errors import DimensionMismatchError
from domain.ports.embedder import Embedder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = structlog.get_logger(__name__)

OPSET = 17
EXPORT_FORMAT = "quorum-st-pipeline-1"
"""Bumped when the exported graph changes shape (inputs, outputs, what the wrapper computes)."""
OUTPUT = "sentence_embedding"
_SAMPLE = ["short", "a longer sample text, so that the first one is padded when both are tokenised together"]


def fingerprint(model: SentenceTransformer) -> str:
    """Hex digest identifying an export of `model`: weights, module stack, torch version, opset, format."""
    import torch

    h = hashlib.sha256(f"{EXPORT_FORMAT}|{OPSET}|{torch.__version__}|{model!r}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (an export is ~90 MB: read in chunks)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_path(model: SentenceTransformer, model_name: str, cache_dir: Path) -> Path:
    """Where the export of `model` lives under `cache_dir`."""
    slug = model_name.replace("/", "--").replace(os.sep, "--")
    return cache_dir.expanduser() / f"{slug}-{fingerprint(model)[:16]}" / "model.onnx"


def _text_features(model: SentenceTransformer, texts: list[str]) -> dict[str, Any]:
    return dict(model.preprocess(texts))


def export_onnx(model: SentenceTransformer, path: Path) -> Path:
    """Export `model`'s full pipeline to `path` (atomically: a temporary file renamed into place).

    Raises:
        Exception: whatever torch.onnx raises (e.g. the `onnx` package is missing).
    """
    import torch

    sample = _text_features(model, _SAMPLE)
    names = [k for k, v in sample.items() if isinstance(v, torch.Tensor) and not v.is_floating_point()]
    constants = {k: v for k, v in sample.items() if not isinstance(v, torch.Tensor)}

    class _Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model({**constants, **dict(zip(names, inputs, strict=True))})[OUTPUT]  # type: ignore[no-any-return]

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {OUTPUT: {0: "batch"}}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent branches: the check covers them
            torch.onnx.export(_Pipeline(), tuple(sample[n] for n in names), str(tmp), input_names=names,
                              output_names=[OUTPUT], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        os.replace(tmp, path)
    finally:
        model.train(was_training)
        tmp.unlink(missing_ok=True)
    log.info("embedding_model_exported", path=str(path), opset=OPSET, bytes=path.stat().st_size)
    return path


class OnnxEmbedder(Embedder):
    """Embeds with ONNX Runtime the model exported from a loaded `SentenceTransformer` (implements `Embedder`).

    Args:
        model: the loaded sentence-transformers model (its `preprocess` tokenises).
        model_name: name of that model.
        onnx_path: its export (see `export_onnx`).
        dimension: expected vector length.
        batch_size: texts per inference call (longest first, like `encode`, to pad little).
        threads: ONNX Runtime intra-op threads; 0 lets it choose (one per physical core).
    """

    def __init__(self, model: SentenceTransformer, model_name: str, onnx_path: Path, *, dimension: int = 384,
                 batch_size: int = 64, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads leave the CPU
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self._session.get_inputs()]
        got = self._session.get_outputs()[0].shape[-1]
        if isinstance(got, int) and got != dimension:
            raise DimensionMismatchError(dimension, got, what=f"ONNX export of {model_name}")
        self._model, self._model_name, self._path = model, model_name, onnx_path
        self._dimension, self._batch_size, self._threads = dimension, batch_size, threads

    @property
    def model_name(self) -> str:
        """Name of the model actually loaded."""
        return self._model_name

    @property
    def dimension(self) -> int:
        """Vector length."""
        return self._dimension

    @property
    def backend(self) -> str:
        """The inference backend: always `onnx`."""
        return "onnx"

    @property
    def path(self) -> Path:
        """The exported model file."""
        return self._path

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed texts in batches of `batch_size`, longest first, unit-normalised."""
        check_texts(texts)
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), self._batch_size):
            rows = order[start:start + self._batch_size]
            features = _text_features(self._model, [texts[i] for i in rows])
            feeds = {name: np.asarray(features[name].numpy(), dtype=np.int64) for name in self._inputs}
            out[rows] = self._session.run([OUTPUT], feeds)[0]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)
