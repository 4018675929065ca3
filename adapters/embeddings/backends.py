"""Which inference backend embeds: the fastest one whose vectors agree with `SentenceTransformer.encode`.

`build_embedder` loads the configured sentence-transformers model once (that model or an error, never another), then:
- backend "torch": `SentenceTransformer.encode` in float32 (SentenceTransformerEmbedder), the reference;
- backend "bf16": the same call with the matrix products in bfloat16 (Bf16Embedder), about twice as fast on a
  CPU with native bfloat16 and slower without it, so used only on such a CPU;
- backend "onnx": the model exported locally into `cache_dir` (once; later runs reuse the file) and run by
  ONNX Runtime (OnnxEmbedder);
- backend "auto" (the default): bf16 where the CPU has native bfloat16, else onnx, else torch.
A backend other than torch is kept only if its vectors of `REFERENCE_TEXTS` are within 1e-3 cosine of the torch
ones. Anything that goes wrong (onnxruntime missing, an export or load error, a device other than the CPU,
vectors that disagree) moves on to the next backend with an `embedding_backend_fallback` warning saying why;
"auto" passing over bf16 on a CPU without native bfloat16 is logged as `embedding_backend_skipped`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import structlog

from adapters.embeddings.agreement import Agreement, agreement, texts_digest
from adapters.embeddings.bf16 import Bf16Embedder, native_bf16
from adapters.embeddings.onnx_runtime import OnnxEmbedder, export_onnx, export_path, file_digest
from adapters.embeddings.sentence_transformer import (
    SentenceTransformerEmbedder,
    default_threads,
    load_sentence_transformer,
)
from domain.ports.embedder import Embedder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = structlog.get_logger(__name__)

Backend = Literal["auto", "bf16", "onnx", "torch"]
DEFAULT_CACHE_DIR = Path(".quorum/models")
AUTO_ORDER: tuple[Backend, ...] = ("bf16", "onnx")
"""What "auto" tries, in order, before torch."""


class UnusableBackend(Exception):
    """A backend that cannot be used here, and why."""

    def __init__(self, reason: str, checked: Agreement | None = None, *, expected: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.checked, self.expected = reason, checked, expected


@dataclass(frozen=True)
class _Build:
    st: SentenceTransformer
    name: str
    reference: SentenceTransformerEmbedder
    dimension: int
    batch_size: int
    threads: int
    cache_dir: Path


def build_embedder(model: str, *, backend: Backend = "auto", dimension: int = 384, batch_size: int = 64,
                   device: str = "cpu", allow_download: bool = False, threads: int = 0,
                   cache_dir: Path = DEFAULT_CACHE_DIR) -> Embedder:
    """The embedder of `model` on `backend` (or the next usable one, torch at the end).

    Args:
        model: model name or local directory (a `ConfigurationError` when it is not available locally).
        backend: "auto", "bf16", "onnx" or "torch".
        dimension: expected vector length.
        batch_size: texts per inference call.
        device: torch device; the bf16 and ONNX backends run on the CPU only.
        allow_download: let sentence-transformers download the model.
        threads: CPU threads of the backend (torch intra-op threads or ONNX Runtime intra-op threads); 0 means
            one per CPU, at most 4.
        cache_dir: where ONNX exports are kept.
    """
    threads = threads or default_threads()
    st, name = load_sentence_transformer(model, device=device, allow_download=allow_download)
    reference = SentenceTransformerEmbedder(name, dimension=dimension, batch_size=batch_size, threads=threads,
                                            loaded=st)
    build = _Build(st, name, reference, dimension, batch_size, threads, cache_dir)
    wanted: tuple[Backend, ...] = AUTO_ORDER if backend == "auto" else (backend,) if backend != "torch" else ()
    for i, candidate in enumerate(wanted):
        following = wanted[i + 1] if i + 1 < len(wanted) else "torch"
        try:
            if device != "cpu":
                raise UnusableBackend(f"the {candidate} backend runs on the CPU only (device {device!r})")
            embedder, checked = _BUILDERS[candidate](build)
            if not checked.within_tolerance:
                raise UnusableBackend(f"{candidate} vectors differ from torch: min cosine {checked.min_cosine:.6f} "
                                      f"over {checked.texts} texts (< 1 - 1e-3)", checked)
        except UnusableBackend as exc:
            _passed_over(candidate, following, name, exc, auto=backend == "auto")
            continue
        where = {"path": str(embedder.path)} if isinstance(embedder, OnnxEmbedder) else {}
        log.info("embedding_backend_selected", backend=candidate, requested=backend, model=name, threads=threads,
                 **where, **checked.as_dict())
        return embedder
    log.info("embedding_backend_selected", backend="torch", requested=backend, model=name, threads=threads)
    return reference


def _passed_over(candidate: str, following: str, model: str, exc: UnusableBackend, *, auto: bool) -> None:
    fields = {"backend": following, "wanted": candidate, "model": model, "reason": exc.reason,
              **(exc.checked.as_dict() if exc.checked else {})}
    if exc.expected and auto:
        log.info("embedding_backend_skipped", **fields)
    else:
        log.warning("embedding_backend_fallback", **fields)


def _bf16(b: _Build) -> tuple[Embedder, Agreement]:
    if not native_bf16():
        raise UnusableBackend("this CPU has no native bfloat16 (AVX512-BF16 or AMX): emulated, bf16 is slower "
                              "than float32", expected=True)
    try:
        candidate = Bf16Embedder(b.name, dimension=b.dimension, batch_size=b.batch_size, threads=b.threads,
                                 loaded=b.st)
        return candidate, agreement(b.reference, candidate)
    except Exception as exc:  # e.g. a torch build without CPU autocast: use the next backend
        raise UnusableBackend(_failure(exc)) from exc


def _failure(exc: Exception, hint: str = "") -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{hint}"


def _onnx(b: _Build) -> tuple[Embedder, Agreement]:
    path: Path | None = None
    try:
        path = export_path(b.st, b.name, b.cache_dir)
        onnx = _onnx_embedder(b.st, b.name, path, dimension=b.dimension, batch_size=b.batch_size, threads=b.threads)
        return onnx, _checked_agreement(b.reference, onnx)
    except Exception as exc:  # any failure of the optional backend means "use the next one"
        damaged = path is not None and path.is_file() and not isinstance(exc, ImportError)
        where = f" (delete {path} to export it again)" if damaged else ""
        raise UnusableBackend(_failure(exc, where)) from exc


_BUILDERS: dict[str, Callable[[_Build], tuple[Embedder, Agreement]]] = {"bf16": _bf16, "onnx": _onnx}


def _onnx_embedder(st: SentenceTransformer, name: str, path: Path, *, dimension: int, batch_size: int,
                   threads: int) -> OnnxEmbedder:
    import onnxruntime  # noqa: F401 - fail before an export that could not be run

    if not path.is_file():
        export_onnx(st, path)
    return OnnxEmbedder(st, name, path, dimension=dimension, batch_size=batch_size, threads=threads)


def _checked_agreement(reference: Embedder, onnx: OnnxEmbedder) -> Agreement:
    """The agreement of `onnx` with torch on `REFERENCE_TEXTS`, measured once per exported file (by content
    hash), ONNX Runtime version and set of texts, and kept beside the export in agreement.json: a later load of
    the same bytes by the same runtime reuses it; any other file (a new export, a damaged or replaced one) is
    checked again."""
    import onnxruntime

    record = onnx.path.parent / "agreement.json"
    key = {"model_sha256": file_digest(onnx.path), "onnxruntime": onnxruntime.__version__, "texts": texts_digest()}
    try:
        stored = json.loads(record.read_text())
        if stored.get("key") == key:
            return Agreement(**stored["agreement"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    checked = agreement(reference, onnx)
    tmp = record.with_name(f".{record.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "agreement": {
        "texts": checked.texts, "min_cosine": checked.min_cosine, "mean_cosine": checked.mean_cosine,
        "max_abs_diff": checked.max_abs_diff}}))
    os.replace(tmp, record)
    return checked
