"""LazyEmbedder: loads the real model on first use, so commands that never embed (pause, status,
breaker, watchlist) start in a second instead of loading torch; remembers recent texts, because a
cycle embeds the same market-condition and setup texts again (recall at the open, storage at the close),
so no text is embedded twice while it is among the `cache_size` most recently used. `texts_requested` and
`texts_embedded` count what callers asked for and what reached the model.

Given the name of the model it will load, it answers `model_name` without loading it (the start-up check of the
stored vectors needs only the name), and refuses a loaded model of any other name."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from domain.errors import ConfigurationError, DimensionMismatchError
from domain.ports.embedder import Embedder


class LazyEmbedder(Embedder):
    """Implements `Embedder` by building the wrapped embedder on the first call that needs it."""

    def __init__(self, factory: Callable[[], Embedder], *, dimension: int, cache_size: int = 4096,
                 model_name: str | None = None, available: Callable[[], object] | None = None) -> None:
        self._factory = factory
        self._dimension = dimension
        self._model_name = model_name
        self._available = available
        self._inner: Embedder | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._cache_size = cache_size
        self.texts_requested = 0
        self.texts_embedded = 0

    def _load(self) -> Embedder:
        if self._inner is None:
            with self._lock:
                if self._inner is None:
                    inner = self._factory()
                    if inner.dimension != self._dimension:
                        raise DimensionMismatchError(self._dimension, inner.dimension,
                                                     what=f"embedding model {inner.model_name}")
                    if self._model_name is not None and inner.model_name != self._model_name:
                        raise ConfigurationError(f"embedding model {inner.model_name} was loaded where "
                                                 f"{self._model_name} was configured")
                    self._inner = inner
        return self._inner

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded."""
        return self._inner is not None

    @property
    def backend(self) -> str:
        """The inference backend of the loaded model (loads it)."""
        return str(getattr(self._load(), "backend", type(self._load()).__name__))

    @property
    def model_name(self) -> str:
        """Name of the model its vectors are recorded under: the configured one without loading it when known
        (a loaded model of another name is refused), else the loaded one's (loads it)."""
        return self._model_name if self._model_name is not None else self._load().model_name

    def check_available(self) -> None:
        """Check, without loading it, that the model can be loaded (its files are here).

        Raises:
            ConfigurationError: it cannot (the message says what to set).
        """
        if self._available is not None and self._inner is None:
            self._available()

    @property
    def dimension(self) -> int:
        """The configured dimension (checked against the model when it loads)."""
        return self._dimension

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed, reusing the vectors of recently seen texts; new texts go to the model in one batch."""
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        fresh = dict(zip(missing, self._load().embed(missing), strict=True)) if missing else {}
        self.texts_requested += len(texts)
        self.texts_embedded += len(missing)
        vectors = [fresh[t] if t in fresh else self._cache[t] for t in texts]
        for text, vec in zip(texts, vectors, strict=True):
            self._cache[text] = vec
            self._cache.move_to_end(text)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return np.stack(vectors).astype(np.float32, copy=False)
