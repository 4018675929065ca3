"""Embedding throughput of SentenceTransformerEmbedder against raw `SentenceTransformer.encode`.

Both encode the same 2,000 trade texts, in the same process, with the same weights and batch size,
in interleaved rounds (so background load hits both alike). Target: service / raw >= 0.9.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bench.common import Stopwatch, Target, trade_texts, write_result

N_TEXTS = 2_000
ROUNDS = 3
TARGET_RATIO = 0.9


def run() -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    from adapters.embeddings.sentence_transformer import (
        PACKAGED_MODEL_NAME,
        SentenceTransformerEmbedder,
        packaged_model_path,
    )
    from entrypoints.settings import EmbeddingSettings

    started = datetime.now(UTC)
    cfg = EmbeddingSettings()
    texts = trade_texts(N_TEXTS, seed=11)

    with Stopwatch() as load_service:
        service = SentenceTransformerEmbedder(cfg.model, dimension=cfg.dimension, batch_size=cfg.batch_size,
                                              device=cfg.device, allow_download=False)
    source = str(packaged_model_path()) if service.model_name == PACKAGED_MODEL_NAME else service.model_name
    with Stopwatch() as load_raw:
        raw = SentenceTransformer(source, device=cfg.device, local_files_only=True)

    def encode_raw() -> np.ndarray:
        return raw.encode(texts, batch_size=cfg.batch_size, convert_to_numpy=True, show_progress_bar=False)

    def encode_service() -> np.ndarray:
        return service.embed(texts)

    service.embed(texts[:128])  # warm-up: first calls allocate and tune kernels
    raw.encode(texts[:128], batch_size=cfg.batch_size, show_progress_bar=False)

    times: dict[str, list[float]] = {"raw": [], "service": []}
    outputs: dict[str, np.ndarray] = {}
    for r in range(ROUNDS):
        order = [("raw", encode_raw), ("service", encode_service)]
        for name, fn in order if r % 2 == 0 else reversed(order):
            with Stopwatch() as sw:
                outputs[name] = fn()
            times[name].append(sw.seconds)
            print(f"[embedding_throughput] round {r + 1} {name}: {N_TEXTS / sw.seconds:.1f} texts/s", flush=True)

    raw_normalised = outputs["raw"] / np.linalg.norm(outputs["raw"], axis=1, keepdims=True)
    max_diff = float(np.abs(raw_normalised - outputs["service"]).max())
    norms = np.linalg.norm(outputs["service"], axis=1)

    service_tps = N_TEXTS / statistics.median(times["service"])
    raw_tps = N_TEXTS / statistics.median(times["raw"])
    ratio = service_tps / raw_tps
    best_ratio = (N_TEXTS / min(times["service"])) / (N_TEXTS / min(times["raw"]))
    return write_result(
        "embedding_throughput",
        started=started,
        figures={"service_texts_per_s": round(service_tps, 2), "service_seconds": [round(t, 3) for t in times["service"]]},
        baselines={"raw_encode_texts_per_s": round(raw_tps, 2), "raw_seconds": [round(t, 3) for t in times["raw"]]},
        ratios={"service_over_raw": round(ratio, 4), "service_over_raw_best_of_rounds": round(best_ratio, 4)},
        targets=[Target("service_over_raw", ">=", TARGET_RATIO, round(ratio, 4))],
        details={
            "texts": N_TEXTS,
            "mean_text_chars": round(float(np.mean([len(t) for t in texts])), 1),
            "rounds": ROUNDS,
            "statistic": "median seconds over interleaved rounds",
            "configured_model": cfg.model,
            "loaded_model": service.model_name,
            "fallback": service.model_name != cfg.model,
            "batch_size": cfg.batch_size,
            "device": cfg.device,
            "service_load_seconds": round(load_service.seconds, 2),
            "raw_load_seconds": round(load_raw.seconds, 2),
            "service_equals_normalised_raw_max_abs_diff": max_diff,
            "service_norm_min_max": [float(norms.min()), float(norms.max())],
            "raw_call": "SentenceTransformer.encode(texts, batch_size, convert_to_numpy=True) (not normalised)",
            "service_call": "SentenceTransformerEmbedder.embed(texts) (validates, batches, normalises, float32)",
        },
    )


if __name__ == "__main__":
    run()
