"""The chat SQL role's password: from settings, or generated once into data_dir with mode 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from entrypoints.settings import load_settings
from entrypoints.wiring.chat_sql import PASSWORD_FILE, chat_sql_limits, chat_sql_password


def test_the_password_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    first = chat_sql_password(settings)
    path = tmp_path / "data" / PASSWORD_FILE
    assert len(first) >= 32 and path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert chat_sql_password(settings) == first


def test_a_configured_password_wins_and_the_limits_come_from_settings(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, chat={"sql_password": "configured-pw", "sql_timeout_ms": 1500,
                                                      "sql_max_rows": 50, "sql_max_cell_chars": 300})
    assert chat_sql_password(settings) == "configured-pw"
    assert not (tmp_path / PASSWORD_FILE).exists()
    limits = chat_sql_limits(settings)
    assert (limits.timeout_ms, limits.max_rows, limits.max_cell_chars) == (1500, 50, 300)
