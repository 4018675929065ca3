"""Embedding throughput of SentenceTransformerEmbedder against raw `SentenceTransformer.encode`.

Both encode the same 2,000 trade texts, in the same process, with the same weights and batch size,
in interleaved rounds (so background load hits both alike). Target: service / raw >= 0.9.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bench.common import Stopwatch, Target, trade_texts, write_result

N_TEXTS = 2_000
ROUNDS = 2
CHUNK = 128  # a multiple of the batch size: both sides see the same batches
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

    def encode_raw(chunk: list[str]) -> np.ndarray:
        return raw.encode(chunk, batch_size=cfg.batch_size, convert_to_numpy=True, show_progress_bar=False)

    service.embed(texts[:128])  # warm-up: first calls allocate and tune kernels
    encode_raw(texts[:128])

    # Paired, interleaved measurement: each slice is encoded by both, back to back, alternating which goes
    # first, so background load on a shared machine hits both alike. Each side encodes all N_TEXTS per round.
    chunks = [texts[i:i + CHUNK] for i in range(0, N_TEXTS, CHUNK)]
    wall: dict[str, list[float]] = {"raw": [0.0] * ROUNDS, "service": [0.0] * ROUNDS}
    cpu: dict[str, list[float]] = {"raw": [0.0] * ROUNDS, "service": [0.0] * ROUNDS}
    parts: dict[str, list[np.ndarray]] = {"raw": [], "service": []}
    sides = [("raw", encode_raw), ("service", service.embed)]
    for r in range(ROUNDS):
        for c, chunk in enumerate(chunks):
            for name, fn in sides if (r + c) % 2 == 0 else reversed(sides):
                cpu0 = time.process_time()
                with Stopwatch() as sw:
                    out = fn(chunk)
                cpu[name][r] += time.process_time() - cpu0
                wall[name][r] += sw.seconds
                if r == 0:
                    parts[name].append(np.asarray(out))
        print(f"[embedding_throughput] round {r + 1}: raw {N_TEXTS / wall['raw'][r]:.1f} texts/s, "
              f"service {N_TEXTS / wall['service'][r]:.1f} texts/s", flush=True)
    outputs = {name: np.vstack(p) for name, p in parts.items()}
    times = wall

    raw_normalised = outputs["raw"] / np.linalg.norm(outputs["raw"], axis=1, keepdims=True)
    max_diff = float(np.abs(raw_normalised - outputs["service"]).max())
    norms = np.linalg.norm(outputs["service"], axis=1)

    service_tps = N_TEXTS / statistics.median(times["service"])
    raw_tps = N_TEXTS / statistics.median(times["raw"])
    ratio = service_tps / raw_tps
    cpu_ratio = statistics.median(cpu["raw"]) / statistics.median(cpu["service"])
    best_ratio = (N_TEXTS / min(times["service"])) / (N_TEXTS / min(times["raw"]))
    return write_result(
        "embedding_throughput",
        started=started,
        figures={"service_texts_per_s": round(service_tps, 2),
                 "service_seconds": [round(t, 3) for t in times["service"]]},
        baselines={"raw_encode_texts_per_s": round(raw_tps, 2), "raw_seconds": [round(t, 3) for t in times["raw"]]},
        ratios={"service_over_raw": round(ratio, 4), "service_over_raw_best_of_rounds": round(best_ratio, 4),
                "service_over_raw_cpu_time": round(cpu_ratio, 4)},
        targets=[Target("service_over_raw", ">=", TARGET_RATIO, round(ratio, 4))],
        details={
            "texts": N_TEXTS,
            "mean_text_chars": round(float(np.mean([len(t) for t in texts])), 1),
            "rounds": ROUNDS,
            "slice": CHUNK,
            "method": "per round, every slice of texts encoded by both back to back (alternating order); "
                      "figure = texts / median total wall seconds of the rounds",
            "cpu_seconds": {k: [round(x, 2) for x in v] for k, v in cpu.items()},
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
