"""Embedder port: text in, unit-length vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of a fixed dimension."""

    @property
    def model_name(self) -> str:
        """Name of the model actually loaded (not merely the one configured)."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed `texts` in batches.

        Args:
            texts: non-empty strings.

        Returns:
            An array of shape (len(texts), dimension), each row of unit length.

        Raises:
            EmptyTextError: a text is empty or only whitespace.
        """
        ...
