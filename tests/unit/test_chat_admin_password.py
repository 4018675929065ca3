"""`quorum chat` with no login configured: an admin password generated once (mode 0600), printed, and made the one
chat user; a configured API key or chat users generate nothing. Never anonymous."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from entrypoints.commands.chat import admin_login
from entrypoints.settings import load_settings


@pytest.fixture(autouse=True)
def _users_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_CHAT__USERS", "{}")      # restored after each test: admin_login writes it
    monkeypatch.delenv("QUORUM_CHAT__USERS")


def test_without_key_or_users_an_admin_password_is_generated_once_private_printed_and_reused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(data_dir=tmp_path, api_key=None)
    path = admin_login(settings, tmp_path)
    assert path == tmp_path / "admin_password" and stat.S_IMODE(path.stat().st_mode) == 0o600
    password = path.read_text().strip()
    assert len(password) >= 20
    assert f"log in as admin with password: {password} (saved in {path}" in capsys.readouterr().out
    assert json.loads(os.environ["QUORUM_CHAT__USERS"]) == {"admin": password}
    again = load_settings(data_dir=tmp_path, api_key=None)        # what Chainlit's start-up reads
    assert {u: s.get_secret_value() for u, s in again.chat.users.items()} == {"admin": password}
    del os.environ["QUORUM_CHAT__USERS"]                            # the next `quorum chat` reuses the file
    assert admin_login(load_settings(data_dir=tmp_path, api_key=None), tmp_path) == path
    assert path.read_text().strip() == password and password in capsys.readouterr().out


@pytest.mark.parametrize("configured", [{"api_key": "k" * 24}, {"chat": {"users": {"ana": "her-password"}}}])
def test_a_configured_key_or_user_generates_nothing(tmp_path: Path, configured: dict[str, object],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(data_dir=tmp_path, **({"api_key": None} | configured))
    assert admin_login(settings, tmp_path) is None
    assert not (tmp_path / "admin_password").exists() and "QUORUM_CHAT__USERS" not in os.environ
    assert capsys.readouterr().out == ""
