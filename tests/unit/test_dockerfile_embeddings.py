"""The Docker image bakes in the embedding model production uses and configures it: BGE-small is downloaded at build
time into HF_HOME and QUORUM_EMBEDDINGS__MODEL names it, so the container loads it offline (the image cannot be
built here: no network to Hugging Face, so the Dockerfile itself is read)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from entrypoints.settings import KNOWN_EMBEDDING_MODELS, EmbeddingSettings

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"
BGE = "BAAI/bge-small-en-v1.5"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        found.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    return found


def build_env(steps: list[Instruction]) -> tuple[dict[str, str], dict[int, dict[str, str]]]:
    """ARG defaults and ENV values in force at the end, and the variables in force at each step (by index)."""
    values: dict[str, str] = {}
    at: dict[int, dict[str, str]] = {}
    for i, step in enumerate(steps):
        at[i] = dict(values)
        if step.keyword in ("ARG", "ENV"):
            for word in shlex.split(step.args):
                name, eq, value = word.partition("=")
                if eq:
                    values[name] = re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), ""), value)
    return values, at


@pytest.fixture(scope="module")
def steps() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text())


def test_the_image_configures_bge_small_and_a_model_cache(steps: list[Instruction]) -> None:
    env, _ = build_env(steps)
    assert env["QUORUM_EMBEDDINGS__MODEL"] == BGE
    assert KNOWN_EMBEDDING_MODELS[BGE] == EmbeddingSettings().dimension  # the settings accept it: 384 dimensions
    assert env["HF_HOME"].startswith("/") and not env["HF_HOME"].startswith(("/app", "/tmp"))
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"  # no download at run time


def test_a_build_step_downloads_the_configured_model_into_the_cache(steps: list[Instruction]) -> None:
    env, at = build_env(steps)
    runs = [(i, s) for i, s in enumerate(steps) if s.keyword == "RUN"
            and ("SentenceTransformer(" in s.args or "snapshot_download(" in s.args)]
    assert runs, "no RUN step fetches the embedding model"
    i, step = runs[0]
    before = at[i]
    assert before.get("HF_HOME") == env["HF_HOME"], "HF_HOME must be set before the download, so it lands there"
    assert "HF_HUB_OFFLINE=0" in step.args, "the download step must lift the image's offline setting"
    named = re.sub(r"\$\{?(\w+)\}?", lambda m: before.get(m.group(1), m.group(0)), step.args)
    assert BGE in named
    assert "local_files_only=True" in step.args  # and checks that it then loads offline
    assert 'chmod -R a+rX "${HF_HOME}"' in step.args  # readable by the quorum user
    words = shlex.split(step.args)
    scripts = [words[k + 1] for k, w in enumerate(words) if w == "-c"]
    assert len(scripts) == 2
    for script in scripts:  # the Python the step runs is valid once the continuation lines are joined
        compile(script, "Dockerfile", "exec")

    installs = [j for j, s in enumerate(steps) if s.keyword == "RUN" and ".[ml]" in s.args]
    user = [j for j, s in enumerate(steps) if s.keyword == "USER"]
    assert installs and installs[0] < i, "the model is fetched after sentence-transformers is installed"
    assert user and i < user[0], "the model is fetched before the image drops root"
    copies = [j for j, s in enumerate(steps) if s.keyword == "COPY" and s.args.startswith(("domain", "adapters"))]
    assert copies and i < copies[0], "the model layer comes before the code, so a code change does not fetch it again"


def test_the_parser_sees_a_missing_step() -> None:
    steps = instructions('FROM python:3.11-slim\nENV HF_HOME=/opt/hf \\\n    QUORUM_EMBEDDINGS__MODEL=x\nRUN echo hi\n')
    env, _ = build_env(steps)
    assert env == {"HF_HOME": "/opt/hf", "QUORUM_EMBEDDINGS__MODEL": "x"}
    assert not [s for s in steps if "SentenceTransformer(" in s.args]


def test_the_image_ships_the_real_daily_bars_the_default_backtest_reads() -> None:
    from entrypoints.shipped_data import PROJECT_ROOT

    text = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "COPY data ./data" in text, "quorum backtest without --data reads data/ (entrypoints/shipped_data.py)"
    ignored = PROJECT_ROOT / ".dockerignore"
    assert not ignored.exists() or "data" not in ignored.read_text().split(), ".dockerignore must not drop data/"
