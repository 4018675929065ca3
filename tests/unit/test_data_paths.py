"""Where Quorum keeps its data: absolute paths fixed at start-up, the database and backups under data_dir unless set
elsewhere, and `make clean` never deleting any of it."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from entrypoints.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working directory and none of the developer's QUORUM_* variables."""
    for key in list(os.environ):
        if key.startswith("QUORUM_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def data_paths(settings: Settings) -> tuple[Path, Path, Path]:
    return settings.data_dir, settings.database.embedded_dir, settings.schedule.backup_dir


def test_the_defaults_are_absolute_under_the_working_directory(no_env: Path) -> None:
    settings = load_settings()
    assert data_paths(settings) == (no_env / ".quorum", no_env / ".quorum" / "pgdata", no_env / ".quorum" / "backups")
    assert all(p.is_absolute() for p in data_paths(settings))


def test_a_data_dir_moves_the_database_and_the_backups_with_it(no_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_DATA_DIR", "~/quorum-data")
    home = Path("~").expanduser()
    assert data_paths(load_settings()) == (home / "quorum-data", home / "quorum-data" / "pgdata",
                                           home / "quorum-data" / "backups")


def test_database_and_backup_dirs_set_on_their_own_win_and_are_made_absolute(
    no_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUORUM_DATABASE__EMBEDDED_DIR", "db")
    monkeypatch.setenv("QUORUM_SCHEDULE__BACKUP_DIR", "/srv/quorum-backups")
    settings = load_settings(data_dir="elsewhere")
    assert data_paths(settings) == (no_env / "elsewhere", no_env / "db", Path("/srv/quorum-backups"))


def test_the_paths_do_not_follow_a_later_change_of_directory(no_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    other = no_env / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    assert settings.database.embedded_dir == no_env / ".quorum" / "pgdata"


def _recipe(target: str) -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{target}\s*:", line))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def _removed_paths(recipe: list[str]) -> list[Path]:
    variables = dict(re.findall(r"^([A-Z_]+)\s*:?=\s*(\S+)\s*$", (ROOT / "Makefile").read_text(), re.M))
    removed = []
    for line in recipe:
        for command in re.split(r"&&|;|\|\|", line):
            words = shlex.split(re.sub(r"\$\(([A-Z_]+)\)", lambda m: variables.get(m.group(1), m.group(0)), command))
            if words and words[0].lstrip("@-") == "rm":
                removed += [ROOT / w for w in words[1:] if not w.startswith("-")]
    return removed


def test_make_clean_never_deletes_the_data_the_database_or_the_backups(no_env: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    kept = data_paths(load_settings(_env_file=None))
    removed = _removed_paths(_recipe("clean"))
    assert ROOT / ".venv" in removed, "the recipe was not read"
    for path in removed:
        for data in kept:
            assert not (data == path.resolve() or data.is_relative_to(path.resolve())), f"make clean deletes {data}"


def test_the_makefile_check_sees_a_recipe_that_deletes_the_data() -> None:
    assert ROOT / ".quorum" in _removed_paths(["rm -rf $(VENV) .quorum .mypy_cache"])
