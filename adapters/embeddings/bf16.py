"""Bf16Embedder: `SentenceTransformer.encode` with the matrix products in bfloat16 (torch CPU autocast).

On a CPU with native bfloat16 arithmetic (AVX512-BF16 or AMX) the model runs about twice as fast as in float32;
layer norms, softmax and the accumulation stay in float32, so the vectors stay close to the float32 ones (the
backend is used only when they are within 1e-3 cosine on the reference texts: see `backends.build_embedder`).
Without native support, bfloat16 is emulated and slower than float32: `native_bf16` says which.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from adapters.embeddings.sentence_transformer import SentenceTransformerEmbedder


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles), as torch sees it."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


class Bf16Embedder(SentenceTransformerEmbedder):
    """Batched, normalised sentence embeddings in bfloat16 autocast on the CPU (implements `Embedder`)."""

    @property
    def backend(self) -> str:
        """The inference backend: always `bf16`."""
        return "bf16"

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed texts in batches of `batch_size`, unit-normalised in float32."""
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            vectors = super().embed(texts)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)
