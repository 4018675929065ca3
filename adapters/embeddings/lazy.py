"""LazyEmbedder: loads the real model on first use, so commands that never embed (pause, status,
breaker, watchlist) start in a second instead of loading torch."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from domain.errors import DimensionMismatchError
from domain.ports.embedder import Embedder


class LazyEmbedder(Embedder):
    """Implements `Embedder` by building the wrapped embedder on the first call that needs it."""

    def __init__(self, factory: Callable[[], Embedder], *, dimension: int) -> None:
        self._factory = factory
        self._dimension = dimension
        self._inner: Embedder | None = None
        self._lock = threading.Lock()

    def _load(self) -> Embedder:
        if self._inner is None:
            with self._lock:
                if self._inner is None:
                    inner = self._factory()
                    if inner.dimension != self._dimension:
                        raise DimensionMismatchError(self._dimension, inner.dimension,
                                                     what=f"embedding model {inner.model_name}")
                    self._inner = inner
        return self._inner

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded."""
        return self._inner is not None

    @property
    def model_name(self) -> str:
        """Name of the model actually loaded (loads it)."""
        return self._load().model_name

    @property
    def dimension(self) -> int:
        """The configured dimension (checked against the model when it loads)."""
        return self._dimension

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Load the model if needed and embed."""
        return self._load().embed(texts)
