"""Which model a setting names and where it loads from: exactly that model or a one-line error, never another."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.embeddings import models
from adapters.embeddings.lazy import LazyEmbedder
from adapters.embeddings.models import PACKAGED_MODEL_NAME, model_name, resolve_model
from adapters.inmemory.hashing_embedder import HashingEmbedder
from domain.errors import ConfigurationError
from entrypoints.container import build_container
from entrypoints.settings import EmbeddingSettings, load_settings
from tests.support.named_embedder import NamedEmbedder

BGE = "BAAI/bge-small-en-v1.5"


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache in place of the machine's."""
    constants = pytest.importorskip("huggingface_hub.constants", reason="the 'ml' extra is not installed")
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def cache_model(cache: Path, repo_id: str) -> Path:
    """Put `repo_id` in the cache the way huggingface_hub lays it out (refs/main -> snapshots/<commit>)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "modules.json").write_text("[]")
    return snapshot


def test_the_default_is_the_packaged_model_that_is_here_offline() -> None:
    assert EmbeddingSettings().model == PACKAGED_MODEL_NAME
    packaged = models.packaged_model_path()
    if packaged is None:
        pytest.skip("the 'ml' extra is not installed")
    assert resolve_model(EmbeddingSettings().model) == models.ResolvedModel(PACKAGED_MODEL_NAME, str(packaged))


def test_every_spelling_of_the_packaged_model_has_one_name(tmp_path: Path) -> None:
    assert model_name("all-MiniLM-L6-v2") == model_name(PACKAGED_MODEL_NAME) == PACKAGED_MODEL_NAME
    packaged = models.packaged_model_path()
    if packaged is not None:  # its directory, as the e2e tests configure it
        assert model_name(str(packaged)) == PACKAGED_MODEL_NAME
    other = tmp_path / "my-model"
    other.mkdir()
    assert model_name(str(other)) == str(other.resolve())
    assert model_name(BGE) == BGE


def test_a_name_too_long_for_the_model_column_is_refused(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 130)
    deep.mkdir()
    assert model_name(str(deep)) == str(deep.resolve())  # naming it never fails: `quorum flatten` names it too
    with pytest.raises(ConfigurationError, match="longer than 120"):
        resolve_model(str(deep))


def test_a_model_missing_from_the_cache_is_an_error_not_another_model(hub_cache: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_model(BGE)
    message = str(info.value)
    assert "\n" not in message
    assert f"embedding model {BGE} is not available offline" in message
    assert str(hub_cache) in message
    assert "QUORUM_EMBEDDINGS__ALLOW_DOWNLOAD=true" in message
    assert f"QUORUM_EMBEDDINGS__MODEL={PACKAGED_MODEL_NAME}" in message
    assert "no other model is used in its place" in message


def test_the_sentence_transformer_loads_nothing_when_the_model_is_missing(
        hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.embeddings import sentence_transformer

    loads: list[str] = []
    monkeypatch.setattr(sentence_transformer, "_load", lambda source, **_: loads.append(source))
    with pytest.raises(ConfigurationError, match="not available offline"):
        sentence_transformer.SentenceTransformerEmbedder(BGE)
    assert loads == []


def test_bge_is_one_setting_away_once_it_is_in_the_cache(hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_model(hub_cache, BGE)
    monkeypatch.setenv("QUORUM_EMBEDDINGS__MODEL", BGE)
    settings = load_settings()
    assert settings.embeddings.model == BGE
    assert resolve_model(settings.embeddings.model) == models.ResolvedModel(BGE, BGE)


def test_downloads_are_allowed_only_when_asked(hub_cache: Path) -> None:
    assert resolve_model(BGE, allow_download=True) == models.ResolvedModel(BGE, BGE)
    with pytest.raises(ConfigurationError):
        resolve_model(BGE, allow_download=False)


def test_the_lazy_model_names_itself_without_loading_and_refuses_another_model() -> None:
    built: list[str] = []

    def load() -> NamedEmbedder:
        built.append("loaded")
        return NamedEmbedder("model-b")

    lazy = LazyEmbedder(load, dimension=384, model_name="model-a")
    assert lazy.model_name == "model-a" and not lazy.loaded and built == []
    with pytest.raises(ConfigurationError, match="model-b was loaded where model-a was configured"):
        lazy.embed(["text"])
    assert not lazy.loaded


def test_the_lazy_model_checks_its_files_without_loading() -> None:
    checked: list[int] = []
    lazy = LazyEmbedder(lambda: HashingEmbedder(384), dimension=384, model_name="hashing",
                        available=lambda: checked.append(1))
    lazy.check_available()
    assert checked == [1] and not lazy.loaded

    def missing() -> None:
        raise ConfigurationError("embedding model x is not available offline")

    with pytest.raises(ConfigurationError, match="not available offline"):
        LazyEmbedder(lambda: HashingEmbedder(384), dimension=384, available=missing).check_available()


def test_the_container_names_the_configured_model_without_loading_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_EMBEDDINGS__MODEL", "all-MiniLM-L6-v2")
    embedder = build_container(load_settings(), "sim").embedder()
    assert isinstance(embedder, LazyEmbedder)
    assert embedder.model_name == PACKAGED_MODEL_NAME and not embedder.loaded
