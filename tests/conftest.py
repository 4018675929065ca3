"""Shared fixtures: an embedded PostgreSQL + pgvector migrated to head, the real embedding model,
and paths to the shared real-market data (tests skip with a reason when it is absent).

Under ``CI=true`` a skip for a missing prerequisite (Redis down, ../shared/data or a fixture file
missing, the `ml` extra not installed) is a failure with the same reason (see tests/ci_strict.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.ci_strict import failure_for_skip, require_or_skip

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEVELOPER_VARIABLES = ("QUORUM_", "ALPACA", "APCA_", "LANGSMITH_", "LANGCHAIN_", "DATABASE_URL", "REDIS_URL",
                       "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")
"""Variables (or prefixes) of the developer's environment that no test may see: a configured Alpaca key, database,
model key or tracing would otherwise be used by a test that builds its settings from the environment."""
TEST_VARIABLES = ("QUORUM_TEST_", "QUORUM_NO_DOTENV")
"""The suite's own variables, kept."""


def developer_variables(environ: Mapping[str, str]) -> list[str]:
    """The names in `environ` a test must not inherit (see `DEVELOPER_VARIABLES`)."""
    return [name for name in environ if name.upper().startswith(DEVELOPER_VARIABLES)
            and not name.upper().startswith(TEST_VARIABLES)]


for _name in developer_variables(os.environ):  # before any fixture or subprocess reads them
    del os.environ[_name]
os.environ["QUORUM_NO_DOTENV"] = "1"  # Settings never read a .env, here or in the subprocesses the tests start


@pytest.fixture(autouse=True)
def _no_developer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without the developer's QUORUM_*/ALPACA*/DATABASE_URL/REDIS_URL/LANGSMITH_*/model-key
    variables and with `.env` files ignored; a test sets what it needs with `monkeypatch`."""
    for name in developer_variables(os.environ):
        monkeypatch.delenv(name)
    monkeypatch.setenv("QUORUM_NO_DOTENV", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
TEST_REDIS_URL = os.environ.get("QUORUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip (fail under CI)."""
    require_or_skip(SHARED_DATA.is_dir(),
                    f"real market data not found at {SHARED_DATA} (clone with ../shared beside the project)")
    return SHARED_DATA


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI=true, turn a `pytest.skip`/`pytest.importorskip` for a missing prerequisite into a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    message = failure_for_skip(call.excinfo.value if call.excinfo is not None else None)
    if report.skipped and message is not None:
        report.outcome = "failed"
        report.longrepr = message


@pytest.fixture(scope="session")
def pg_server_dir() -> Iterator[Path]:
    """Data directory of a throw-away embedded PostgreSQL server, stopped and removed at the end of the session.

    Not under pytest's tmp_path: concurrent pytest sessions prune each other's old tmp dirs.
    """
    import shutil
    import tempfile

    from adapters.postgres.embedded import stop_embedded_server

    base = Path(tempfile.mkdtemp(prefix="quorum-pg-"))
    pgdata = base / "data"
    yield pgdata
    stop_embedded_server(pgdata)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_server_dir: Path) -> str:
    """asyncpg URL of a database migrated to head."""
    from adapters.postgres import migrate
    from adapters.postgres.embedded import ensure_embedded_database

    url = ensure_embedded_database(pg_server_dir)
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def fresh_pg_url(pg_server_dir: Path, pg_url: str) -> str:
    """asyncpg URL of a second, empty database (no migrations applied) on the same server."""
    import subprocess

    from adapters.postgres.embedded import pg_bin

    name = "fresh_" + uuid.uuid4().hex[:8]
    base, _, query = pg_url.partition("?")
    socket_dir = query.split("host=", 1)[1]
    subprocess.run([str(pg_bin("createdb")), "-h", socket_dir, "-U", "postgres", name], check=True)
    return base.rsplit("/", 1)[0] + f"/{name}?{query}"


@pytest.fixture(scope="session")
async def pg_sessionmaker(pg_url: str) -> AsyncIterator[object]:
    """A session factory on the migrated test database."""
    from adapters.postgres.engine import make_engine, make_sessionmaker

    engine = make_engine(pg_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
def real_embedder() -> object:
    """The real sentence-transformers embedder: the packaged all-MiniLM-L6-v2 (the default, here offline)."""
    pytest.importorskip("sentence_transformers", reason="the 'ml' extra is not installed")
    from adapters.embeddings.sentence_transformer import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("sentence-transformers/all-MiniLM-L6-v2")


@pytest.fixture
def scope() -> str:
    """A scope no other test uses, so tests sharing the database do not see each other's rows."""
    return f"test:{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis() -> AsyncIterator[Any]:
    """A client on the test Redis database (5), flushed before and after; skips when Redis is down."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(TEST_REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        require_or_skip(False, f"Redis is not reachable at {TEST_REDIS_URL} ({type(exc).__name__}); "
                        "`make redis` starts it")
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()
