"""No test trades the developer's Alpaca account: with an Alpaca key (and a database, Redis and live trading) in
the environment and in a `.env` of the working directory, the settings a test builds are the simulated broker.

The check runs this file's first test in a pytest subprocess started with that hostile environment and `.env`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoints.settings import load_settings
from tests.support.explicit_settings import explicit_settings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
HOSTILE = {
    "QUORUM_BROKER__PROVIDER": "alpaca", "QUORUM_BROKER__PAPER": "false", "QUORUM_LIVE_TRADING": "I_UNDERSTAND",
    "QUORUM_BROKER__ALPACA_API_KEY": "PKDEVELOPERSREALKEY0001", "QUORUM_BROKER__ALPACA_SECRET_KEY": "dev-secret-0001",
    "ALPACA_API_KEY": "PKDEVELOPERSREALKEY0002", "APCA_API_KEY_ID": "PKDEVELOPERSREALKEY0003",
    "DATABASE_URL": "postgresql+asyncpg://dev:pw@db.example.com/quorum", "REDIS_URL": "redis://redis.example.com/0",
    "LANGSMITH_TRACING": "true", "LANGSMITH_API_KEY": "lsv2_developer",
}


def test_the_settings_a_test_builds_are_the_simulated_broker() -> None:
    for settings in (load_settings(), load_settings(env="test"), explicit_settings(env="test")):
        assert settings.broker.provider == "sim" and settings.broker.paper is True
        assert settings.broker.alpaca_api_key is None and settings.broker.alpaca_secret_key is None
        assert settings.live_trading is None and settings.effective_database_url is None
        assert settings.redis_url is None and settings.tracing.enabled is False
    assert not [k for k in os.environ if k.startswith(("ALPACA", "APCA_"))]


def test_a_developers_environment_and_dotenv_never_reach_a_test(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in HOSTILE.items()))
    env = {k: v for k, v in os.environ.items() if k != "QUORUM_NO_DOTENV"} | HOSTILE | {"PYTHONPATH": str(REPO)}
    node = f"{Path(__file__).resolve()}::test_the_settings_a_test_builds_are_the_simulated_broker"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO),
                           "-c", str(REPO / "pyproject.toml"), node], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
